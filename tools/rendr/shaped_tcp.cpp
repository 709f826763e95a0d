#include "shaped_tcp.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "console.hpp"
#include "status_ticker.hpp"

namespace rendr::cli {

ShapedTcpResult run_shaped_tcp(const PathShaping& shaping, const Payload& payload,
                               std::uint64_t total, Verify verify) {
  using asio::ip::tcp;
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const std::size_t paths = shaping.paths();
  std::vector<std::unique_ptr<testing::FaultProxy>> proxies;
  std::vector<tcp::socket> clients, servers;
  std::vector<std::uint64_t> shares;
  std::uint64_t assigned = 0;
  for (std::size_t i = 0; i < paths; ++i) {
    proxies.push_back(std::make_unique<testing::FaultProxy>("127.0.0.1", "127.0.0.1",
                                                            acceptor.local_endpoint().port()));
    proxies.back()->set_shaping(shaping.of_path(i), shaping.of_path(i));
    clients.emplace_back(io).connect(
        tcp::endpoint(asio::ip::address_v4::loopback(), proxies.back()->port()));
    servers.push_back(acceptor.accept());
    clients.back().set_option(tcp::no_delay(true));
    servers.back().set_option(tcp::no_delay(true));
    const double share = shaping.rates_mbit[i] / (shaping.sum_megabytes_per_second() * 8);
    shares.push_back(i + 1 == paths ? total - assigned
                                    : std::uint64_t(std::llround(double(total) * share)));
    assigned += shares.back();
  }

  std::vector<TransferProgress> progress(paths);
  std::vector<TransferResult> results(paths);
  const Clock::time_point start = Clock::now();
  {
    StatusTicker ticker(
        [&] {
          std::uint64_t received = 0;
          for (const TransferProgress& p : progress)
            received += p.received.load();
          const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
          char line[160];
          std::snprintf(line, sizeof line, "[bench stream] tcp x%zu %s / %s  %.1f MB/s", paths,
                        human_bytes(double(received)).c_str(), human_bytes(double(total)).c_str(),
                        seconds > 0 ? double(received) / 1e6 / seconds : 0.0);
          return std::string(line);
        },
        std::chrono::milliseconds(200));
    std::vector<std::thread> receivers;
    for (std::size_t i = 0; i < paths; ++i)
      receivers.emplace_back([&, i] {
        results[i] = run_transfer(clients[i], servers[i], payload, shares[i], verify, progress[i],
                                  [](std::uint64_t) {});
      });
    for (std::thread& t : receivers)
      t.join();
  }

  ShapedTcpResult combined;
  for (const TransferResult& r : results) {
    combined.bytes_received += r.bytes_received;
    combined.elapsed = std::max(combined.elapsed, r.elapsed);
    combined.max_stall = std::max(combined.max_stall, r.max_stall);
    combined.ok = combined.ok && r.ok();
  }
  return combined;
}

}  // namespace rendr::cli

// Loopback UDP through UdpSocket: 1200-byte datagrams sent in one buffer (GSO, or one datagram
// per sendmmsg message) and drained with recvmmsg (with or without GRO). One iteration = one
// send of `batch` datagrams and their receipt. Loopback does no segmentation work, so this is
// the syscall and copy cost the socket layer adds, not a network's.
#include <poll.h>

#include <benchmark/benchmark.h>

#include <vector>

#include <asio/io_context.hpp>

#include "carrier/udp/udp_socket.hpp"

namespace rendr::carrier::udp {
namespace {

void BM_LoopbackUdp(benchmark::State& state) {
  const bool offload = state.range(0) != 0;
  const std::size_t batch = static_cast<std::size_t>(state.range(1));
  constexpr std::size_t kSegment = 1200;
  UdpSocketOptions options;
  options.gso = offload;
  options.gro = offload;
  asio::io_context io;
  const asio::ip::udp::endpoint loopback(asio::ip::make_address("127.0.0.1"), 0);
  auto receiver = UdpSocket::bind(io.get_executor(), loopback, options);
  auto sender = UdpSocket::connect(io.get_executor(), receiver->local_endpoint(), options);
  const std::vector<wire::Byte> buffer(batch * kSegment, 0x42);
  for (auto _ : state) {
    const SendResult sent = sender->send(buffer, kSegment);
    if (sent.datagrams != batch) {
      state.SkipWithError("short send");
      break;
    }
    std::size_t got = 0;
    while (got < batch) {
      std::error_code ec;
      const auto datagrams = receiver->receive(ec);
      got += datagrams.size();
      if (datagrams.empty()) {
        pollfd fd{receiver->native_handle(), POLLIN, 0};
        if (::poll(&fd, 1, 1000) != 1) break;
      }
    }
    if (got != batch) {
      state.SkipWithError("datagrams lost on loopback");
      break;
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * batch * kSegment));
  state.counters["gso"] = sender->info().gso;
  state.counters["gro"] = receiver->info().gro;
}

// Args: offload (GSO+GRO) on/off, datagrams per send.
BENCHMARK(BM_LoopbackUdp)->Args({0, 64})->Args({1, 64})->Args({0, 256})->Args({1, 256});

}  // namespace
}  // namespace rendr::carrier::udp

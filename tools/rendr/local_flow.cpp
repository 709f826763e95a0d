#include "local_flow.hpp"

#include <future>
#include <string>
#include <thread>
#include <utility>

#include "path_admin.hpp"

namespace rendr::cli {
namespace {

constexpr const char* kLoopback = "127.0.0.1";
constexpr std::chrono::milliseconds kFinishTimeout{1000};

template <class Connection>
bool finished(const Connection& conn) {
  if (!conn.is_open()) return true;
  const std::string state = conn.state();
  return state == "closed" || state == "failed";
}

rendr::PathSpec loopback_spec(std::uint16_t port) {
  return rendr::PathSpec::parse("tcp://127.0.0.1:" + std::to_string(port));
}

rendr::PathSpec udpflow_spec(std::uint16_t port) {
  return rendr::PathSpec::parse("udpflow://127.0.0.1:" + std::to_string(port));
}

rendr::PathSpec quic_spec(std::uint16_t port, const rendr::TlsClientConfig& tls) {
  rendr::PathSpec spec = rendr::PathSpec::parse("quic://127.0.0.1:" + std::to_string(port));
  spec.tls = tls;
  return spec;
}

bool is_udpflow(const rendr::ConnStats& stats, rendr::PathId id) {
  return path_spec(stats, id).starts_with("udpflow://");
}

bool is_quic(const rendr::ConnStats& stats, rendr::PathId id) {
  return path_spec(stats, id).starts_with("quic://");
}

// Dials while another thread accepts; a failed dial closes the listener to end the accept.
template <class Connection, class Dial, class Accept>
bool dial_and_accept(rendr::Listener& listener, Dial dial, Accept accept, Connection& client,
                     Connection& server, std::error_code& ec) {
  auto accepted = std::async(std::launch::async, [listener, accept]() mutable {
    std::error_code accept_ec;
    Connection conn = accept(listener, accept_ec);
    return std::pair(std::move(conn), accept_ec);
  });
  client = dial(ec);
  if (ec) {
    listener.close();
    accepted.wait();
    return false;
  }
  auto [conn, accept_ec] = accepted.get();
  if (accept_ec) {
    ec = accept_ec;
    return false;
  }
  server = std::move(conn);
  return true;
}

}  // namespace

std::unique_ptr<LocalFlow> LocalFlow::open(const LocalFlowConfig& config, std::error_code& ec) {
  auto flow = std::make_unique<LocalFlow>();
  rendr::ListenOptions listen_options;
  rendr::Dialer dialer;
  if (config.engine != nullptr) {
    listen_options.engine = config.engine;
    dialer.engine = config.engine;
  } else if (config.engine_per_end) {
    flow->server_engine = std::make_unique<rendr::Engine>(1);
    flow->client_engine = std::make_unique<rendr::Engine>(1);
    listen_options.engine = flow->server_engine.get();
    dialer.engine = flow->client_engine.get();
  }
  const bool quic = config.transport == "quic";
  // udpflow: every path over UDP; mixed: odd paths over UDP, even ones over TCP.
  const auto over_udp = [&](std::size_t i) {
    return config.transport == "udpflow" || (config.transport == "mixed" && i % 2 == 1);
  };
  const bool any_udp = over_udp(0) || (config.paths > 1 && over_udp(1));
  // The TCP fault proxy shapes tcp paths only; QUIC paths go through UDP fault proxies.
  if ((quic || any_udp) && !config.shaping.empty()) {
    ec = rendr::errc::bad_path_spec;
    return nullptr;
  }
  listen_options.udpflow_congestion = config.congestion;
  listen_options.accept_stream_flows = !config.packet;
  listen_options.accept_packet_flows = config.packet.has_value();
  const bool udp_through_proxies = config.through_proxies || !config.udp_faults.empty();
  const std::string any_port = std::string(kLoopback) + ":0";
  flow->listener = quic ? rendr::listen_quic(any_port, config.quic_server, listen_options, ec)
                   : over_udp(0) ? rendr::listen_udpflow(any_port, listen_options, ec)
                                 : rendr::listen_tcp(any_port, listen_options, ec);
  if (ec) return nullptr;
  for (std::size_t i = 1; i < config.paths && !ec; ++i)
    ec = quic          ? flow->listener.listen_quic(any_port, config.quic_server)
         : over_udp(i) ? flow->listener.listen_udpflow(any_port)
                       : flow->listener.listen_tcp(any_port);
  if (ec) return nullptr;

  flow->quic_client = config.quic_client;
  dialer.mode = config.mode;
  std::size_t tcp_index = 0;
  std::size_t udp_index = 0;
  for (std::size_t i = 0; i < config.paths; ++i) {
    if (quic) {
      std::uint16_t port = flow->listener.quic_port(i);
      if (config.through_proxies) {
        flow->udp_proxies.push_back(
            std::make_unique<testing::UdpFaultProxy>(kLoopback, kLoopback, port, /*seed=*/i + 1));
        port = flow->udp_proxies.back()->port();
      }
      dialer.paths.push_back(quic_spec(port, config.quic_client));
      continue;
    }
    if (over_udp(i)) {
      std::uint16_t port = flow->listener.udpflow_port(udp_index++);
      if (udp_through_proxies) {
        flow->udp_proxies.push_back(
            std::make_unique<testing::UdpFaultProxy>(kLoopback, kLoopback, port, /*seed=*/i + 1));
        if (i < config.udp_faults.size())
          flow->udp_proxies.back()->set_faults(config.udp_faults[i], config.udp_faults[i]);
        port = flow->udp_proxies.back()->port();
      }
      dialer.paths.push_back(udpflow_spec(port));
      dialer.paths.back().congestion = config.congestion;
      continue;
    }
    std::uint16_t port = flow->listener.port(tcp_index++);
    if (config.through_proxies || !config.shaping.empty()) {
      flow->proxies.push_back(std::make_unique<testing::FaultProxy>(kLoopback, kLoopback, port));
      if (i < config.shaping.size())
        flow->proxies.back()->set_shaping(config.shaping[i], config.shaping[i]);
      port = flow->proxies.back()->port();
    }
    dialer.paths.push_back(loopback_spec(port));
  }

  const bool connected =
      config.packet ? dial_and_accept(
                          flow->listener,
                          [&](std::error_code& e) { return dialer.dial_packet(*config.packet, e); },
                          [](rendr::Listener& l, std::error_code& e) { return l.accept_packet(e); },
                          flow->packet_client, flow->packet_server, ec)
                    : dial_and_accept(
                          flow->listener, [&](std::error_code& e) { return dialer.dial(e); },
                          [](rendr::Listener& l, std::error_code& e) { return l.accept(e); },
                          flow->client, flow->server, ec);
  if (!connected) return nullptr;
  const auto deadline = std::chrono::steady_clock::now() + config.path_up_timeout;
  while (up_paths(flow->client_stats()).size() < config.paths) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ec = std::make_error_code(std::errc::timed_out);
      return nullptr;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return flow;
}

LocalFlow::~LocalFlow() {
  client.close();
  server.close();
  packet_client.close();
  packet_server.close();
  const auto deadline = std::chrono::steady_clock::now() + kFinishTimeout;
  while (!(finished(client) && finished(server) && finished(packet_client) &&
           finished(packet_server)) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

rendr::ConnStats LocalFlow::client_stats() const {
  return packet_client.is_open() ? packet_client.stats() : client.stats();
}

testing::FaultProxy* LocalFlow::proxy_of(rendr::PathId id) {
  const rendr::ConnStats stats = client.stats();
  if (is_udpflow(stats, id) || is_quic(stats, id)) return nullptr;
  const std::uint16_t port = path_port(stats, id);
  for (const auto& proxy : proxies)
    if (proxy->port() == port) return proxy.get();
  return nullptr;
}

testing::UdpFaultProxy* LocalFlow::udp_proxy_of(rendr::PathId id) {
  const rendr::ConnStats stats = client.stats();
  if (!is_udpflow(stats, id) && !is_quic(stats, id)) return nullptr;
  const std::uint16_t port = path_port(stats, id);
  for (const auto& proxy : udp_proxies)
    if (proxy->port() == port) return proxy.get();
  return nullptr;
}

rendr::PathId LocalFlow::replace_path(rendr::PathId id, std::error_code& ec) {
  const rendr::ConnStats stats = client.stats();
  const bool quic = is_quic(stats, id);
  if (quic || is_udpflow(stats, id)) {
    testing::UdpFaultProxy* old_proxy = udp_proxy_of(id);
    ec = client.remove_path(id);
    if (ec) return rendr::kNoPath;
    // Any of the listener's ports of the transport admits a JOIN of any flow.
    const std::uint16_t listener_port = quic ? listener.quic_port(0) : listener.udpflow_port(0);
    std::erase_if(udp_proxies, [&](const auto& proxy) { return proxy.get() == old_proxy; });
    udp_proxies.push_back(
        std::make_unique<testing::UdpFaultProxy>(kLoopback, kLoopback, listener_port));
    const std::uint16_t port = udp_proxies.back()->port();
    return client.add_path(quic ? quic_spec(port, quic_client) : udpflow_spec(port), ec);
  }
  testing::FaultProxy* old_proxy = proxy_of(id);
  ec = client.remove_path(id);
  if (ec) return rendr::kNoPath;
  // The new proxy leads to the listener's first port: a flow's paths may arrive on any port.
  const std::uint16_t listener_port = listener.port(0);
  std::erase_if(proxies, [&](const auto& proxy) { return proxy.get() == old_proxy; });
  proxies.push_back(std::make_unique<testing::FaultProxy>(kLoopback, kLoopback, listener_port));
  return client.add_path(loopback_spec(proxies.back()->port()), ec);
}

}  // namespace rendr::cli

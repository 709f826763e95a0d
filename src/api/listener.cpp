// rendr::listen_tcp / listen_quic / listen_udpflow: a runtime listener bound to its first address.
#include "rendr/listener.hpp"

#include "runtime/listener.hpp"

namespace rendr {

Listener listen_tcp(const std::string& address, const ListenOptions& options, error_code& ec) {
  auto core = runtime::make_listener(options);
  ec = core->listen_tcp(address);
  if (ec) {
    core->close();
    return {};
  }
  return Listener(std::move(core));
}

Listener listen_tcp(const std::string& address, const ListenOptions& options) {
  error_code ec;
  Listener l = listen_tcp(address, options, ec);
  if (ec) throw std::system_error(ec, "rendr::listen_tcp(" + address + ")");
  return l;
}

Listener listen_quic(const std::string& address, const TlsServerConfig& tls,
                     const ListenOptions& options, error_code& ec) {
  auto core = runtime::make_listener(options);
  ec = core->listen_quic(address, tls);
  if (ec) {
    core->close();
    return {};
  }
  return Listener(std::move(core));
}

Listener listen_quic(const std::string& address, const TlsServerConfig& tls,
                     const ListenOptions& options) {
  error_code ec;
  Listener l = listen_quic(address, tls, options, ec);
  if (ec) throw std::system_error(ec, "rendr::listen_quic(" + address + ")");
  return l;
}

Listener listen_udpflow(const std::string& address, const ListenOptions& options, error_code& ec) {
  auto core = runtime::make_listener(options);
  ec = core->listen_udpflow(address);
  if (ec) {
    core->close();
    return {};
  }
  return Listener(std::move(core));
}

Listener listen_udpflow(const std::string& address, const ListenOptions& options) {
  error_code ec;
  Listener l = listen_udpflow(address, options, ec);
  if (ec) throw std::system_error(ec, "rendr::listen_udpflow(" + address + ")");
  return l;
}

Listener listen_udpflow_packet(const std::string& address, const ListenOptions& options,
                               error_code& ec) {
  ListenOptions packet_only = options;
  packet_only.accept_stream_flows = false;
  packet_only.accept_packet_flows = true;
  return listen_udpflow(address, packet_only, ec);
}

Listener listen_udpflow_packet(const std::string& address, const ListenOptions& options) {
  error_code ec;
  Listener l = listen_udpflow_packet(address, options, ec);
  if (ec) throw std::system_error(ec, "rendr::listen_udpflow_packet(" + address + ")");
  return l;
}

}  // namespace rendr

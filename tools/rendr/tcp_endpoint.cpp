#include "tcp_endpoint.hpp"

#include "rendr/types.hpp"

namespace rendr::cli {

asio::ip::tcp::endpoint resolve_tcp_endpoint(asio::io_context& io, const std::string& host_port,
                                             std::error_code& ec) {
  const rendr::PathSpec spec = rendr::PathSpec::parse(host_port, ec);  // HOST:PORT is a tcp path
  if (ec) return {};
  asio::ip::tcp::resolver resolver(io);
  const auto results = resolver.resolve(spec.host, std::to_string(spec.port), ec);
  if (ec) return {};
  return results.begin()->endpoint();
}

std::string endpoint_string(const asio::ip::tcp::endpoint& endpoint) {
  const std::string address = endpoint.address().to_string();
  return (endpoint.address().is_v6() ? "[" + address + "]" : address) + ":" +
         std::to_string(endpoint.port());
}

}  // namespace rendr::cli

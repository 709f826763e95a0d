#pragma once
// "HOST:PORT" (IPv6 as "[::1]:PORT") to and from a TCP endpoint, for the commands that open plain
// TCP sockets beside their flows (forward, listen --forward, --metrics).
#include <string>
#include <system_error>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

namespace rendr::cli {

// Resolves HOST (a name or an address) and takes its first address.
asio::ip::tcp::endpoint resolve_tcp_endpoint(asio::io_context& io, const std::string& host_port,
                                             std::error_code& ec);
std::string endpoint_string(const asio::ip::tcp::endpoint& endpoint);

}  // namespace rendr::cli

#pragma once
// A raw TCP connection over loopback for the baselines: blocking sockets, TCP_NODELAY on both
// ends (as rendr's TCP carrier does), kernel defaults otherwise.
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

namespace rendr::cli {

struct TcpPair {
  asio::ip::tcp::socket client;
  asio::ip::tcp::socket server;
};

// Throws std::system_error on failure.
TcpPair connect_tcp_loopback(asio::io_context& io);

}  // namespace rendr::cli

#include "tcp_loopback.hpp"

#include <asio/connect.hpp>

namespace rendr::cli {

TcpPair connect_tcp_loopback(asio::io_context& io) {
  using asio::ip::tcp;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  TcpPair pair{tcp::socket(io), tcp::socket(io)};
  pair.client.connect(acceptor.local_endpoint());
  acceptor.accept(pair.server);
  pair.client.set_option(tcp::no_delay(true));
  pair.server.set_option(tcp::no_delay(true));
  return pair;
}

}  // namespace rendr::cli

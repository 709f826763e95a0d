#pragma once
// Boost.Beast over a rendr::Conn (Boost.Asio flavour only, -DRENDR_ASIO=boost). A Conn is a
// Beast sync and async stream as it is; what Beast's WebSocket stream needs besides is how to
// tear the connection down after the closing handshake and how to close it at once, found by
// argument-dependent lookup:
//   boost::beast::websocket::stream<rendr::Conn> ws(conn);   // or stream<rendr::Conn&>
// (over boost::asio::ssl::stream<rendr::Conn&>, include <boost/beast/websocket/ssl.hpp>
// instead: TLS's own shutdown is the teardown there).
// As for a TCP socket: close the sending direction, then read and discard until the peer's EOF.
#include <array>
#include <cstddef>
#include <memory>
#include <utility>

#include "rendr/asio.hpp"
#include "rendr/conn.hpp"

#if !defined(RENDR_ASIO_BOOST)
#error "rendr/beast.hpp needs rendr built with Boost.Asio (-DRENDR_ASIO=boost)"
#endif

#include <boost/asio/compose.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/role.hpp>

namespace rendr {

// How Beast closes a Conn at once (a failed or timed-out WebSocket stream, as it closes a socket):
// abort().
inline void beast_close_socket(Conn& conn) {
  conn.abort();
}

// Beast's WebSocket teardown for a Conn: close(), then discard what arrives until the peer's
// EOF (which is not an error here).
inline void teardown(boost::beast::role_type, Conn& conn, error_code& ec) {
  conn.close();
  std::array<char, 2048> discard;
  do {
    conn.read_some(asio::buffer(discard), ec);
  } while (!ec);
  if (ec == asio::error::eof) ec = {};
}

namespace detail {

// async_teardown's composed operation: reads and discards until an error; EOF is success.
class DrainToEof {
 public:
  explicit DrainToEof(Conn& conn) : conn_(conn), discard_(std::make_unique<Buffer>()) {}
  template <class Self>
  void operator()(Self& self, error_code ec = {}, std::size_t = 0) {
    if (ec) {
      if (ec == asio::error::eof) ec = {};
      self.complete(ec);
      return;
    }
    conn_.async_read_some(asio::buffer(*discard_), std::move(self));
  }

 private:
  using Buffer = std::array<char, 2048>;
  Conn& conn_;
  std::unique_ptr<Buffer> discard_;
};

}  // namespace detail

// The asynchronous form of teardown(): completes with void(error_code).
template <class TeardownHandler>
void async_teardown(boost::beast::role_type, Conn& conn, TeardownHandler&& handler) {
  conn.close();
  asio::async_compose<TeardownHandler, void(error_code)>(detail::DrainToEof(conn), handler, conn);
}

}  // namespace rendr

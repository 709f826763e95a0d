// Dials a listener of its own over two loopback paths and checks the echo: the smallest program
// that proves an installed rendr compiles, links and runs. It names Asio as rendr::asio and its
// error code as rendr::error_code, so it builds against either flavour of the library.
#include <cstdio>
#include <string>
#include <thread>

#include "rendr/rendr.hpp"

#if defined(RENDR_ASIO_BOOST)
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#else
#include <asio/read.hpp>
#include <asio/write.hpp>
#endif

namespace asio = rendr::asio;

int main() {
  rendr::Listener listener = rendr::listen_tcp("127.0.0.1:0");
  listener.listen_tcp("127.0.0.1:0");

  std::thread server([&] {
    rendr::error_code ec;
    rendr::Conn conn = listener.accept(ec);
    char data[1024];
    while (!ec) {
      const std::size_t n = conn.read_some(asio::buffer(data), ec);
      if (!ec) asio::write(conn, asio::buffer(data, n), ec);
    }
    conn.close();  // after the client's EOF
  });

  rendr::Dialer dialer;
  for (std::size_t i = 0; i < 2; ++i)
    dialer.paths.push_back(
        rendr::PathSpec::parse("tcp://127.0.0.1:" + std::to_string(listener.port(i))));
  rendr::error_code ec;
  rendr::Conn conn = dialer.dial(ec);
  if (ec) {
    std::fprintf(stderr, "dial failed: %s\n", ec.message().c_str());
    listener.close();
    server.join();
    return 1;
  }
  const std::string request = "hello from an installed rendr";
  std::string reply(request.size(), '\0');
  asio::write(conn, asio::buffer(request), ec);
  if (!ec) asio::read(conn, asio::buffer(reply), ec);
  conn.close();
  server.join();
  listener.close();
  if (ec || reply != request) {
    std::fprintf(stderr, "echo failed: %s\n", ec ? ec.message().c_str() : "wrong bytes");
    return 1;
  }
  std::printf("echoed %zu bytes over rendr\n", reply.size());
  return 0;
}

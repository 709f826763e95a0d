// Coroutine echo server and client over rendr, on the application's own io_context.
//
// rendr::Engine(io) makes rendr an I/O service of `io`: rendr starts no thread, and every
// socket event, protocol step and completion below runs on the one thread calling io.run().
// A rendr::Conn is then used like an asio::ip::tcp::socket (async_read_some, async_write,
// asio::read, ...), but its flow survives path changes: here the client has two TCP paths
// to the server and migrates between them while the echo runs.
#include <array>
#include <cstdio>
#include <string>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "rendr/rendr.hpp"

using asio::awaitable;
using asio::use_awaitable;

// Echoes one connection until the client closes its direction, then closes ours.
awaitable<void> echo(rendr::Conn conn) {
  std::array<char, 4096> data;
  for (;;) {
    std::error_code ec;
    const std::size_t n =
        co_await conn.async_read_some(asio::buffer(data), asio::redirect_error(use_awaitable, ec));
    if (ec == asio::error::eof) break;  // clean close: every byte has arrived
    if (ec) throw std::system_error(ec, "echo read");
    co_await asio::async_write(conn, asio::buffer(data, n), use_awaitable);
  }
  conn.close();
}

awaitable<void> server(rendr::Listener& listener) {
  rendr::Conn conn = co_await listener.async_accept(use_awaitable);
  co_await echo(std::move(conn));
}

awaitable<void> client(rendr::Dialer dialer, int& echoed) {
  rendr::Conn conn = co_await dialer.async_dial(use_awaitable);
  for (int i = 0; i < 10; ++i) {
    const std::string message = "message " + std::to_string(i);
    co_await asio::async_write(conn, asio::buffer(message), use_awaitable);
    std::string reply(message.size(), '\0');
    co_await asio::async_read(conn, asio::buffer(reply), use_awaitable);
    if (reply != message) throw std::runtime_error("echo differs: " + reply);
    ++echoed;
    // Move the flow to the other path; the stream goes on as if nothing happened.
    const auto paths = conn.stats().paths;
    for (const auto& p : paths)
      if (p.id != conn.active_path() && p.state == "up") conn.migrate(p.id);
  }
  std::printf("%d echoes, %llu migrations\n", echoed,
              static_cast<unsigned long long>(conn.migration_count()));
  conn.close();
  // Wait for the server's close: then both directions have ended cleanly.
  std::error_code ec;
  char byte;
  co_await asio::async_read(conn, asio::buffer(&byte, 1), asio::redirect_error(use_awaitable, ec));
  if (ec != asio::error::eof) throw std::system_error(ec, "waiting for the server's close");
}

int main() {
  asio::io_context io;
  rendr::Engine engine(io);  // rendr runs on `io`; this program's thread runs `io`

  rendr::ListenOptions listen_options;
  listen_options.engine = &engine;
  rendr::Listener listener = rendr::listen_tcp("127.0.0.1:0", listen_options);
  listener.listen_tcp("127.0.0.1:0");  // a second port: a second path

  rendr::Dialer dialer;
  dialer.engine = &engine;
  for (std::size_t i = 0; i < 2; ++i)
    dialer.paths.push_back(
        rendr::PathSpec::parse("tcp://127.0.0.1:" + std::to_string(listener.port(i))));

  int echoed = 0;
  auto rethrow = [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  };
  asio::co_spawn(io, server(listener), rethrow);
  asio::co_spawn(io, client(dialer, echoed), [&](std::exception_ptr e) {
    listener.close();  // nothing more to accept
    rethrow(e);
  });
  io.run_for(std::chrono::seconds(10));  // returns when all is done; bounded for the test
  return echoed == 10 ? 0 : 1;
}

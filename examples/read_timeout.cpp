// Reading with a timeout: a rendr read is cancelled like any Asio operation, and the connection
// carries on. The read that timed out leaves no trace; the next read gets every byte.
//
// The client races its read against a timer with Asio's awaitable operators (`||` cancels the
// loser through its cancellation slot). The server stays silent for a moment, then answers.
// (Newer Asio offers asio::cancel_after for the same; Debian 12's Asio 1.22 does not.)
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "rendr/rendr.hpp"

namespace {

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using asio::use_awaitable;

// Reads some bytes, or gives up after `timeout`: returns the bytes read, 0 on timeout.
asio::awaitable<std::size_t> read_with_timeout(rendr::Conn& conn, asio::mutable_buffer buffer,
                                               std::chrono::milliseconds timeout) {
  asio::steady_timer timer(co_await asio::this_coro::executor, timeout);
  auto winner =
      co_await (conn.async_read_some(buffer, use_awaitable) || timer.async_wait(use_awaitable));
  if (winner.index() == 1) co_return 0;  // the timer won; the read was cancelled
  co_return std::get<0>(winner);
}

asio::awaitable<void> client(rendr::Conn& conn) {
  char data[64];
  int timeouts = 0;
  std::string received;
  while (received.size() < 5) {
    const std::size_t n = co_await read_with_timeout(conn, asio::buffer(data), 100ms);
    if (n == 0) {
      std::cout << "no data within 100 ms, still connected: " << conn.is_open() << "\n";
      ++timeouts;
      continue;
    }
    received.append(data, n);
  }
  std::cout << "after " << timeouts << " timeout(s) received: " << received << "\n";
  if (received != "hello" || timeouts == 0) throw std::runtime_error("unexpected outcome");
  // Done: close our direction and wait for the server's close (EOF), so the flow ends cleanly.
  conn.close();
  auto [ec, n] = co_await conn.async_read_some(asio::buffer(data),
                                               asio::experimental::as_tuple(use_awaitable));
  if (ec != asio::error::eof) throw std::runtime_error("expected EOF, got " + ec.message());
}

// Says nothing for 350 ms, then "hello".
asio::awaitable<void> server(rendr::Listener& listener) {
  rendr::Conn conn = co_await listener.async_accept(use_awaitable);
  asio::steady_timer pause(co_await asio::this_coro::executor, 350ms);
  co_await pause.async_wait(use_awaitable);
  co_await asio::async_write(conn, asio::buffer(std::string("hello")), use_awaitable);
  conn.close();
}

}  // namespace

int main() {
  rendr::Listener listener = rendr::listen_tcp("127.0.0.1:0");
  rendr::Dialer dialer;
  dialer.paths = {rendr::PathSpec::parse("127.0.0.1:" + std::to_string(listener.port()))};
  rendr::Conn conn = dialer.dial();

  asio::io_context io;
  bool ok = true;
  auto report = [&](std::exception_ptr e) {
    if (!e) return;
    ok = false;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      std::cerr << "error: " << x.what() << "\n";
    }
  };
  asio::co_spawn(io, server(listener), report);
  asio::co_spawn(io, client(conn), report);
  io.run();
  listener.close();
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}

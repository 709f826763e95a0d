// rendr::Conn composes with Asio: asio::read/write, read_until, async_read/async_write with
// callbacks, C++20 coroutines (use_awaitable) and futures (use_future), all against an echo
// server that is itself a coroutine.
#include <functional>
#include <string>

#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <asio/write.hpp>

#include "harness.hpp"

namespace rendr::itest {
namespace {

Bytes pattern(std::uint64_t seed, std::size_t size) {
  Bytes bytes(size);
  fill_pattern(seed, 0, bytes);
  return bytes;
}

// Echoes until EOF, then closes its direction too.
asio::awaitable<void> echo(Conn conn) {
  Bytes buffer(64 * KiB);
  for (;;) {
    error_code ec;
    const std::size_t n = co_await conn.async_read_some(
        asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::eof) break;
    if (ec) throw std::system_error(ec, "echo read");
    co_await asio::async_write(conn, asio::buffer(buffer.data(), n), asio::use_awaitable);
  }
  conn.close();
}

asio::awaitable<Bytes> round_trip(Conn conn, Bytes message) {
  Bytes reply(message.size());
  co_await asio::async_write(conn, asio::buffer(message), asio::use_awaitable);
  co_await asio::async_read(conn, asio::buffer(reply), asio::use_awaitable);
  co_return reply;
}

TEST_F(IntegrationTest, ConnWorksWithAsioAlgorithmsCallbacksCoroutinesAndFutures) {
  Conn client;
  Conn server;
  ASSERT_TRUE(listen_and_connect(2, client, server));

  // The test's own io_context runs the coroutines; rendr completes onto it.
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread io_thread([&] { io.run(); });
  auto echoed = asio::co_spawn(io, echo(server), asio::use_future);
  // Stops the io thread on every exit; after a failure, pending operations may never complete
  // on their own, so both ends are aborted first.
  struct StopIo {
    std::function<void()> stop;
    ~StopIo() { stop(); }
  } stop_io{[&] {
    if (HasFailure()) {
      client.abort();
      server.abort();
    }
    work.reset();
    io_thread.join();
  }};

  // Synchronous composed operations (several MiB, so they span many read_some/write_some).
  const Bytes sync_message = pattern(1, 3 * MiB);
  Bytes sync_reply(sync_message.size());
  EXPECT_EQ(asio::write(client, asio::buffer(sync_message)), sync_message.size());
  EXPECT_EQ(asio::read(client, asio::buffer(sync_reply)), sync_message.size());
  EXPECT_TRUE(sync_reply == sync_message);

  // read_until with a dynamic buffer.
  asio::write(client, asio::buffer(std::string("hello rendr\nsecond line\n")));
  std::string lines;
  const std::size_t first_line = asio::read_until(client, asio::dynamic_buffer(lines), '\n');
  EXPECT_EQ(lines.substr(0, first_line), "hello rendr\n");
  const std::size_t second_line = asio::read_until(client, asio::dynamic_buffer(lines), "line\n");
  EXPECT_EQ(lines.substr(first_line, second_line - first_line), "second line\n");

  // Callbacks, chained: async_write, then async_read.
  const Bytes callback_message = pattern(2, 1 * MiB);
  Bytes callback_reply(callback_message.size());
  std::promise<error_code> callback_done;
  asio::async_write(client, asio::buffer(callback_message), [&](error_code ec, std::size_t) {
    if (ec) return callback_done.set_value(ec);
    asio::async_read(client, asio::buffer(callback_reply),
                     [&](error_code ec, std::size_t) { callback_done.set_value(ec); });
  });
  auto callback_result = callback_done.get_future();
  ASSERT_EQ(callback_result.wait_for(scaled(10s)), std::future_status::ready);
  EXPECT_EQ(callback_result.get(), error_code{});
  EXPECT_TRUE(callback_reply == callback_message);

  // Futures.
  const Bytes future_message = pattern(3, 1 * MiB);
  Bytes future_reply(future_message.size());
  auto written = asio::async_write(client, asio::buffer(future_message), asio::use_future);
  auto read = asio::async_read(client, asio::buffer(future_reply), asio::use_future);
  ASSERT_EQ(written.wait_for(scaled(10s)), std::future_status::ready);
  ASSERT_EQ(read.wait_for(scaled(10s)), std::future_status::ready);
  EXPECT_EQ(written.get(), future_message.size());
  EXPECT_EQ(read.get(), future_message.size());
  EXPECT_TRUE(future_reply == future_message);

  // A client coroutine.
  const Bytes coroutine_message = pattern(4, 1 * MiB);
  auto coroutine_reply =
      asio::co_spawn(io, round_trip(client, coroutine_message), asio::use_future);
  ASSERT_EQ(coroutine_reply.wait_for(scaled(10s)), std::future_status::ready);
  EXPECT_TRUE(coroutine_reply.get() == coroutine_message);

  // Closing ends the echo coroutine, whose close in turn reaches us as EOF.
  client.close();
  ASSERT_EQ(echoed.wait_for(scaled(5s)), std::future_status::ready);
  EXPECT_NO_THROW(echoed.get());
  error_code ec;
  Bytes one(1);
  EXPECT_EQ(asio::read(client, asio::buffer(one), ec), 0u);
  EXPECT_EQ(ec, error_code(asio::error::eof));
}

}  // namespace
}  // namespace rendr::itest

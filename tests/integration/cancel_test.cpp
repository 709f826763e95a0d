// Cancellation as Asio defines it: a pending async_read_some / async_write_some cancelled
// through its handler's cancellation slot (awaitable operators, a cancellation_signal) or by
// Conn::cancel() completes with operation_aborted, never touches its buffer again, and the
// connection goes on: later bytes reach the next read, none lost or duplicated.
#include <algorithm>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <asio/write.hpp>

#include "harness.hpp"

namespace rendr::itest {
namespace {

// as_tuple left experimental in Asio 1.24 (Boost.Asio 1.81 has only asio::as_tuple).
#if defined(RENDR_ASIO_BOOST)
using asio::as_tuple;
#else
using asio::experimental::as_tuple;
#endif

using namespace asio::experimental::awaitable_operators;

Bytes pattern(std::uint64_t seed, std::size_t size) {
  Bytes bytes(size);
  fill_pattern(seed, 0, bytes);
  return bytes;
}

// Outcome of one async operation, filled in by its handler.
struct Result {
  bool done = false;
  error_code ec;
  std::size_t n = 0;
};

TEST_F(IntegrationTest, ReadWithATimeoutThenTheNextReadGetsEveryByte) {
  Conn client;
  Conn server;
  ASSERT_TRUE(listen_and_connect(1, client, server));

  asio::io_context io;
  // The timed-out read's buffer lives on the heap and is freed right after the timeout: a late
  // write into it is a heap-use-after-free under ASan; without ASan the sentinel catches it.
  auto abandoned = std::make_unique<Bytes>(4 * KiB, std::uint8_t{0xEE});
  bool timed_out = false;
  bool sentinel_intact = false;
  Bytes received;
  const Bytes sent = pattern(7, 256 * KiB);
  auto client_side = [&]() -> asio::awaitable<void> {
    asio::steady_timer timer(io, 50ms);
    auto first = co_await (client.async_read_some(asio::buffer(*abandoned), asio::use_awaitable) ||
                           timer.async_wait(asio::use_awaitable));
    timed_out = first.index() == 1;
    sentinel_intact =
        std::all_of(abandoned->begin(), abandoned->end(), [](std::uint8_t b) { return b == 0xEE; });
    abandoned.reset();
    // Only now does the peer send; the next reads must get all of it, in order.
    asio::write(server, asio::buffer(sent));
    server.close();
    Bytes chunk(64 * KiB);
    for (;;) {
      auto [ec, n] =
          co_await client.async_read_some(asio::buffer(chunk), as_tuple(asio::use_awaitable));
      received.insert(received.end(), chunk.begin(),
                      chunk.begin() + static_cast<std::ptrdiff_t>(n));
      if (ec) {
        EXPECT_EQ(ec, asio::error::eof);
        break;
      }
    }
  };
  bool finished = false;
  asio::co_spawn(io, client_side(), [&](std::exception_ptr e) {
    finished = true;
    if (e) ADD_FAILURE() << "coroutine threw";
  });
  io.run_for(scaled(10s));
  if (!finished) client.abort();  // a read that ignores cancellation never lets `||` finish
  ASSERT_TRUE(finished);
  EXPECT_TRUE(timed_out);
  EXPECT_TRUE(sentinel_intact);
  EXPECT_EQ(received.size(), sent.size());
  EXPECT_TRUE(received == sent);
}

// A cancellation_signal emitted (on the handler's executor, as Asio requires) on a pending read,
// for each cancellation type rendr supports; the read after it gets the bytes sent afterwards.
TEST_F(IntegrationTest, CancellationSignalAbortsAPendingReadAndTheConnGoesOn) {
  Conn client;
  Conn server;
  ASSERT_TRUE(listen_and_connect(1, client, server));

  asio::io_context io;
  std::uint64_t seed = 1;
  for (auto type : {asio::cancellation_type::terminal, asio::cancellation_type::partial,
                    asio::cancellation_type::total}) {
    asio::cancellation_signal signal;
    Bytes buffer(1 * KiB);
    Result cancelled;
    client.async_read_some(
        asio::buffer(buffer),
        asio::bind_cancellation_slot(signal.slot(),
                                     asio::bind_executor(io, [&](error_code ec, std::size_t n) {
                                       cancelled = {true, ec, n};
                                     })));
    asio::post(io, [&] { signal.emit(type); });
    io.restart();
    io.run_for(scaled(5s));
    ASSERT_TRUE(cancelled.done) << "type " << static_cast<int>(type);
    EXPECT_EQ(cancelled.ec, asio::error::operation_aborted);
    EXPECT_EQ(cancelled.n, 0u);

    const Bytes sent = pattern(++seed, 512);
    asio::write(server, asio::buffer(sent));
    Bytes got(sent.size());
    asio::read(client, asio::buffer(got));
    EXPECT_TRUE(got == sent);
  }
}

TEST_F(IntegrationTest, ConnCancelFromAnotherThreadAbortsPendingRead) {
  Conn client;
  Conn server;
  ASSERT_TRUE(listen_and_connect(1, client, server));

  Bytes buffer(1 * KiB);
  auto pending = client.async_read_some(asio::buffer(buffer), asio::use_future);
  std::thread canceller([copy = client]() mutable { copy.cancel(); });  // another handle, too
  canceller.join();
  ASSERT_EQ(pending.wait_for(scaled(5s)), std::future_status::ready);
  try {
    pending.get();
    ADD_FAILURE() << "the cancelled read completed normally";
  } catch (const system_error& e) {
    EXPECT_EQ(e.code(), asio::error::operation_aborted);
  }
  EXPECT_TRUE(client.is_open());

  const Bytes sent = pattern(3, 100 * KiB);
  asio::write(server, asio::buffer(sent));
  Bytes got(sent.size());
  asio::read(client, asio::buffer(got));
  EXPECT_TRUE(got == sent);
}

// A write blocked on a full send buffer (the peer does not read) is cancelled through its slot;
// exactly the bytes reported written reach the peer, followed by what is written after the
// cancellation. A write that found room before the cancellation arrived completes normally with
// its bytes (the cancellation came too late): then the next one is tried. The peer's window
// and the send buffer bound what can be written, so the writes soon find no room and one is
// cancelled while pending. (Waiting for a full send buffer between writes raced: acks arriving
// after a partial write can leave it below full for good.)
TEST_F(IntegrationTest, CancelledWriteOnAFullSendBufferLosesAndRepeatsNothing) {
  ListenOptions small;
  small.options.recv_window = 128 * KiB;
  listen(small);
  Dialer d = dialer(loopback_paths({listener_.port()}));
  d.options.send_buffer = 128 * KiB;
  Conn client;
  Conn server;
  std::tie(client, server) = connect_all_up(d, 1);
  ASSERT_TRUE(client.is_open() && server.is_open());

  asio::io_context io;
  const Bytes big = pattern(5, 64 * MiB);  // far more than window + buffers hold
  std::size_t written = 0;
  bool aborted = false;
  for (int attempt = 0; attempt < 1000 && !aborted; ++attempt) {
    asio::cancellation_signal signal;
    Result write;
    client.async_write_some(
        asio::buffer(big) + written,
        asio::bind_cancellation_slot(signal.slot(),
                                     asio::bind_executor(io, [&](error_code ec, std::size_t n) {
                                       write = {true, ec, n};
                                     })));
    asio::post(io, [&] { signal.emit(asio::cancellation_type::terminal); });
    io.restart();
    io.run_for(scaled(5s));  // returns once the handler has run
    ASSERT_TRUE(write.done) << "a cancelled write stayed pending";
    if (write.ec == asio::error::operation_aborted) {
      EXPECT_EQ(write.n, 0u);
      aborted = true;
    } else {
      ASSERT_FALSE(write.ec) << write.ec.message();
      written += write.n;
    }
  }
  ASSERT_TRUE(aborted);
  ASSERT_GT(written, 0u);

  const Bytes trailer = pattern(6, 1000);
  asio::write(client, asio::buffer(trailer));
  client.close();
  Bytes expected(big.begin(), big.begin() + static_cast<std::ptrdiff_t>(written));
  expected.insert(expected.end(), trailer.begin(), trailer.end());
  Bytes got(expected.size());
  asio::read(server, asio::buffer(got));
  EXPECT_TRUE(got == expected);
  std::array<std::uint8_t, 1> extra{};
  error_code ec;
  EXPECT_EQ(server.read_some(asio::buffer(extra), ec), 0u);
  EXPECT_EQ(ec, asio::error::eof);
}

}  // namespace
}  // namespace rendr::itest

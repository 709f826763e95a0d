#pragma once
// Echo traffic as coroutines (`rendr bench echo --async`), generic over the stream (raw TCP
// socket or rendr::Conn): an echo server and a probe whose sender writes a small timestamped
// message every interval and whose receiver reads the echoes, all three on the stream's
// io_context. The same EchoReport as the threaded echo (echo.hpp).
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <memory>
#include <system_error>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "echo.hpp"
#include "stream_ops.hpp"

namespace rendr::cli {

// Sends back everything it reads until EOF, then half-closes; `done` gets the first error
// other than the peer's EOF.
template <class Stream>
asio::awaitable<void> async_serve_echo(Stream& stream, std::promise<std::error_code>& done) {
  constexpr auto token = asio::experimental::as_tuple(asio::use_awaitable);
  std::vector<std::byte> buffer(64 * 1024);
  std::error_code error;
  for (;;) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(buffer), token);
    if (ec) {
      if (ec != asio::error::eof) error = ec;
      break;
    }
    auto [write_ec, written] =
        co_await asio::async_write(stream, asio::buffer(buffer.data(), n), token);
    if (write_ec) {
      error = write_ec;
      break;
    }
  }
  if (!error) half_close(stream);
  done.set_value(error);
}

template <class Stream>
class AsyncEchoProbe {
 public:
  static constexpr std::size_t kMessageBytes = 32;  // sequence, send time, padding

  AsyncEchoProbe(Stream& stream, std::chrono::microseconds interval)
      : stream_(stream), interval_(interval), timer_(stream.get_executor()) {}

  // Starts the sender and the receiver on the stream's executor.
  void start() {
    start_ = Clock::now();
    asio::co_spawn(stream_.get_executor(), send_loop(), asio::detached);
    asio::co_spawn(stream_.get_executor(), receive_loop(), asio::detached);
  }

  // Stops sending (the sender half-closes), then waits up to `drain` for the echoes still in
  // flight and the peer's EOF; after that the stream is aborted and the rest counts as lost.
  EchoReport finish(std::chrono::milliseconds drain) {
    stopping_ = true;
    auto received = receiver_done_.get_future();
    if (received.wait_for(drain) != std::future_status::ready) {
      asio::post(stream_.get_executor(), [this] {
        aborted_ = true;
        abort_stream(stream_);
      });
      received.wait();
    }
    sender_done_.get_future().wait();
    EchoReport report = report_;
    if (aborted_) report.receive_error = {};  // our own abort, not the stream's failure
    return report;
  }

 private:
  struct Message {
    std::uint64_t sequence;
    std::int64_t sent_ns;
  };

  asio::awaitable<void> send_loop() {
    constexpr auto token = asio::experimental::as_tuple(asio::use_awaitable);
    std::array<std::byte, kMessageBytes> bytes{};
    for (std::uint64_t sequence = 0; !stopping_; ++sequence) {
      timer_.expires_at(start_ + sequence * interval_);
      co_await timer_.async_wait(token);
      if (stopping_) break;
      const Message message{sequence, Clock::now().time_since_epoch().count()};
      std::memcpy(bytes.data(), &message, sizeof message);
      auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(bytes), token);
      if (ec) {
        report_.send_error = ec;
        break;
      }
      ++report_.sent;
    }
    half_close(stream_);
    sender_done_.set_value();
  }

  asio::awaitable<void> receive_loop() {
    constexpr auto token = asio::experimental::as_tuple(asio::use_awaitable);
    std::array<std::byte, kMessageBytes> bytes{};
    std::uint64_t expected = 0;
    for (;;) {
      auto [ec, n] = co_await asio::async_read(stream_, asio::buffer(bytes), token);
      const Clock::time_point now = Clock::now();
      if (ec) {
        if (ec != asio::error::eof) report_.receive_error = ec;
        break;
      }
      Message message;
      std::memcpy(&message, bytes.data(), sizeof message);
      if (message.sequence != expected) ++report_.out_of_order;
      expected = message.sequence + 1;
      report_.rtt_us.push_back(to_us(now - Clock::time_point(Clock::duration(message.sent_ns))));
      ++report_.received;
    }
    receiver_done_.set_value();
  }

  Stream& stream_;
  const std::chrono::microseconds interval_;
  asio::steady_timer timer_;
  Clock::time_point start_{};
  std::atomic<bool> stopping_{false};
  bool aborted_ = false;  // on the stream's executor, read after the receiver is done
  // Written by the coroutines only; read by finish() after both promises are set.
  EchoReport report_;
  std::promise<void> sender_done_;
  std::promise<void> receiver_done_;
};

}  // namespace rendr::cli

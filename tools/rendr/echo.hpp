#pragma once
// Echo traffic for the latency and failover benchmarks, generic over the stream (raw TCP socket
// or rendr::Conn): a server loop that sends back what it reads, and a probe that sends a small
// timestamped message every interval on one thread and reads the echoes on another.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include <asio/buffer.hpp>
#include <asio/error.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include "stats.hpp"
#include "stream_ops.hpp"

namespace rendr::cli {

// Sends back everything it reads until EOF, then half-closes. Returns the first error other
// than the peer's EOF; counts the echoed bytes in `echoed`.
template <class Stream>
std::error_code serve_echo(Stream& stream, std::uint64_t& echoed) {
  std::vector<std::byte> buffer(64 * 1024);
  std::error_code ec;
  for (;;) {
    const std::size_t n = stream.read_some(asio::buffer(buffer), ec);
    if (ec) break;
    asio::write(stream, asio::buffer(buffer.data(), n), ec);
    if (ec) return ec;
    echoed += n;
  }
  if (ec != asio::error::eof) return ec;
  half_close(stream);
  return {};
}

struct EchoReport {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t out_of_order = 0;  // echoes whose sequence number was not the next expected
  std::vector<double> rtt_us;
  std::error_code send_error;
  std::error_code receive_error;

  std::uint64_t lost() const { return sent - std::min(sent, received); }
  std::uint64_t errors() const {
    return (send_error ? 1 : 0) + (receive_error ? 1 : 0) + out_of_order;
  }
};

template <class Stream>
class EchoProbe {
 public:
  static constexpr std::size_t kMessageBytes = 32;  // sequence, send time, padding

  EchoProbe(Stream& stream, std::chrono::microseconds interval)
      : stream_(stream), interval_(interval) {}
  ~EchoProbe() {
    if (sender_.joinable()) finish(std::chrono::milliseconds(0));
  }
  EchoProbe(const EchoProbe&) = delete;
  EchoProbe& operator=(const EchoProbe&) = delete;

  void start() {
    start_ = Clock::now();
    sender_ = std::thread([this] { send_loop(); });
    receiver_ = std::thread([this] { receive_loop(); });
  }

  // Stops sending and half-closes, then waits up to `drain` for the echoes still in flight and
  // the peer's EOF; after that the stream is aborted and whatever is missing counts as lost.
  EchoReport finish(std::chrono::milliseconds drain) {
    stopping_ = true;
    sender_.join();
    {
      std::unique_lock lock(mu_);
      if (!done_cv_.wait_for(lock, drain, [&] { return receiver_done_; })) {
        lock.unlock();
        abort_stream(stream_);
        aborted_ = true;
      }
    }
    receiver_.join();
    std::lock_guard lock(mu_);
    EchoReport report = report_;
    if (aborted_) report.receive_error = {};  // our own abort, not the stream's failure
    return report;
  }

  // Arrival times of the echoes received so far (steady clock).
  std::vector<Clock::time_point> reply_times() const {
    std::lock_guard lock(mu_);
    return reply_times_;
  }

  std::error_code first_error() const {
    std::lock_guard lock(mu_);
    return report_.send_error ? report_.send_error : report_.receive_error;
  }

 private:
  struct Message {
    std::uint64_t sequence;
    std::int64_t sent_ns;
  };

  void send_loop() {
    std::byte bytes[kMessageBytes] = {};
    for (std::uint64_t sequence = 0; !stopping_; ++sequence) {
      std::this_thread::sleep_until(start_ + sequence * interval_);
      const Message message{sequence, Clock::now().time_since_epoch().count()};
      std::memcpy(bytes, &message, sizeof message);
      std::error_code ec;
      asio::write(stream_, asio::buffer(bytes), ec);
      std::lock_guard lock(mu_);
      if (ec) {
        report_.send_error = ec;
        break;
      }
      ++report_.sent;
    }
    half_close(stream_);
  }

  void receive_loop() {
    std::byte bytes[kMessageBytes];
    std::uint64_t expected = 0;
    for (;;) {
      std::error_code ec;
      asio::read(stream_, asio::buffer(bytes), ec);
      const Clock::time_point now = Clock::now();
      std::lock_guard lock(mu_);
      if (ec) {
        if (ec != asio::error::eof) report_.receive_error = ec;
        break;
      }
      Message message;
      std::memcpy(&message, bytes, sizeof message);
      if (message.sequence != expected) ++report_.out_of_order;
      expected = message.sequence + 1;
      report_.rtt_us.push_back(to_us(now - Clock::time_point(Clock::duration(message.sent_ns))));
      reply_times_.push_back(now);
      ++report_.received;
    }
    std::lock_guard lock(mu_);
    receiver_done_ = true;
    done_cv_.notify_all();
  }

  Stream& stream_;
  const std::chrono::microseconds interval_;
  Clock::time_point start_{};
  std::atomic<bool> stopping_{false};
  std::thread sender_;
  std::thread receiver_;

  mutable std::mutex mu_;
  std::condition_variable done_cv_;
  bool receiver_done_ = false;
  bool aborted_ = false;
  EchoReport report_;
  std::vector<Clock::time_point> reply_times_;
};

}  // namespace rendr::cli

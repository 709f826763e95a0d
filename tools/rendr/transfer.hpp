#pragma once
// One bulk transfer, the same code for the raw TCP baseline and for rendr: one sender thread
// writes `total` bytes of the Payload in 1 MiB writes and half-closes; the calling thread reads
// in 1 MiB reads until EOF and verifies what it read, in one of two ways:
//  - sha256: both ends SHA-256 (OpenSSL) what they handle; costs ~0.7 s of CPU per GiB per end.
//  - compare: the receiver compares every byte with the Payload at its offset (memcmp, ~10x
//    cheaper), so the run is limited by the transport rather than by hashing.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <asio/buffer.hpp>
#include <asio/error.hpp>
#include <asio/write.hpp>

#include "payload.hpp"
#include "sha256.hpp"
#include "stats.hpp"
#include "stream_ops.hpp"

namespace rendr::cli {

struct TransferProgress {
  std::atomic<std::uint64_t> written{0};
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::int64_t> longest_gap_ns{0};  // live copy of TransferResult::max_stall
};

enum class Verify { sha256, compare };

struct TransferResult {
  Verify verify = Verify::sha256;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::string sent_sha256;      // sha256 only
  std::string received_sha256;  // sha256 only
  bool bytes_differ = false;    // compare only: some byte was not the Payload's
  Clock::duration elapsed{};    // first write until the last byte was read
  Clock::duration max_stall{};  // longest gap between two receiver reads
  bool eof_after_all_bytes = false;
  std::error_code send_error;
  std::error_code receive_error;

  // The receiver got exactly the bytes sent: equal digests, or every byte compared equal.
  bool intact() const {
    return bytes_received == bytes_sent &&
           (verify == Verify::sha256 ? received_sha256 == sent_sha256 : !bytes_differ);
  }
  bool ok() const { return intact() && eof_after_all_bytes && !send_error && !receive_error; }
  double megabytes_per_second() const {
    const double seconds = std::chrono::duration<double>(elapsed).count();
    return seconds > 0 ? double(bytes_received) / 1e6 / seconds : 0;
  }
};

// `after_write(bytes_written_so_far)` runs on the sender thread after every write (the
// benchmark's migration trigger).
template <class SendStream, class ReceiveStream, class AfterWrite>
TransferResult run_transfer(SendStream& sender, ReceiveStream& receiver, const Payload& payload,
                            std::uint64_t total, Verify verify, TransferProgress& progress,
                            AfterWrite after_write) {
  TransferResult result;
  result.verify = verify;
  const bool hashing = verify == Verify::sha256;
  const Clock::time_point start = Clock::now();

  std::thread send_thread([&] {
    Sha256 hash;
    std::uint64_t sent = 0;
    while (sent < total) {
      const auto chunk =
          payload.at(sent, std::min<std::uint64_t>(Payload::kMaxChunk, total - sent));
      asio::write(sender, asio::buffer(chunk.data(), chunk.size()), result.send_error);
      if (result.send_error) break;
      if (hashing) hash.update(chunk);
      sent += chunk.size();
      progress.written.store(sent, std::memory_order_relaxed);
      after_write(sent);
    }
    result.bytes_sent = sent;
    if (hashing) result.sent_sha256 = hash.hex_digest();
    if (result.send_error)
      abort_stream(receiver);  // the receiver would otherwise wait for bytes that never come
    else
      half_close(sender);
  });

  Sha256 hash;
  GapTracker gaps;
  std::vector<std::byte> buffer(Payload::kMaxChunk);
  std::uint64_t received = 0;
  Clock::time_point last_byte_at = start;
  for (;;) {
    std::error_code ec;
    const std::size_t n = receiver.read_some(asio::buffer(buffer), ec);
    const Clock::time_point now = Clock::now();
    if (ec) {
      if (ec == asio::error::eof)
        result.eof_after_all_bytes = received == total;
      else
        result.receive_error = ec;
      break;
    }
    if (hashing)
      hash.update(buffer.data(), n);
    else if (received + n <= total)
      result.bytes_differ |= std::memcmp(buffer.data(), payload.at(received, n).data(), n) != 0;
    received += n;
    last_byte_at = now;
    gaps.mark(now);
    progress.received.store(received, std::memory_order_relaxed);
    progress.longest_gap_ns.store(
        std::chrono::duration_cast<std::chrono::nanoseconds>(gaps.longest()).count(),
        std::memory_order_relaxed);
  }
  if (result.receive_error) abort_stream(sender);  // unblock a sender stuck on back-pressure
  send_thread.join();

  result.bytes_received = received;
  if (hashing) result.received_sha256 = hash.hex_digest();
  result.elapsed = last_byte_at - start;
  result.max_stall = gaps.longest();
  return result;
}

}  // namespace rendr::cli

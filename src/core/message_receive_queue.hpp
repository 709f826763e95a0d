#pragma once
// The receive side of a packet flow: which offsets have arrived (to drop duplicates and find
// where everything below has arrived), messages held for order, and messages ready to read.
//
// Arrivals are tracked as merged offset ranges above next(); everything below next() arrived
// or was skipped (SKIP: the sender abandoned it). A message is accepted only if no part of its
// range arrived before: a whole copy is a duplicate (dropped and counted), a partial overlap
// a broken peer (refused). So every message is delivered at most once. Memory is bounded by
// the caller's window (messages must end below it) and by `max_ranges`.
//
// A SKIP may overtake the first copy of a message it covers (the sender declared it lost while
// it was only late, or replayed after a migration). Unordered, that copy is still delivered:
// the skipped offsets that had not arrived are remembered (at most `max_ranges` ranges, the
// oldest forgotten first) and a message that fills exactly part of them is accepted once.
// Ordered, it is too late for its place and dropped like a duplicate.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>

#include "wire/bytes.hpp"

namespace rendr::core {

class MessageReceiveQueue {
 public:
  // `max_ranges`: separate arrived ranges above next() kept at most (beyond: refused).
  MessageReceiveQueue(bool ordered, std::size_t max_ranges)
      : ordered_(ordered), max_ranges_(max_ranges) {}

  enum class Outcome { accepted, duplicate, refused };
  struct Result {
    Outcome outcome = Outcome::accepted;
    std::size_t became_readable = 0;  // messages now ready to read
    std::uint64_t advanced = 0;       // how far next() moved
  };

  // A message of `bytes` occupying [from, to).
  Result insert(std::uint64_t from, std::uint64_t to, wire::Slice bytes);
  // The sender will not send [from, to) again: stop waiting for it (what arrived stays).
  Result skip(std::uint64_t from, std::uint64_t to);

  std::uint64_t next() const { return next_; }
  // The message to read next (nullptr: none ready).
  const wire::Slice* front() const { return ready_.empty() ? nullptr : &ready_.front().bytes; }
  void pop();

  std::size_t ready_count() const { return ready_.size(); }
  std::size_t queued_count() const { return ready_.size() + held_.size(); }
  std::size_t queued_bytes() const { return queued_bytes_; }
  // Offsets the queued messages occupy (bytes and overhead): what the window must cover.
  std::uint64_t queued_span() const { return queued_span_; }
  std::size_t ranges() const { return arrived_.size(); }

 private:
  struct Message {
    std::uint64_t span = 0;
    wire::Slice bytes;
  };
  // Adds [from, to) to arrived_, merged with the ranges it touches or overlaps.
  void merge(std::uint64_t from, std::uint64_t to);
  // Unordered: remembers the parts of [from, to) that have not arrived as skipped.
  void remember_skipped(std::uint64_t from, std::uint64_t to);
  // Unordered: whether [from, to) lies within a skipped range; if so it is taken out of it.
  bool take_skipped(std::uint64_t from, std::uint64_t to);
  // Moves next() over arrived ranges that start at it, and releases held messages below it.
  Result advance(Result r);

  const bool ordered_;
  const std::size_t max_ranges_;
  std::uint64_t next_ = 0;
  std::map<std::uint64_t, std::uint64_t> arrived_;  // from -> to, disjoint, above next_
  std::map<std::uint64_t, Message> held_;           // ordered: above next_, by offset
  std::map<std::uint64_t, std::uint64_t> skipped_;  // unordered: from -> to, not arrived
  std::deque<Message> ready_;
  std::size_t queued_bytes_ = 0;
  std::uint64_t queued_span_ = 0;
};

}  // namespace rendr::core

#pragma once
// In-band agreement on the scheduling mode (MODE frames, docs/protocol.md §3.11).
//
// Both ends share one sequence space: `seq` is the highest sequence number either end has
// used. set_mode announces seq + 1; the peer applies a MODE whose seq is higher than any it has
// seen and answers with MODE{seq, its mode now}. That answer carries the announcer's own seq,
// so it is not applied again: it confirms receipt. Until confirmed, the announcement goes out
// on every path that comes up, so it survives the death of the path that carried it. A peer
// that sees the same seq again (its answer was lost) answers again.
//
// Two announcements crossing with the same seq are settled in the client's favour: the server
// takes the client's mode, the client takes the server's frame as its confirmation.
//
// Announcements travel on several paths, so they can overtake one another. Only the next
// announcement (seq + 1) is judged against our current mode (race<->bond is a protocol error
// then); one that skips a seq is taken as is, and the skipped one arrives stale. Any transition
// is safe for the core internally; the rule about illegal switches is about what a peer asks.
#include <cstdint>

namespace rendr::core {

class ModeSync {
 public:
  enum class Received {
    next,      // the announcement after the last one seen: apply the mode if legal, answer
    skipping,  // newer, with announcements in between still on their way: apply, answer
    repeat,    // the peer's announcement again (our answer was lost): answer again
    confirm,   // the answer to our own announcement (or a crossing one with the same seq)
    stale,     // older: ignore
  };

  // A new local announcement; returns its seq.
  std::uint64_t announce() {
    own_ = true;
    unconfirmed_ = true;
    return ++seq_;
  }
  Received receive(std::uint64_t seq) {
    if (seq > seq_) {
      const bool next = seq == seq_ + 1;
      seq_ = seq;
      own_ = false;
      unconfirmed_ = false;  // the peer's later announcement supersedes ours
      return next ? Received::next : Received::skipping;
    }
    if (seq < seq_) return Received::stale;
    if (!own_) return Received::repeat;
    unconfirmed_ = false;
    return Received::confirm;
  }

  std::uint64_t seq() const { return seq_; }
  bool unconfirmed() const { return unconfirmed_; }

 private:
  std::uint64_t seq_ = 0;
  bool own_ = false;
  bool unconfirmed_ = false;
};

}  // namespace rendr::core

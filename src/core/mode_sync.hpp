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
#include <cstdint>

namespace rendr::core {

class ModeSync {
 public:
  enum class Received {
    fresh,    // newer than anything seen: apply the mode, answer
    repeat,   // the peer's announcement again (our answer was lost): answer again
    confirm,  // the answer to our own announcement (or a crossing one with the same seq)
    stale,    // older: ignore
  };

  // A new local announcement; returns its seq.
  std::uint64_t announce() {
    own_ = true;
    unconfirmed_ = true;
    return ++seq_;
  }
  Received receive(std::uint64_t seq) {
    if (seq > seq_) {
      seq_ = seq;
      own_ = false;
      unconfirmed_ = false;  // the peer's later announcement supersedes ours
      return Received::fresh;
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

#pragma once
// The control frames a path owes, in the order poll_transmit sends them.
//
// Each kind is owed at most once (a second request before the frame went out changes nothing),
// so the queue is a set of bits; the enum's order is the sending priority. The flow-level ACK
// and the close notice are not here: they are owed by the flow and go out on whichever path
// carries the flow's ACKs (Flow::Impl::carries_acks), between `pong` and `ack_copy`.
#include <cstdint>

namespace rendr::core {

enum class Control : std::uint8_t {
  proof,          // client: the PROOF of the flow key, first on a path once its handshake verified
  open_ack,       // server: the answer to the OPEN that created the flow on this path
  join_ack,       // server: the answer to the JOIN that attached this path
  abort_close,    // CLOSE(aborted), after which the carrier closes
  pong,           // the answer to the peer's PING
  ack_ranges,     // datagram paths: ACK_RANGES, the packets received on this path
  ack_copy,       // the flow's ACK, copied here so the peer sees this path answer
  mode_announce,  // MODE: our announcement (ack-eliciting)
  mode_answer,    // MODE: the answer to the peer's announcement
  ping,           // a PING (liveness, RTT)
};

class ControlQueue {
 public:
  void owe(Control c) { bits_ |= bit(c); }
  void owe_if(Control c, bool owed) { owed ? owe(c) : drop(c); }
  void drop(Control c) { bits_ &= static_cast<std::uint16_t>(~bit(c)); }
  bool owes(Control c) const { return (bits_ & bit(c)) != 0; }
  // Whether `c` was owed; it is not any more.
  bool take(Control c) {
    const bool owed = owes(c);
    drop(c);
    return owed;
  }
  void clear() { bits_ = 0; }

 private:
  static std::uint16_t bit(Control c) {
    return static_cast<std::uint16_t>(1u << static_cast<unsigned>(c));
  }
  std::uint16_t bits_ = 0;
};

}  // namespace rendr::core

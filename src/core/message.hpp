#pragma once
// The vocabulary of packet flows (docs/design.md "Packet mode"): a flow's packet options and
// what sending or receiving one message can answer.
#include <cstddef>
#include <cstdint>

#include "wire/frame.hpp"

namespace rendr::core {

// The largest message by default: it and its DATA header fit one default datagram packet
// (1171 frame bytes, flow.hpp kDefaultPacketPayload), so a message is never split and one
// message rides in one datagram.
inline constexpr std::size_t kDefaultMaxMessage = 1200 - 13 - 16 - wire::kMaxDataHeader;

struct PacketOptions {
  // Delivered exactly once, sent again across loss and migration. Unreliable: never sent again
  // (a SKIP replaces what was lost) and never delivered twice.
  bool reliable = true;
  // Delivered in the order sent; else on arrival.
  bool ordered = false;
  // Larger messages are refused (MessageSendResult::too_large), never truncated or split. At
  // most kDefaultMaxMessage: larger ones would not fit one datagram.
  std::size_t max_message = kDefaultMaxMessage;

  friend bool operator==(const PacketOptions&, const PacketOptions&) = default;
};

// The OPEN's options byte for `options`, and back.
inline std::uint8_t to_wire(const PacketOptions& options) {
  return static_cast<std::uint8_t>((options.reliable ? 0 : wire::Open::kOptionUnreliable) |
                                   (options.ordered ? wire::Open::kOptionOrdered : 0));
}
inline bool known_packet_options(std::uint8_t options) {
  return (options & ~(wire::Open::kOptionUnreliable | wire::Open::kOptionOrdered)) == 0;
}

enum class MessageSendResult {
  ok,
  full,       // the send queue has no room for it now (wait for `writable`)
  too_large,  // above PacketOptions::max_message: refused, never truncated
  closed,     // our end is closed, the flow finished, or it is not a packet flow
};

// What receive_message did. A message larger than the caller's buffer stays queued
// (buffer_too_small, `size` says how large it is), so a larger buffer can take it.
struct MessageReceiveResult {
  enum class Status { ok, none, buffer_too_small };
  Status status = Status::none;
  std::size_t size = 0;
};

}  // namespace rendr::core

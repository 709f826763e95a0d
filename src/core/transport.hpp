#pragma once
// How a path's transport treats loss: the seam where datagram paths plug in.
//
// A **reliable** path (TCP, a QUIC stream) has a carrier that repairs loss itself: every frame
// the core hands it arrives once and in order, or the carrier goes down. The core then needs
// no packet numbers, no per-path ACKs and no congestion control of its own (the carrier's
// socket buffer is the back-pressure): ReliableTransport is that case, and it is what every
// path uses today. Only a dead path loses data; liveness (core/liveness.hpp) finds it and the
// scheduler re-sends what it carried (Scheduler::on_path_lost).
//
// A **datagram** path (udpflow, QUIC DATAGRAM) loses, duplicates and reorders packets, so the
// core must own what a reliable carrier does: per-path packet numbers, ACK ranges, RFC 9002
// loss detection, a congestion window and pacing. Its PathTransport will
//   - number each datagram poll_transmit fills and remember what it carried (on_sent),
//   - take the peer's per-path ACK ranges, sample RTT from them and declare packets lost by
//     the packet and time thresholds; lost DATA ranges go to the payload's retransmit queue
//     (on_timer, and an on_ack that comes with the new ACK-ranges frame),
//   - gate sending by its congestion window (send_allowance) and pace it (next_send_time).
// recovery::DatagramTransport (core/recovery/) is that transport; besides these hooks it has a
// packet-level interface (datagram()) the flow uses to number packets and exchange ACK_RANGES.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>

#include "core/retransmit_queue.hpp"
#include "core/types.hpp"

namespace rendr::core {

enum class TransportKind : std::uint8_t {
  reliable,  // the carrier repairs loss (TCP, a QUIC stream)
  datagram,  // the core repairs loss (udpflow, QUIC DATAGRAM): recovery::DatagramTransport
};

namespace recovery {
class DatagramTransport;
}

class PathTransport {
 public:
  virtual ~PathTransport() = default;
  virtual TransportKind kind() const = 0;
  // The datagram transport's packet-level interface (core/recovery/datagram_transport.hpp);
  // nullptr for a reliable path.
  virtual recovery::DatagramTransport* datagram() { return nullptr; }

  // Bytes the path may put on the wire now (congestion window minus bytes in flight).
  virtual std::uint64_t send_allowance() const = 0;
  // The earliest time the path may send again (pacing); nullopt: now.
  virtual std::optional<Time> next_send_time() const = 0;
  // A frame of `bytes` went out on the path; `ack_eliciting`: the peer must answer it.
  virtual void on_sent(std::size_t bytes, bool ack_eliciting, Time now) = 0;
  // Loss detection and pacing timers: ranges of DATA now deemed lost go to `lost`.
  virtual void on_timer(Time now, RetransmitQueue& lost) = 0;
  // When on_timer is next needed; nullopt: never.
  virtual std::optional<Time> next_timer() const = 0;
};

// The carrier repairs loss: nothing to number, detect or pace.
class ReliableTransport final : public PathTransport {
 public:
  TransportKind kind() const override { return TransportKind::reliable; }
  std::uint64_t send_allowance() const override {
    return std::numeric_limits<std::uint64_t>::max();  // the socket buffer back-pressures
  }
  std::optional<Time> next_send_time() const override { return std::nullopt; }
  void on_sent(std::size_t, bool, Time) override {}
  void on_timer(Time, RetransmitQueue&) override {}
  std::optional<Time> next_timer() const override { return std::nullopt; }
};

}  // namespace rendr::core

#pragma once
// The congestion controller of one datagram path: how many bytes may be in flight, and how
// fast to pace them. The loss detector tells it what happens to in-flight packets; it never
// sees packet contents.
//
// Shaped so that a model-based controller (BBR) fits: every event carries the packet's send
// time and size and the RTT estimate, the controller computes its own pacing rate, and the loss
// detector hands it each ACK's delivery-rate sample (delivery_rate.hpp) before the ACK.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "core/recovery/config.hpp"
#include "core/recovery/delivery_rate.hpp"
#include "core/recovery/rtt_stats.hpp"
#include "core/types.hpp"

namespace rendr::core::recovery {

struct AckedPacket {
  PacketNumber pn = 0;
  std::size_t bytes = 0;
  Time sent_at{};
};

struct LostPacket {
  PacketNumber pn = 0;
  std::size_t bytes = 0;
  Time sent_at{};
};

class CongestionController {
 public:
  virtual ~CongestionController() = default;
  virtual std::string_view name() const = 0;

  // An ack-eliciting (in-flight) packet of `bytes` was sent.
  virtual void on_packet_sent(std::size_t bytes, Time now) = 0;
  // The delivery-rate sample of the ACK whose packets on_packets_acked reports next (a
  // model-based controller's input; loss-based ones ignore it).
  virtual void on_rate_sample(const RateSample&) {}
  // In-flight packets newly acknowledged by one ACK, in packet-number order. `rtt` already
  // holds the sample this ACK gave (if any).
  virtual void on_packets_acked(std::span<const AckedPacket> acked, const RttStats& rtt,
                                Time now) = 0;
  // In-flight packets newly declared lost in one detection pass, in packet-number order. A
  // congestion event (window reduction) happens at most once per recovery period: losses of
  // packets sent before the current period began do not reduce the window again.
  virtual void on_packets_lost(std::span<const LostPacket> lost, Time now) = 0;
  // RFC 9002 §7.6: the window collapses to the minimum (after on_packets_lost for the batch).
  virtual void on_persistent_congestion(Time now) = 0;
  // Every packet whose loss caused the last congestion event was acknowledged after all (it
  // was reordered, not lost): restore the window as it was before that event (RFC 9438 §4.9).
  virtual void on_spurious_congestion_event() = 0;
  // The path's datagram size changed (path-MTU discovery); windows are counted in datagrams.
  virtual void set_max_datagram_size(std::size_t bytes) = 0;

  virtual std::uint64_t congestion_window() const = 0;
  virtual std::uint64_t bytes_in_flight() const = 0;
  // Bytes per second to pace at (0: do not pace).
  virtual std::uint64_t pacing_rate(const RttStats& rtt) const = 0;
  // Slow-start threshold, for stats (UINT64_MAX while still in the first slow start).
  virtual std::uint64_t slow_start_threshold() const = 0;
  // The path's bottleneck bandwidth as the controller models it, bytes/s (0: it keeps none).
  virtual std::uint64_t bandwidth_estimate() const { return 0; }
  // True while a window reduction is in effect for packets sent before `sent_at`.
  virtual bool in_recovery(Time sent_at) const = 0;
};

std::unique_ptr<CongestionController> make_congestion_controller(const RecoveryConfig& config);

}  // namespace rendr::core::recovery

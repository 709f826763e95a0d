#pragma once
// The sending half's memory: one record per packet sent on a datagram path, in packet-number
// order, with what the packet carried so that its loss can be repaired.
//
// What a packet carried is a PacketContent the flow fills while it builds the packet: the DATA
// ranges (re-queued for sending if the packet is lost), an opaque mask of flow-defined control
// bits (e.g. "carried a MODE", "carried the FIN"; the flow re-sends the current state of those
// when the packet is lost), and the largest packet number of an ACK_RANGES it carried (its
// acknowledgement lets the receiving half forget those ranges).
//
#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>

#include "core/recovery/config.hpp"
#include "core/recovery/delivery_rate.hpp"
#include "core/types.hpp"

namespace rendr::core::recovery {

struct PacketContent {
  static constexpr std::size_t kMaxDataRanges = 4;
  struct DataRange {
    std::uint64_t from = 0;
    std::uint64_t to = 0;  // exclusive
  };

  // Adds the stream range [from, to) (merged into the last one when contiguous). False when
  // the record is full: the flow should close the packet before adding more DATA.
  bool add_data(std::uint64_t from, std::uint64_t to) {
    if (from >= to) return true;
    if (data_count > 0 && data[data_count - 1].to == from) {
      data[data_count - 1].to = to;
      return true;
    }
    if (data_full()) return false;
    data[data_count++] = DataRange{from, to};
    return true;
  }
  bool data_full() const { return data_count == kMaxDataRanges; }

  std::array<DataRange, kMaxDataRanges> data{};
  std::uint8_t data_count = 0;
  std::uint32_t control = 0;                // flow-defined bits, opaque here
  std::optional<PacketNumber> ack_largest;  // carried ACK_RANGES with this largest
  bool ack_eliciting = false;               // carried a frame the peer must acknowledge
  // A path-MTU probe (padded to the size probed): invisible to the congestion controller, and
  // its loss (most likely to the MTU) is no congestion signal; it is dropped, not kept lost.
  bool mtu_probe = false;
};

struct SentPacket {
  PacketNumber pn = 0;
  Time sent_at{};
  std::uint32_t bytes = 0;  // whole datagram, as counted against the congestion window
  // Position among the ack-eliciting packets sent (persistent congestion needs runs of lost
  // packets with no acknowledged ack-eliciting packet between them).
  std::uint64_t eliciting_seq = 0;
  // Once declared lost (the record is kept a while to recognise a spurious loss): when, by
  // which threshold, with what reordering, in which congestion event.
  bool lost_by_time = false;
  Time lost_at{};
  std::uint64_t reorder_distance = 0;  // largest acked - pn at the time of the loss
  std::uint64_t loss_event = 0;
  DeliverySnapshot delivery;  // the path's delivery state when it left (rate samples)
  PacketContent content;
};

// An ACK-only packet (not ack-eliciting): nothing to repair or to count in flight; remembered
// only to learn from its acknowledgement that the peer saw the ACK it carried.
struct AckOnlyPacket {
  PacketNumber pn = 0;
  Time sent_at{};
  std::uint32_t control = 0;
  std::optional<PacketNumber> ack_largest;
};

// The records, by packet number, in three sets so that an ACK or a loss-detection pass visits
// only what it must, however large the window:
//   - outstanding: ack-eliciting packets neither acknowledged nor declared lost (in flight);
//   - lost: declared lost, kept until `trim`'s horizon to recognise a spurious loss;
//   - ACK-only: the last kMaxAckOnly of them (a peer that only receives them may never
//     acknowledge them, so older ones are simply forgotten).
// Acknowledged records are erased at once.
class SentPackets {
 public:
  using Map = std::map<PacketNumber, SentPacket>;
  static constexpr std::size_t kMaxAckOnly = 256;

  // Records the next packet number (next_pn) as sent, and returns it.
  PacketNumber add(Time sent_at, std::size_t bytes, const PacketContent& content,
                   const DeliverySnapshot& delivery = {});
  // Moves an outstanding record to the lost set; returns the next outstanding one.
  Map::iterator mark_lost(Map::iterator it);
  // Drops lost records declared before `horizon`.
  void trim(Time horizon);

  Map& outstanding() { return outstanding_; }
  const Map& outstanding() const { return outstanding_; }
  Map& lost() { return lost_; }
  std::deque<AckOnlyPacket>& ack_only() { return ack_only_; }
  // The lowest packet number of any record; nullopt: none.
  std::optional<PacketNumber> lowest() const;
  std::size_t size() const { return outstanding_.size() + lost_.size() + ack_only_.size(); }
  // The next packet number to send.
  PacketNumber next_pn() const { return next_pn_; }

 private:
  Map outstanding_;
  Map lost_;
  std::deque<AckOnlyPacket> ack_only_;
  PacketNumber next_pn_ = 0;
  std::uint64_t next_eliciting_seq_ = 0;
};

}  // namespace rendr::core::recovery

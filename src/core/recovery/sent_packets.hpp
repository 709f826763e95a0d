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
// Records leave once settled (acknowledged; declared lost and kept a little longer to recognise
// a spurious loss; ACK-only and old), so memory follows what is in flight.
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>

#include "core/recovery/config.hpp"
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
};

struct SentPacket {
  PacketNumber pn = 0;
  Time sent_at{};
  std::uint32_t bytes = 0;  // whole datagram, as counted against the congestion window
  // Declared lost (kept a while to recognise a spurious loss): when, by which threshold, with
  // what reordering, in which congestion event.
  bool lost = false;
  bool lost_by_time = false;
  Time lost_at{};
  std::uint64_t reorder_distance = 0;  // largest acked - pn at the time of the loss
  std::uint64_t loss_event = 0;
  PacketContent content;

  // Counts against the congestion window (ack-eliciting and not declared lost).
  bool in_flight() const { return !lost && content.ack_eliciting; }
};

// Records of packets neither acknowledged nor given up on, by packet number. Acknowledged
// records are erased at once, so an ACK or a loss-detection pass visits only what is still
// outstanding, however large the window.
class SentPackets {
 public:
  using Map = std::map<PacketNumber, SentPacket>;

  // Records the next packet number (next_pn) as sent, and returns its record.
  SentPacket& add(Time sent_at, std::size_t bytes, const PacketContent& content);
  void erase(Map::iterator it) { records_.erase(it); }
  // Drops from the front lost records declared before `horizon` and ACK-only records sent
  // before it (the peer may never acknowledge those: nothing makes it send an ACK for them).
  void trim(Time horizon);

  Map& records() { return records_; }
  const Map& records() const { return records_; }
  std::size_t size() const { return records_.size(); }
  // The next packet number to send.
  PacketNumber next_pn() const { return next_pn_; }

 private:
  Map records_;
  PacketNumber next_pn_ = 0;
};

}  // namespace rendr::core::recovery

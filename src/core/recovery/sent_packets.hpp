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
// Records leave from the front once settled (acknowledged, not ack-eliciting, or declared lost
// and kept a little longer to recognise a spurious loss), so memory follows what is in flight.
#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
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
  enum class State : std::uint8_t { in_flight, acked, lost, settled };

  PacketNumber pn = 0;
  Time sent_at{};
  std::uint32_t bytes = 0;  // whole datagram, as counted against the congestion window
  State state = State::in_flight;
  // Declared lost: when, and by which threshold with what reordering (spurious-loss tuning).
  Time lost_at{};
  bool lost_by_time = false;
  std::uint64_t reorder_distance = 0;  // largest acked - pn at the time of the loss
  std::uint64_t loss_event = 0;        // the congestion event its loss belonged to
  PacketContent content;

  // Counts against the congestion window (every ack-eliciting packet; ACK-only ones do not).
  bool in_flight() const { return state == State::in_flight && content.ack_eliciting; }
};

class SentPackets {
 public:
  // Records the next packet number (next_pn) as sent, and returns its record.
  SentPacket& add(Time sent_at, std::size_t bytes, const PacketContent& content);
  // The record of `pn`, or nullptr if it was never sent or has been dropped.
  SentPacket* find(PacketNumber pn);
  // Drops settled records (and lost ones declared before `keep_lost_since`) from the front.
  void trim(Time keep_lost_since);

  // Records in packet-number order (iteration for loss detection and ACK processing).
  std::deque<SentPacket>& records() { return records_; }
  const std::deque<SentPacket>& records() const { return records_; }
  std::size_t size() const { return records_.size(); }
  // The next packet number to send.
  PacketNumber next_pn() const { return next_pn_; }

 private:
  std::deque<SentPacket> records_;
  PacketNumber next_pn_ = 0;
};

}  // namespace rendr::core::recovery

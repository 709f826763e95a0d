#pragma once
// Messages a reliable path sent in its carrier's datagrams (QUIC DATAGRAM, RFC 9221): each
// outside the path's ordered stream, so its carrier may lose it. The carrier's own loss
// detection (ngtcp2's) judges each datagram and reports it acknowledged or lost by the id
// given here; a lost one's message range goes back to the scheduler (sent again, or a SKIP
// for an unreliable flow). docs/design.md "Packet mode over QUIC DATAGRAM".
//
// Ids are consecutive per path (a new carrier of the path starts over: clear()); the record of
// one ends at its first verdict, so a later contrary verdict (a spurious loss acknowledged
// after all) finds nothing. Memory: one record per datagram from the oldest not yet judged to
// the newest. A carrier may forget to judge one (ngtcp2 drops a datagram without a verdict on
// some path changes); take_overdue() takes such a one as lost once it waited too long or too
// many records pile up behind it, so the records stay bounded either way.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

#include "core/retransmit_queue.hpp"
#include "core/types.hpp"

namespace rendr::core {

class MessageDatagrams {
 public:
  // A message [from, to) goes out in a datagram at `now`: the id the carrier reports it by.
  std::uint64_t on_sent(std::uint64_t from, std::uint64_t to, Time now);
  // The datagram arrived (or the carrier sent it some other reliable way): true if it was
  // still awaiting a verdict.
  bool on_acked(std::uint64_t id);
  // The datagram was lost: the message range it carried, if it was still awaiting a verdict.
  std::optional<RetransmitQueue::Range> on_lost(std::uint64_t id);
  // The oldest datagram still awaiting a verdict, taken as lost, if it was sent `max_age` or
  // more before `now` or more than `max_records` records are kept; nullopt otherwise.
  std::optional<RetransmitQueue::Range> take_overdue(Time now, Duration max_age,
                                                     std::size_t max_records);
  // When the oldest datagram awaiting a verdict becomes overdue at `max_age` (nullopt: none
  // awaits one).
  std::optional<Time> overdue_at(Duration max_age) const;
  // A new carrier (or none): what the old one carried is the path's loss recovery's
  // (Flow::Impl::recover_from_loss_of), and its ids mean nothing any more.
  void clear();
  // Datagrams awaiting a verdict.
  std::size_t in_flight() const { return in_flight_; }
  // Records kept: from the oldest datagram awaiting a verdict to the newest one.
  std::size_t records() const { return records_.size(); }

 private:
  struct Record {
    std::optional<RetransmitQueue::Range> range;  // nullopt: judged
    Time sent;
  };
  // Records of ids [base_, base_ + records_.size()); the front one (if any) awaits a verdict.
  std::deque<Record> records_;
  std::uint64_t base_ = 0;
  std::size_t in_flight_ = 0;
  // Takes id's record, if it is still awaiting a verdict.
  std::optional<RetransmitQueue::Range> take(std::uint64_t id);
};

}  // namespace rendr::core

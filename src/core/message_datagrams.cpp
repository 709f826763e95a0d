#include "core/message_datagrams.hpp"

#include <utility>

namespace rendr::core {

std::uint64_t MessageDatagrams::on_sent(std::uint64_t from, std::uint64_t to, Time now) {
  records_.push_back({RetransmitQueue::Range{from, to}, now});
  ++in_flight_;
  return base_ + records_.size() - 1;
}

std::optional<RetransmitQueue::Range> MessageDatagrams::take(std::uint64_t id) {
  if (id < base_ || id - base_ >= records_.size()) return std::nullopt;  // judged, or never sent
  std::optional<RetransmitQueue::Range> record =
      std::exchange(records_[id - base_].range, std::nullopt);
  if (record) --in_flight_;
  while (!records_.empty() && !records_.front().range) {
    records_.pop_front();
    ++base_;
  }
  return record;
}

bool MessageDatagrams::on_acked(std::uint64_t id) {
  return take(id).has_value();
}

std::optional<RetransmitQueue::Range> MessageDatagrams::on_lost(std::uint64_t id) {
  return take(id);
}

std::optional<RetransmitQueue::Range> MessageDatagrams::take_overdue(Time now, Duration max_age,
                                                                     std::size_t max_records) {
  if (records_.empty()) return std::nullopt;
  if (now - records_.front().sent < max_age && records_.size() <= max_records) return std::nullopt;
  return take(base_);
}

std::optional<Time> MessageDatagrams::overdue_at(Duration max_age) const {
  if (records_.empty()) return std::nullopt;
  return records_.front().sent + max_age;
}

void MessageDatagrams::clear() {
  base_ += records_.size();
  records_.clear();
  in_flight_ = 0;
}

}  // namespace rendr::core

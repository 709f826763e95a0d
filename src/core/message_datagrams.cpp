#include "core/message_datagrams.hpp"

#include <utility>

namespace rendr::core {

std::uint64_t MessageDatagrams::on_sent(std::uint64_t from, std::uint64_t to) {
  records_.push_back(RetransmitQueue::Range{from, to});
  ++in_flight_;
  return base_ + records_.size() - 1;
}

std::optional<RetransmitQueue::Range> MessageDatagrams::take(std::uint64_t id) {
  if (id < base_ || id - base_ >= records_.size()) return std::nullopt;  // judged, or never sent
  std::optional<RetransmitQueue::Range> record = std::exchange(records_[id - base_], std::nullopt);
  if (record) --in_flight_;
  while (!records_.empty() && !records_.front()) {
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

void MessageDatagrams::clear() {
  base_ += records_.size();
  records_.clear();
  in_flight_ = 0;
}

}  // namespace rendr::core

#include "core/message_receive_queue.hpp"

#include <algorithm>
#include <iterator>

namespace rendr::core {

MessageReceiveQueue::Result MessageReceiveQueue::insert(std::uint64_t from, std::uint64_t to,
                                                        wire::Slice bytes) {
  Result r;
  if (to <= next_) {
    r.outcome = Outcome::duplicate;
    return r;
  }
  if (from < next_) {
    r.outcome = Outcome::refused;  // straddles what arrived: not a message the sender has
    return r;
  }
  auto after = arrived_.upper_bound(from);
  if (after != arrived_.begin()) {
    const auto before = std::prev(after);
    if (before->second > from) {
      r.outcome = before->second >= to ? Outcome::duplicate : Outcome::refused;
      return r;
    }
  }
  if (after != arrived_.end() && after->first < to) {
    r.outcome = Outcome::refused;
    return r;
  }
  const bool touches = (after != arrived_.end() && after->first == to) ||
                       (after != arrived_.begin() && std::prev(after)->second == from);
  if (!touches && from != next_ && arrived_.size() >= max_ranges_) {
    r.outcome = Outcome::refused;  // only a hostile peer scatters that many pieces
    return r;
  }
  merge(from, to);
  Message m{to - from, std::move(bytes)};
  queued_bytes_ += m.bytes.size();
  queued_span_ += m.span;
  if (ordered_) {
    held_.emplace(from, std::move(m));
  } else {
    ready_.push_back(std::move(m));
    ++r.became_readable;
  }
  return advance(r);
}

MessageReceiveQueue::Result MessageReceiveQueue::skip(std::uint64_t from, std::uint64_t to) {
  Result r;
  from = std::max(from, next_);
  if (from >= to) {
    r.outcome = Outcome::duplicate;
    return r;
  }
  if (from != next_ && arrived_.size() >= max_ranges_) {
    r.outcome = Outcome::refused;
    return r;
  }
  merge(from, to);
  return advance(r);
}

void MessageReceiveQueue::merge(std::uint64_t from, std::uint64_t to) {
  auto it = arrived_.upper_bound(from);
  if (it != arrived_.begin() && std::prev(it)->second >= from) --it;
  while (it != arrived_.end() && it->first <= to) {
    from = std::min(from, it->first);
    to = std::max(to, it->second);
    it = arrived_.erase(it);
  }
  arrived_.emplace(from, to);
}

MessageReceiveQueue::Result MessageReceiveQueue::advance(Result r) {
  const std::uint64_t before = next_;
  while (!arrived_.empty() && arrived_.begin()->first <= next_) {
    next_ = std::max(next_, arrived_.begin()->second);
    arrived_.erase(arrived_.begin());
  }
  r.advanced = next_ - before;
  while (!held_.empty() && held_.begin()->first < next_) {
    ready_.push_back(std::move(held_.begin()->second));
    held_.erase(held_.begin());
    ++r.became_readable;
  }
  return r;
}

void MessageReceiveQueue::pop() {
  if (ready_.empty()) return;
  queued_bytes_ -= ready_.front().bytes.size();
  queued_span_ -= ready_.front().span;
  ready_.pop_front();
}

}  // namespace rendr::core

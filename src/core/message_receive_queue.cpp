#include "core/message_receive_queue.hpp"

#include <algorithm>
#include <iterator>

namespace rendr::core {

MessageReceiveQueue::Result MessageReceiveQueue::insert(std::uint64_t from, std::uint64_t to,
                                                        wire::Slice bytes) {
  Result r;
  if (take_skipped(from, to)) {
    // A first copy that a SKIP overtook: delivered now, once.
    Message m{to - from, std::move(bytes)};
    queued_bytes_ += m.bytes.size();
    queued_span_ += m.span;
    ready_.push_back(std::move(m));
    r.became_readable = 1;
    return r;
  }
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
  if (!ordered_) remember_skipped(from, to);
  merge(from, to);
  return advance(r);
}

void MessageReceiveQueue::remember_skipped(std::uint64_t from, std::uint64_t to) {
  // The gaps of arrived_ within [from, to) (from >= next_: nothing below next_ is a gap).
  std::uint64_t at = from;
  auto it = arrived_.upper_bound(from);
  if (it != arrived_.begin() && std::prev(it)->second > from) at = std::prev(it)->second;
  while (at < to) {
    const std::uint64_t gap_end = it == arrived_.end() ? to : std::min(to, it->first);
    if (gap_end > at) {
      if (skipped_.size() >= max_ranges_) skipped_.erase(skipped_.begin());  // the oldest
      skipped_.emplace(at, gap_end);
    }
    if (it == arrived_.end()) break;
    at = std::max(at, it->second);
    ++it;
  }
}

bool MessageReceiveQueue::take_skipped(std::uint64_t from, std::uint64_t to) {
  if (skipped_.empty()) return false;
  auto it = skipped_.upper_bound(from);
  if (it == skipped_.begin()) return false;
  --it;
  const auto [gap_from, gap_to] = *it;
  if (to > gap_to) return false;
  skipped_.erase(it);
  if (gap_from < from) skipped_.emplace(gap_from, from);
  if (to < gap_to) skipped_.emplace(to, gap_to);
  return true;
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

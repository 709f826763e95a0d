#include "core/message_send_queue.hpp"

#include <algorithm>

namespace rendr::core {

bool MessageSendQueue::push(wire::ConstBytes message) {
  const std::uint64_t s = span(message.size());
  if (s > free_span()) return false;
  messages_.push_back(Message{end_, wire::Slice::copy_of(message)});
  end_ += s;
  used_ += static_cast<std::size_t>(s);
  return true;
}

void MessageSendQueue::release_to(std::uint64_t offset) {
  while (!messages_.empty() && messages_.front().end() <= offset) {
    used_ -= static_cast<std::size_t>(span(messages_.front().bytes.size()));
    messages_.pop_front();
  }
  base_ = messages_.empty() ? end_ : messages_.front().offset;
}

const wire::Slice* MessageSendQueue::at(std::uint64_t offset) const {
  const auto it = std::lower_bound(messages_.begin(), messages_.end(), offset,
                                   [](const Message& m, std::uint64_t o) { return m.offset < o; });
  return it != messages_.end() && it->offset == offset ? &it->bytes : nullptr;
}

std::uint64_t MessageSendQueue::aligned_end(std::uint64_t limit) const {
  if (limit >= end_) return end_;
  // The first message that ends above the limit starts where the last whole one ends.
  const auto it = std::upper_bound(messages_.begin(), messages_.end(), limit,
                                   [](std::uint64_t l, const Message& m) { return l < m.end(); });
  return it == messages_.end() ? end_ : std::max(it->offset, base_);
}

}  // namespace rendr::core

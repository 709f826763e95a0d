#include "core/message_payload.hpp"

#include <algorithm>
#include <cstring>

namespace rendr::core {

MessagePayload::MessagePayload(const FlowConfig& config, const PacketOptions& options)
    : options_{options.reliable, options.ordered,
               std::min(options.max_message, kDefaultMaxMessage)},
      recv_window_(config.recv_window),
      ack_every_span_(config.ack_every_bytes),
      max_ack_delay_(config.max_ack_delay),
      send_(config.send_buffer),
      // Every message and every SKIP covers at least kMessageSpanOverhead offsets of the window,
      // so the window cannot hold more separate ranges than this.
      recv_(options.ordered, config.recv_window / wire::kMessageSpanOverhead + 1),
      granted_(config.recv_window),
      advertised_limit_(config.recv_window) {}

// ---- messages

MessageSendResult MessagePayload::send(wire::ConstBytes message) {
  if (fin_offset_) return MessageSendResult::closed;
  if (message.size() > options_.max_message) return MessageSendResult::too_large;
  return send_.push(message) ? MessageSendResult::ok : MessageSendResult::full;
}

MessageReceiveResult MessagePayload::receive(wire::MutableBytes out) {
  const wire::Slice* next = recv_.front();
  if (next == nullptr) return {};
  if (next->size() > out.size())
    return {MessageReceiveResult::Status::buffer_too_small, next->size()};
  const std::size_t n = next->size();
  if (n > 0) std::memcpy(out.data(), next->data(), n);
  recv_.pop();
  return {MessageReceiveResult::Status::ok, n};
}

std::optional<std::size_t> MessagePayload::next_message_size() const {
  const wire::Slice* next = recv_.front();
  return next != nullptr ? std::optional<std::size_t>(next->size()) : std::nullopt;
}

// ---- the Payload calls of the application side

std::size_t MessagePayload::write(wire::ConstBytes bytes) {
  return send(bytes) == MessageSendResult::ok ? bytes.size() : 0;
}

std::size_t MessagePayload::write_capacity() const {
  if (fin_offset_) return 0;
  const std::size_t free = send_.free_span();
  return free > wire::kMessageSpanOverhead ? free - wire::kMessageSpanOverhead : 0;
}

std::size_t MessagePayload::read(wire::MutableBytes out) {
  const MessageReceiveResult r = receive(out);
  return r.status == MessageReceiveResult::Status::ok ? r.size : 0;
}

std::size_t MessagePayload::readable_bytes() const {
  return recv_.ready_count() == 0 ? 0 : recv_.queued_bytes();
}

void MessagePayload::close() {
  if (!fin_offset_) fin_offset_ = send_.end();
}

// ---- send side

wire::Slice MessagePayload::frame_payload(std::uint64_t from, std::uint64_t to,
                                          std::size_t max_bytes) const {
  (void)to, (void)max_bytes;
  const wire::Slice* message = send_.at(from);
  return message != nullptr ? *message : wire::Slice{};
}

std::size_t MessagePayload::unsplittable_size(std::uint64_t from) const {
  const wire::Slice* message = send_.at(from);
  return message != nullptr ? message->size() : 0;
}

bool MessagePayload::on_ack(const wire::Ack& a) {
  if (a.delivered > next_send_) return false;  // acknowledges what was never sent
  release_to(a.delivered);
  raise_peer_limit(a.limit);
  if (a.fin_received && fin_offset_ && a.delivered >= *fin_offset_) fin_acked_ = true;
  return true;
}

bool MessagePayload::release_to(std::uint64_t delivered) {
  if (delivered <= send_.base()) return false;
  const std::uint64_t before = send_.base();
  send_.release_to(std::min(delivered, send_.end()));
  next_send_ = std::max(next_send_, send_.base());
  return send_.base() != before;
}

// ---- receive side

bool MessagePayload::admissible(std::uint64_t from, std::uint64_t to, FlowStats& counters) const {
  // Beyond the peer's end or our window: never buffered (the sender honours both).
  if ((peer_fin_ && to > *peer_fin_) || to > granted_ || from >= to) {
    ++counters.protocol_errors;
    return false;
  }
  return true;
}

bool MessagePayload::received(const MessageReceiveQueue::Result& r, FlowStats& counters, Time now) {
  switch (r.outcome) {
    case MessageReceiveQueue::Outcome::duplicate:
      ++counters.recv_dups;
      break;
    case MessageReceiveQueue::Outcome::refused:
      ++counters.protocol_errors;
      break;
    case MessageReceiveQueue::Outcome::accepted:
      break;
  }
  counters.recv_queue_hwm = std::max<std::uint64_t>(counters.recv_queue_hwm, recv_.queued_count());
  unacked_span_ += r.advanced;
  counters.bytes_delivered = recv_.next();
  request_ack(
      r.outcome == MessageReceiveQueue::Outcome::duplicate || unacked_span_ >= ack_every_span_,
      now);
  return r.became_readable > 0 || (r.advanced > 0 && peer_end_delivered());
}

bool MessagePayload::on_data(const wire::Data& d, const wire::Slice& backing, FlowStats& counters,
                             Time now) {
  (void)backing;  // copied: a message must not keep a whole read buffer alive
  if (d.payload.size() > options_.max_message) {
    ++counters.protocol_errors;  // above the limit both ends agreed on in the OPEN
    return false;
  }
  const std::uint64_t to = d.offset + MessageSendQueue::span(d.payload.size());
  if (!admissible(d.offset, to, counters)) return false;
  const auto r = recv_.insert(d.offset, to, wire::Slice::copy_of(d.payload));
  if (r.outcome == MessageReceiveQueue::Outcome::accepted) ++counters.messages_received;
  return received(r, counters, now);
}

bool MessagePayload::on_skip(const wire::Skip& s, FlowStats& counters, Time now) {
  if (!admissible(s.offset, s.offset + s.length, counters)) return false;
  return received(recv_.skip(s.offset, s.offset + s.length), counters, now);
}

bool MessagePayload::on_fin(std::uint64_t final_offset, FlowStats& counters, Time now) {
  if ((peer_fin_ && *peer_fin_ != final_offset) || final_offset < recv_.next()) {
    ++counters.protocol_errors;
    return false;
  }
  peer_fin_ = final_offset;
  request_ack(true, now);
  return peer_end_delivered();
}

// ---- our ACKs and window

std::uint64_t MessagePayload::window_target() const {
  const std::uint64_t queued = std::min<std::uint64_t>(recv_.queued_span(), recv_window_);
  return std::max(granted_, recv_.next() + recv_window_ - queued);
}

void MessagePayload::request_ack(bool immediate, Time now) {
  if (!ack_pending_) {
    ack_pending_ = true;
    ack_deadline_ = now + max_ack_delay_;
  }
  if (immediate) ack_immediate_ = true;
}

void MessagePayload::on_timer(Time now) {
  if (ack_pending_ && now >= ack_deadline_) ack_immediate_ = true;
}

wire::Ack MessagePayload::make_ack() {
  granted_ = window_target();
  wire::Ack ack;
  ack.delivered = recv_.next();
  ack.limit = granted_;
  ack.fin_received = peer_end_delivered();
  return ack;
}

std::uint64_t MessagePayload::open_window() {
  advertised_limit_ = granted_;
  return granted_;
}

void MessagePayload::ack_sent(const wire::Ack& ack, bool flow_ack) {
  advertised_limit_ = std::max(advertised_limit_, ack.limit);
  if (flow_ack) {
    ack_pending_ = ack_immediate_ = false;
    unacked_span_ = 0;
  }
  fin_ack_sent_ = fin_ack_sent_ || ack.fin_received;
}

bool MessagePayload::window_update_due() const {
  return window_target() >= advertised_limit_ + recv_window_ / 4;
}

bool MessagePayload::complete() const {
  const bool sent_done = fin_offset_ && fin_acked_ && send_.base() == *fin_offset_;
  return sent_done && peer_end_delivered() && fin_ack_sent_;
}

}  // namespace rendr::core

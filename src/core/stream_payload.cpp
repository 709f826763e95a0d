#include "core/stream_payload.hpp"

#include <algorithm>

namespace rendr::core {

StreamPayload::StreamPayload(const FlowConfig& config)
    : recv_window_(config.recv_window),
      ack_every_bytes_(config.ack_every_bytes),
      max_ack_delay_(config.max_ack_delay),
      budget_(config.memory_budget),
      send_(std::max<std::size_t>(config.max_data_payload, 1024), config.send_buffer),
      recv_(config.recv_window),
      advertised_limit_(recv_.limit()) {
  if (budget_) budget_->add_flow();
}

StreamPayload::~StreamPayload() {
  if (!budget_) return;
  budget_->release(granted_limit_ - recv_.read_offset());
  budget_->remove_flow();
}

std::size_t StreamPayload::read(wire::MutableBytes out) {
  const std::size_t n = recv_.read(out);
  if (n > 0 && budget_) budget_->release(n);
  return n;
}

// ---- the receive window and the memory budget

std::uint64_t StreamPayload::window_target() const {
  if (!budget_) return recv_.limit();
  return std::min<std::uint64_t>(recv_.limit(), recv_.read_offset() + budget_->fair_share());
}

std::uint64_t StreamPayload::grant_growth_wanted() const {
  const std::uint64_t target = window_target();
  const std::uint64_t in_use = std::max(peer_data_end_, recv_.read_offset());
  if (target > granted_limit_ && 2 * in_use >= granted_limit_ + recv_.read_offset())
    return target - granted_limit_;
  return 0;
}

std::uint64_t StreamPayload::window_limit() {
  if (!budget_) return recv_.limit();
  if (const std::uint64_t want = grant_growth_wanted(); want > 0)
    granted_limit_ += budget_->reserve(want);
  return granted_limit_;
}

bool StreamPayload::budget_starved() const {
  return budget_ && peer_data_end_ >= granted_limit_ && recv_.buffered() == 0 &&
         granted_limit_ < window_target();
}

std::uint64_t StreamPayload::open_window() {
  // With a memory budget, a first window that is enough to start (idle flows reserve little).
  granted_limit_ =
      budget_ ? budget_->reserve(std::min(recv_window_, MemoryBudget::kInitialWindow)) : 0;
  advertised_limit_ = budget_ ? granted_limit_ : recv_.limit();
  return advertised_limit_;
}

bool StreamPayload::window_update_due() const {
  // Once a quarter of the window has opened since the last advertisement. With a budget, only
  // what window_limit() would grant now counts: an update advertising the same limit is noise.
  const std::uint64_t target = window_target();
  const std::uint64_t window = target - recv_.read_offset();
  const std::uint64_t limit =
      budget_
          ? granted_limit_ + std::min<std::uint64_t>(grant_growth_wanted(), budget_->available())
          : target;
  return limit >= advertised_limit_ + window / 4;
}

void StreamPayload::on_timer(Time now) {
  if (ack_pending_ && now >= ack_deadline_) ack_immediate_ = true;
  // A peer held back by an exhausted budget learns of room as soon as some is given back.
  if (budget_starved() && budget_->available() > 0) request_ack(true, now);
}

// ---- application side

std::size_t StreamPayload::write(wire::ConstBytes bytes) {
  if (fin_offset_) return 0;
  return send_.append(bytes);
}

std::size_t StreamPayload::write_capacity() const {
  if (fin_offset_) return 0;
  return send_.free_space();
}

void StreamPayload::close() {
  if (!fin_offset_) fin_offset_ = send_.end();
}

// ---- acknowledgements from the peer

bool StreamPayload::on_ack(const wire::Ack& a) {
  // Acknowledging bytes never sent: a broken or malicious peer.
  if (a.delivered > next_send_) return false;
  release_to(a.delivered);
  raise_peer_limit(a.limit);
  if (a.fin_received && fin_offset_ && a.delivered >= *fin_offset_) fin_acked_ = true;
  return true;
}

bool StreamPayload::release_to(std::uint64_t delivered) {
  if (delivered <= send_.base()) return false;
  delivered = std::min(delivered, send_.end());
  send_.release_to(delivered);
  if (next_send_ < send_.base()) next_send_ = send_.base();
  return true;
}

// ---- receive side

bool StreamPayload::on_data(const wire::Data& d, const wire::Slice& backing, FlowStats& counters,
                            Time now) {
  const std::uint64_t end = d.offset + d.payload.size();
  if (peer_fin_ && end > *peer_fin_) {
    ++counters.protocol_errors;
    return false;
  }
  const std::uint64_t limit = accept_limit();
  // Only what the window admits counts as the peer using its grant (window_limit): a frame far
  // beyond it must not make the next ACK reserve the flow's whole share.
  if (d.offset < limit) peer_data_end_ = std::max(peer_data_end_, std::min(end, limit));
  if (end > limit) {
    // The peer ignored our window: drop what does not fit, never buffer it.
    ++counters.protocol_errors;
    if (d.offset >= limit) return false;
  }
  const std::size_t keep = static_cast<std::size_t>(std::min<std::uint64_t>(end, limit) - d.offset);
  wire::Slice slice;
  if (!d.payload.empty()) {
    const auto start = static_cast<std::size_t>(d.payload.data() - backing.data());
    slice = backing.sub(start, keep);
  }
  const auto result = recv_.insert(d.offset, std::move(slice));
  counters.recv_dups += result.duplicate ? 1 : 0;
  // Only a hostile peer splits its window into that many out-of-order pieces.
  counters.protocol_errors += result.refused ? 1 : 0;
  counters.recv_queue_hwm = std::max<std::uint64_t>(counters.recv_queue_hwm, recv_.segments());
  if (result.advanced > 0) {
    unacked_bytes_ += result.advanced;
    counters.bytes_delivered = recv_.next();
  }
  request_ack(result.duplicate || unacked_bytes_ >= ack_every_bytes_, now);
  return result.advanced > 0 || peer_end_delivered();
}

bool StreamPayload::on_fin(std::uint64_t final_offset, FlowStats& counters, Time now) {
  if ((peer_fin_ && *peer_fin_ != final_offset) || final_offset < recv_.next()) {
    ++counters.protocol_errors;
    return false;
  }
  peer_fin_ = final_offset;
  request_ack(true, now);
  return peer_end_delivered();
}

// ---- our ACKs

void StreamPayload::request_ack(bool immediate, Time now) {
  if (!ack_pending_) {
    ack_pending_ = true;
    ack_deadline_ = now + max_ack_delay_;
  }
  if (immediate) ack_immediate_ = true;
}

wire::Ack StreamPayload::make_ack() {
  wire::Ack ack;
  ack.delivered = recv_.next();
  ack.limit = window_limit();
  ack.fin_received = peer_end_delivered();
  return ack;
}

void StreamPayload::ack_sent(const wire::Ack& ack, bool flow_ack) {
  advertised_limit_ = ack.limit;
  if (flow_ack) {
    ack_pending_ = ack_immediate_ = false;
    unacked_bytes_ = 0;
  }
  fin_ack_sent_ = fin_ack_sent_ || ack.fin_received;
}

bool StreamPayload::complete() const {
  const bool sent_done = fin_offset_ && fin_acked_ && send_.base() == *fin_offset_;
  return sent_done && peer_end_delivered() && fin_ack_sent_;
}

}  // namespace rendr::core

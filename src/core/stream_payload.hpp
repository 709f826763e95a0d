#pragma once
// The byte stream: the payload of stream mode (core/payload.hpp).
//
// Every byte has an offset. Written bytes stay in the SendBuffer until the peer's cumulative
// ACK covers them; the peer's window (its ACKs' limit) bounds what may be sent. Received bytes
// are reordered in the RecvBuffer within our window, which is also the limit we advertise, so
// a hole-filling retransmission always fits. ACKs are batched (ack_every_bytes or
// max_ack_delay), immediate for duplicates, the FIN and a window opened by a quarter.
#include "core/config.hpp"
#include "core/payload.hpp"
#include "core/recv_buffer.hpp"
#include "core/send_buffer.hpp"

namespace rendr::core {

class StreamPayload final : public Payload {
 public:
  explicit StreamPayload(const FlowConfig& config);
  ~StreamPayload() override;
  StreamPayload(const StreamPayload&) = delete;
  StreamPayload& operator=(const StreamPayload&) = delete;

  std::size_t write(wire::ConstBytes bytes) override;
  std::size_t write_capacity() const override;
  std::size_t read(wire::MutableBytes out) override;
  std::size_t readable_bytes() const override { return recv_.readable(); }
  bool eof() const override { return peer_fin_ && recv_.read_offset() == *peer_fin_; }
  void close() override;
  bool send_closed() const override { return fin_offset_.has_value(); }

  std::uint64_t acked() const override { return send_.base(); }
  std::uint64_t written() const override { return send_.end(); }
  std::uint64_t next_new() const override { return next_send_; }
  void sent_new_to(std::uint64_t to) override { next_send_ = std::max(next_send_, to); }
  std::uint64_t window_end() const override {
    return std::min<std::uint64_t>(send_.end(), peer_limit_);
  }
  std::uint64_t peer_limit() const override { return peer_limit_; }
  void raise_peer_limit(std::uint64_t limit) override {
    peer_limit_ = std::max(peer_limit_, limit);
  }
  RetransmitQueue& retransmits() override { return rtx_; }
  const RetransmitQueue& retransmits() const override { return rtx_; }
  std::optional<std::uint64_t> fin_offset() const override { return fin_offset_; }
  bool fin_acked() const override { return fin_acked_; }
  wire::Slice frame_payload(std::uint64_t from, std::uint64_t to,
                            std::size_t max_bytes) const override {
    return send_.slice(from, to, max_bytes);
  }

  bool on_ack(const wire::Ack& ack) override;
  bool release_to(std::uint64_t delivered) override;
  void set_fin_acked() override { fin_acked_ = true; }

  bool on_data(const wire::Data& data, const wire::Slice& backing, FlowStats& counters,
               Time now) override;
  bool on_fin(std::uint64_t final_offset, FlowStats& counters, Time now) override;
  std::uint64_t received_limit() const override { return recv_.limit(); }
  std::uint64_t delivered() const override { return recv_.next(); }
  std::uint64_t received_buffered() const override { return recv_.buffered(); }
  std::size_t received_memory() const override { return recv_.memory(); }
  bool peer_end_delivered() const override { return peer_fin_ && recv_.next() == *peer_fin_; }

  void request_ack(bool immediate, Time now) override;
  bool ack_pending() const override { return ack_pending_; }
  bool ack_due_now() const override { return ack_pending_ && ack_immediate_; }
  std::optional<Time> ack_timer() const override {
    return ack_pending_ && !ack_immediate_ ? std::optional<Time>(ack_deadline_) : std::nullopt;
  }
  void on_timer(Time now) override;
  wire::Ack make_ack() override;
  std::uint64_t open_window() override;
  void ack_sent(const wire::Ack& ack, bool flow_ack) override;
  void advertised(std::uint64_t limit) override {
    advertised_limit_ = std::max(advertised_limit_, limit);
  }
  bool window_update_due() const override;

  bool complete() const override;

 private:
  const std::size_t recv_window_;
  const std::size_t ack_every_bytes_;
  const Duration max_ack_delay_;
  // Shared by a listener's flows (core/memory_budget.hpp); nullptr: recv_window alone bounds
  // the peer.
  const std::shared_ptr<MemoryBudget> budget_;

  // The limit to advertise now: the full window, or with a memory budget as much of it as the
  // budget grants ([read offset, granted_limit_) stays reserved until read).
  std::uint64_t window_target() const;
  // The grant grows only once the peer has used half of what it has: an idle flow keeps its
  // first 64 KiB, a busy one grows to its target within a round trip.
  std::uint64_t window_limit();
  // How much window_limit() would add to the grant now (before the budget's answer).
  std::uint64_t grant_growth_wanted() const;
  // What the peer may send up to: what we granted (a budget), else the window.
  std::uint64_t accept_limit() const { return budget_ ? granted_limit_ : recv_.limit(); }
  // The peer has used the whole window we could grant, the application has read it all, and
  // the budget held the window below its target: only a timer can reopen it.
  bool budget_starved() const;

  // Send side.
  SendBuffer send_;
  std::uint64_t next_send_ = 0;   // next never-sent offset: no path has sent anything above it
  RetransmitQueue rtx_;           // prime and bond: ranges to send again (race needs none)
  std::uint64_t peer_limit_ = 0;  // flow control: we may send below this offset
  std::optional<std::uint64_t> fin_offset_;
  bool fin_acked_ = false;

  // Receive side.
  RecvBuffer recv_;
  std::optional<std::uint64_t> peer_fin_;
  bool ack_pending_ = false;
  bool ack_immediate_ = false;
  Time ack_deadline_{};
  std::uint64_t unacked_bytes_ = 0;
  std::uint64_t advertised_limit_ = 0;
  bool fin_ack_sent_ = false;        // an ACK with fin_received went out
  std::uint64_t peer_data_end_ = 0;  // highest end of DATA received
  std::uint64_t granted_limit_ = 0;  // with a memory budget: reserved up to here
};

}  // namespace rendr::core

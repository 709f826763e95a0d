#pragma once
// The message queue: the payload of packet mode (core/payload.hpp), beside StreamPayload.
//
// Messages are numbered by offsets as the stream's bytes are (MessageSendQueue), so schedulers,
// paths, loss recovery and ACKs are the stream's; what differs is here: one DATA frame carries
// exactly one whole message (kFlagMessage), the flow-control limit is applied at message
// boundaries, and an unreliable flow answers a lost copy with a SKIP for its range instead of
// the message. The receive side (MessageReceiveQueue) delivers each message at most once, in
// order or on arrival; the window counts each queued message's bytes and overhead, so it bounds
// both the bytes and the number of messages a peer can make us hold.
#include <optional>

#include "core/config.hpp"
#include "core/message.hpp"
#include "core/message_receive_queue.hpp"
#include "core/message_send_queue.hpp"
#include "core/payload.hpp"

namespace rendr::core {

class MessagePayload final : public Payload {
 public:
  MessagePayload(const FlowConfig& config, const PacketOptions& options);

  const PacketOptions& options() const { return options_; }

  // ---- messages (the application side of a packet flow)
  MessageSendResult send(wire::ConstBytes message);
  // Copies the next message into `out` and removes it (if it fits; else it stays queued).
  MessageReceiveResult receive(wire::MutableBytes out);
  std::optional<std::size_t> next_message_size() const;
  std::size_t readable_messages() const { return recv_.ready_count(); }

  // ---- Payload (the byte-oriented calls see one message at a time)
  std::size_t write(wire::ConstBytes bytes) override;
  std::size_t write_capacity() const override;
  std::size_t read(wire::MutableBytes out) override;
  std::size_t readable_bytes() const override;
  bool eof() const override { return peer_end_delivered() && recv_.ready_count() == 0; }
  void close() override;
  bool send_closed() const override { return fin_offset_.has_value(); }

  std::uint64_t acked() const override { return send_.base(); }
  std::uint64_t written() const override { return send_.end(); }
  std::uint64_t next_new() const override { return next_send_; }
  void sent_new_to(std::uint64_t to) override { next_send_ = std::max(next_send_, to); }
  std::uint64_t window_end() const override { return send_.aligned_end(peer_limit_); }
  std::uint64_t peer_limit() const override { return peer_limit_; }
  void raise_peer_limit(std::uint64_t limit) override {
    peer_limit_ = std::max(peer_limit_, limit);
  }
  RetransmitQueue& retransmits() override { return rtx_; }
  const RetransmitQueue& retransmits() const override { return rtx_; }
  std::optional<std::uint64_t> fin_offset() const override { return fin_offset_; }
  bool fin_acked() const override { return fin_acked_; }
  // The whole message at `from`, whatever `to` and `max_bytes` say: schedulers hand out message
  // boundaries, and datagram packets make room for a whole message (unsplittable_size).
  wire::Slice frame_payload(std::uint64_t from, std::uint64_t to,
                            std::size_t max_bytes) const override;
  std::uint64_t frame_end(std::uint64_t from, std::size_t payload_size) const override {
    return from + MessageSendQueue::span(payload_size);
  }
  std::uint8_t data_flags() const override { return wire::Data::kFlagMessage; }
  std::size_t unsplittable_size(std::uint64_t from) const override;
  bool resends_lost() const override { return options_.reliable; }

  bool on_ack(const wire::Ack& ack) override;
  bool release_to(std::uint64_t delivered) override;
  void set_fin_acked() override { fin_acked_ = true; }

  bool on_data(const wire::Data& data, const wire::Slice& backing, FlowStats& counters,
               Time now) override;
  bool on_fin(std::uint64_t final_offset, FlowStats& counters, Time now) override;
  bool on_skip(const wire::Skip& skip, FlowStats& counters, Time now) override;
  std::uint64_t received_limit() const override { return granted_; }
  std::uint64_t delivered() const override { return recv_.next(); }
  std::uint64_t received_buffered() const override { return recv_.queued_bytes(); }
  std::size_t received_memory() const override { return recv_.queued_bytes(); }
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
  // The limit the window allows now: the queued messages' offsets count against it, so read
  // messages make room and held or unread ones do not (never below what was granted).
  std::uint64_t window_target() const;
  // Checks a message or SKIP range from the peer against its end and our window.
  bool admissible(std::uint64_t from, std::uint64_t to, FlowStats& counters) const;
  // After the receive queue took something: counters and the ACK it owes.
  bool received(const MessageReceiveQueue::Result& r, FlowStats& counters, Time now);

  const PacketOptions options_;
  const std::uint64_t recv_window_;
  const std::size_t ack_every_span_;
  const Duration max_ack_delay_;

  // Send side.
  MessageSendQueue send_;
  std::uint64_t next_send_ = 0;
  RetransmitQueue rtx_;
  std::uint64_t peer_limit_ = 0;
  std::optional<std::uint64_t> fin_offset_;
  bool fin_acked_ = false;

  // Receive side.
  MessageReceiveQueue recv_;
  std::uint64_t granted_ = 0;  // the highest limit we advertised: messages must end below it
  std::optional<std::uint64_t> peer_fin_;
  bool ack_pending_ = false;
  bool ack_immediate_ = false;
  Time ack_deadline_{};
  std::uint64_t unacked_span_ = 0;
  std::uint64_t advertised_limit_ = 0;
  bool fin_ack_sent_ = false;
};

}  // namespace rendr::core

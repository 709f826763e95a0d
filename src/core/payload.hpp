#pragma once
// What a flow sends and receives, apart from where it goes (the scheduler, core/scheduler.hpp)
// and how paths carry it (core/path.hpp).
//
// The send side is a sequence of offsets: schedulers place ranges [from, to) on paths, the
// peer's cumulative ACK releases everything below an offset, and ranges a dead path carried
// go to the retransmit queue. The receive side takes DATA at offsets and owes the peer ACKs.
// The byte stream (StreamPayload) is the one implementation today; a message queue (packet
// mode) numbers its messages' bytes in the same way, so schedulers and paths need not change.
#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/retransmit_queue.hpp"
#include "core/stats.hpp"
#include "core/types.hpp"
#include "wire/bytes.hpp"
#include "wire/frame.hpp"

namespace rendr::core {

class Payload {
 public:
  virtual ~Payload() = default;

  // ---- application side
  // Accepts what fits of `bytes`; 0 once full or closed.
  virtual std::size_t write(wire::ConstBytes bytes) = 0;
  virtual std::size_t write_capacity() const = 0;
  virtual std::size_t read(wire::MutableBytes out) = 0;
  virtual std::size_t readable_bytes() const = 0;
  virtual bool eof() const = 0;  // the peer's end delivered and read
  virtual void close() = 0;      // our end follows what was written
  virtual bool send_closed() const = 0;

  // ---- send side (schedulers)
  virtual std::uint64_t acked() const = 0;       // the peer has everything below
  virtual std::uint64_t written() const = 0;     // one past the last written offset
  virtual std::uint64_t next_new() const = 0;    // no path has sent anything at or above
  virtual void sent_new_to(std::uint64_t) = 0;   // raises next_new
  virtual std::uint64_t window_end() const = 0;  // may be sent below (written, peer's window)
  virtual std::uint64_t peer_limit() const = 0;  // the peer's flow-control limit
  virtual void raise_peer_limit(std::uint64_t limit) = 0;
  virtual RetransmitQueue& retransmits() = 0;  // ranges to send again
  virtual const RetransmitQueue& retransmits() const = 0;
  virtual std::optional<std::uint64_t> fin_offset() const = 0;  // set by close()
  virtual bool fin_acked() const = 0;
  // The payload of one DATA frame at `from`, at most max_bytes, ending at or before `to`.
  virtual wire::Slice frame_payload(std::uint64_t from, std::uint64_t to,
                                    std::size_t max_bytes) const = 0;
  // Where the DATA frame at `from` with `payload_size` bytes ends in the offset space (a
  // message also occupies wire::kMessageSpanOverhead offsets).
  virtual std::uint64_t frame_end(std::uint64_t from, std::size_t payload_size) const {
    return from + payload_size;
  }
  // The DATA frame's flags (wire::Data::kFlagMessage for messages).
  virtual std::uint8_t data_flags() const { return 0; }
  // Payload bytes the DATA frame at `from` needs whole (a message is never split); 0: any part.
  virtual std::size_t unsplittable_size(std::uint64_t from) const {
    (void)from;
    return 0;
  }
  // Whether what a lost copy carried is sent again; false (unreliable messages): a SKIP for
  // its range goes in its place.
  virtual bool resends_lost() const { return true; }

  // ---- acknowledgements from the peer
  // The peer's ACK; false (and nothing changes) if it acknowledges what was never sent.
  virtual bool on_ack(const wire::Ack& ack) = 0;
  // Releases everything below `delivered`; whether anything was released.
  virtual bool release_to(std::uint64_t delivered) = 0;
  // The peer confirmed our end by other means (its close notice).
  virtual void set_fin_acked() = 0;

  // ---- receive side (errors of the peer are counted in `counters`)
  // DATA; its payload points into `backing` and is kept by reference, not copied. Returns
  // whether the application has something new to read (bytes or the end).
  virtual bool on_data(const wire::Data& data, const wire::Slice& backing, FlowStats& counters,
                       Time now) = 0;
  // The peer's end at `final_offset`; returns whether the application can now read it.
  virtual bool on_fin(std::uint64_t final_offset, FlowStats& counters, Time now) = 0;
  // SKIP: the peer will not send [skip.offset, + length) again. Only packet flows have it;
  // elsewhere it is a protocol error. Returns whether the application has something new to read.
  virtual bool on_skip(const wire::Skip& skip, FlowStats& counters, Time now) {
    (void)skip, (void)now;
    ++counters.protocol_errors;
    return false;
  }
  virtual std::uint64_t received_limit() const = 0;  // our window: DATA must end below
  virtual std::uint64_t delivered() const = 0;       // received in order
  virtual std::uint64_t received_buffered() const = 0;
  virtual std::size_t received_memory() const = 0;  // storage the received bytes hold
  virtual bool peer_end_delivered() const = 0;      // the peer's end reached in order

  // ---- our ACKs
  virtual void request_ack(bool immediate, Time now) = 0;
  virtual bool ack_pending() const = 0;
  virtual bool ack_due_now() const = 0;               // pending and not to be delayed
  virtual std::optional<Time> ack_timer() const = 0;  // when a delayed ACK falls due
  virtual void on_timer(Time now) = 0;
  // The ACK to send now (with a memory budget, its limit may reserve more of the budget).
  virtual wire::Ack make_ack() = 0;
  // Server: the window its OPEN_ACK advertises (with a memory budget, the first grant).
  virtual std::uint64_t open_window() = 0;
  // `ack` went out; `flow_ack`: it was the flow's pending ACK, not a copy for one path.
  virtual void ack_sent(const wire::Ack& ack, bool flow_ack) = 0;
  virtual void advertised(std::uint64_t limit) = 0;  // a handshake answer told the peer
  // Read opened a quarter of the window since the last advertisement: the peer should know.
  virtual bool window_update_due() const = 0;

  // Both directions are complete: our end acknowledged, the peer's delivered and acknowledged.
  virtual bool complete() const = 0;
};

}  // namespace rendr::core

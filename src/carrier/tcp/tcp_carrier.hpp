#pragma once
// The TCP carrier: rendr frames back to back over one TCP connection (frames are
// self-delimiting, so there is no extra length prefix), and the "tcp" transport that dials one.
//
// Threading. Everything a TcpCarrier does runs on a strand made from the socket's executor, so
// the executor may be a multi-threaded io_context. executor() returns that strand: every handler
// callback runs on it, and set_handler() must be called on it (e.g. from inside a callback, or
// via asio::post(carrier->executor(), ...)). start(), kick(), close() and abort() may be called
// from any thread.
//
// Lifetime. Pending socket operations hold a shared_ptr to the carrier, so a started carrier
// lives until it is down/closed even if its owner drops it. A carrier that notices its handler
// has expired (on the next read completion or pull) closes itself gracefully; an idle carrier
// with an expired handler only notices when the peer sends something or kick() is called, so
// owners should call close() or abort() explicitly.
//
// on_down semantics. A started carrier calls handler->on_down exactly once, and no callback of
// any kind follows it:
//  - transport failure while open: eof (peer FIN), reset (ECONNRESET / ECONNABORTED / EPIPE),
//    protocol_error (undecodable bytes: frames decoded before the bad one are still delivered
//    in one on_frames call first), error (anything else, with its error_code);
//  - local close()/abort(): DownReason::closed, delivered when the socket is actually closed
//    (abort: at once; close: after the flush, shutdown and drain described below). Transport
//    errors that happen while a graceful close is in progress are swallowed: the report is still
//    `closed`. If a failure was already reported before the close() took effect on the strand,
//    nothing more is reported (the failure wins; exactly one on_down either way).
// A carrier closed because its handler expired reports nothing (there is no one to tell).
// close()/abort() before start() just close the socket; start() afterwards does nothing.
//
// close(): stop delivering frames and stop pulling; let the write in flight (if any) finish;
// shutdown(send) so the peer sees EOF after every byte already pulled; then read and discard
// until the peer's EOF; close. A single deadline (TcpOptions::close_linger, from the moment
// close() takes effect) bounds the whole sequence: when it passes, the socket is closed as is.
// abort(): SO_LINGER {1, 0} and close, so the peer sees RST; a write in flight is dropped.
//
// Reading. Each read goes into a refcounted wire::Block, taken when the socket is readable and
// given back when a read drained the socket with no partial frame left (an idle carrier holds
// none); every whole frame in it is decoded and
// delivered in one on_frames(frames, backing) call, `backing` being a Slice of that block. The
// spans in `frames` (DATA payloads) are valid during the call; a handler that keeps a payload
// keeps `backing.sub(...)` of it. A block handed to a handler is never written again while any
// Slice of it lives: a trailing partial frame is carried into a fresh block (or, once no Slice
// of the old block remains, the old block is reused).
//
// Writing. Pull model: with no write in flight the carrier resets its TransmitBatch (reused
// storage, so a write allocates nothing) to max_write_bytes, calls pull(batch) and writes
// everything pulled in one gathered write (headers and payload slices, no copy), then pulls
// again; when pull yields nothing the writer idles until kick(). A batch first goes out as a
// non-blocking sendmsg right in the pulling handler; only what the socket did not take is left
// to an async write (at most kInlineWrites batches are written inline in a row). kick()
// dispatches to the strand: on a thread of the carrier's context with the strand idle, the pull
// and the sendmsg run inside the kick() call, so a write from a coroutine on that context costs
// no handler hop. A kick arriving inside the carrier's own pull (from code the pull's caller
// runs) makes it pull again after that pull instead of nesting.
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/buffer.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "carrier/carrier.hpp"
#include "carrier/handler_slot.hpp"
#include "wire/bytes.hpp"
#include "wire/frame.hpp"
#include "wire/out_frame.hpp"

namespace rendr::carrier {

struct TcpOptions {
  // TCP_NOTSENT_LOWAT: at most this many unsent bytes wait in the kernel, so a control frame
  // pulled now is not queued behind megabytes of bulk data. 0 leaves the kernel default.
  std::size_t notsent_lowat = 128 * 1024;
  // Size of a read block (frames are decoded in place; DATA payloads reference the block).
  // A block is always at least as large as the frame being assembled.
  std::size_t read_block_size = 256 * 1024;
  // The room of the batch passed to CarrierHandler::pull; everything pulled goes out in one
  // gathered write.
  std::size_t max_write_bytes = 256 * 1024;
  // Largest frame body accepted from the peer (a larger length is protocol_error/too_long).
  std::size_t max_frame_body = wire::kDefaultMaxBody;
  // Bound on a graceful close (flush + shutdown + drain until the peer's EOF).
  std::chrono::milliseconds close_linger{2000};
  // Bound on resolve + connect in TcpTransport::async_dial (0 = none); fails with timed_out.
  std::chrono::milliseconds connect_timeout{10000};
};

// Counters, readable from any thread (relaxed; for stats and tests).
struct TcpCarrierCounters {
  std::atomic<std::uint64_t> bytes_read{0};
  std::atomic<std::uint64_t> bytes_written{0};
  std::atomic<std::uint64_t> frames_read{0};
  std::atomic<std::uint64_t> frames_written{0};
  std::atomic<std::uint64_t> reads{0};
  std::atomic<std::uint64_t> writes{0};
  std::atomic<std::uint64_t> blocks_allocated{0};  // read blocks (the first one included)
};

class TcpCarrier final : public Carrier, public std::enable_shared_from_this<TcpCarrier> {
 public:
  // `socket` must be connected. Socket options are applied here.
  explicit TcpCarrier(asio::ip::tcp::socket socket, const TcpOptions& options = {});
  ~TcpCarrier() override;
  TcpCarrier(const TcpCarrier&) = delete;
  TcpCarrier& operator=(const TcpCarrier&) = delete;

  void start(std::weak_ptr<CarrierHandler> handler) override;
  void set_handler(std::weak_ptr<CarrierHandler> handler) override;
  void kick() override;
  void close() override;
  void abort() override;
  bool reliable() const override { return true; }
  std::string_view transport() const override { return "tcp"; }
  std::string peer_address() const override { return peer_address_; }
  asio::any_io_executor executor() const override { return strand_; }
  // TCP_INFO, read now (any thread: the socket is closed only under the same lock).
  std::optional<TransportCongestion> transport_congestion() const override;

  const TcpCarrierCounters& counters() const { return counters_; }
  const TcpOptions& options() const { return options_; }

 private:
  enum class State {
    idle,     // constructed, not started
    open,     // reading and writing
    closing,  // graceful close in progress
    closed,   // closed locally (close/abort/expired handler)
    down,     // transport failure reported
  };

  void do_start();
  void start_wait();
  void on_probe(error_code ec, std::size_t n);
  void start_read();
  void on_read(error_code ec, std::size_t n);
  void deliver_frames();
  void prepare_next_block(bool handed_out, std::size_t consumed);
  void do_write();
  bool pull_batch();
  void start_async_write(std::size_t sent);
  void finish_write(std::size_t n);
  void on_write(error_code ec, std::size_t n);
  void do_close();
  void do_abort();
  void begin_shutdown();
  void finish_close();
  // Every close of socket_ goes through here (see transport_congestion).
  void close_socket();
  void fail(DownReason reason, error_code ec, wire::DecodeError decode_error);
  void report_down(DownReason reason, error_code ec, wire::DecodeError decode_error);

  const TcpOptions options_;
  // A strand of the io_context's own executor type, not of any_io_executor: every handler of
  // the carrier passes through it, and the type-erased one allocates on each pass.
  asio::strand<asio::io_context::executor_type> strand_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer linger_timer_;
  const std::string peer_address_;

  HandlerSlot handler_;
  std::atomic<bool> kick_pending_{false};
  TcpCarrierCounters counters_;
  // socket_'s descriptor until close_socket() (-1 after): what transport_congestion() reads.
  mutable std::mutex stats_fd_mutex_;
  int stats_fd_ = -1;

  // Strand-only state.
  State state_ = State::idle;
  // Read side: bytes [0, block_->used) of block_ are received; the block has never been handed
  // to a handler (or is solely owned again). Frames decoded per read are collected in frames_.
  wire::BlockPtr block_;                 // null while waiting for readability with nothing pending
  bool socket_drained_ = false;          // the last read was short: nothing more is waiting
  std::array<wire::Byte, 256> probe_{};  // an idle connection's read buffer
  bool probe_filled_ = false;            // the probe read filled it: more may be waiting
  std::vector<wire::Frame> frames_;
  bool read_eof_ = false;  // while closing: the peer's EOF was seen
  // Write side: out_ / buffers_ stay untouched while a write is in flight.
  bool write_in_flight_ = false;
  bool pulling_ = false;          // inside handler->pull(out_)
  bool repull_ = false;           // kicked during that pull
  bool owed_after_batch_ = true;  // the handler may have more once this batch is written
  wire::TransmitBatch out_;
  std::vector<asio::const_buffer> buffers_;
  std::size_t batch_bytes_ = 0;        // of the batch in out_
  std::size_t write_sent_inline_ = 0;  // of the batch in flight, sent before its async write
};

// Wraps a connected socket (e.g. accepted by a listener) in a TcpCarrier; call start() next.
std::shared_ptr<Carrier> make_tcp_carrier(asio::ip::tcp::socket socket,
                                          const TcpOptions& options = {});

// The "tcp" transport: async resolve + connect (bounded by TcpOptions::connect_timeout), then a
// TcpCarrier over the socket. `done` runs once, on (a strand of) the given executor.
class TcpTransport final : public Transport {
 public:
  explicit TcpTransport(TcpOptions options = {}) : options_(options) {}
  std::string name() const override { return "tcp"; }
  void async_dial(asio::any_io_executor executor, const std::string& host, std::uint16_t port,
                  DialCallback done) override;

 private:
  TcpOptions options_;
};

}  // namespace rendr::carrier

#include "carrier/tcp/tcp_carrier.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <span>
#include <utility>

#include <asio/bind_executor.hpp>
#include <asio/connect.hpp>
#include <asio/dispatch.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/query.hpp>
#include <asio/write.hpp>

#include "carrier/tcp/tcp_congestion.hpp"

namespace rendr::carrier {

namespace {

TcpOptions sanitized(TcpOptions o) {
  // A block must at least hold the longest frame header plus something to read.
  o.read_block_size = std::max<std::size_t>(o.read_block_size, 4096);
  o.max_write_bytes = std::max<std::size_t>(o.max_write_bytes, 1);
  return o;
}

std::string format_peer(const asio::ip::tcp::socket& socket) {
  error_code ec;
  const auto ep = socket.remote_endpoint(ec);
  if (ec) return {};
  const auto address = ep.address();
  std::string host = address.to_string();
  if (address.is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}

DownReason reason_for(const error_code& ec) {
  if (ec == asio::error::eof) return DownReason::eof;
  if (ec == asio::error::connection_reset || ec == asio::error::connection_aborted ||
      ec == asio::error::broken_pipe) {
    return DownReason::reset;
  }
  return DownReason::error;
}

// Total size of the frame that starts with the `size` bytes at `p`, or 0 while its header is
// incomplete. Only called on a partial frame the decoder accepted so far (length <= max body).
std::size_t frame_size_hint(const wire::Byte* p, std::size_t size) {
  if (size < 3) return 0;
  std::uint64_t length = 0;
  const std::size_t n = wire::decode_varint(wire::ConstBytes(p + 2, size - 2), length);
  if (n == 0) return 0;
  return 2 + n + static_cast<std::size_t>(length);
}

// True if `block` has no owner besides the caller's pointer, i.e. every Slice a handler took
// of it is gone, so it may be written again.
bool sole_owner(const wire::BlockPtr& block) {
#if defined(__SANITIZE_THREAD__)
  // TSan does not model the acquire fence below (and GCC warns about it); allocate instead.
  (void)block;
  return false;
#else
  if (block.use_count() != 1) return false;
  // The last other owner released its reference with an acq_rel decrement; pair with it so
  // its reads of the block happen before our writes.
  std::atomic_thread_fence(std::memory_order_acquire);
  return true;
#endif
}

// Carriers run on an engine's executor (or a strand of one), whose context is an io_context.
asio::io_context& io_context_of(const asio::any_io_executor& ex) {
  return static_cast<asio::io_context&>(asio::query(ex, asio::execution::context));
}

}  // namespace

TcpCarrier::TcpCarrier(asio::ip::tcp::socket socket, const TcpOptions& options)
    : options_(sanitized(options)),
      strand_(asio::make_strand(io_context_of(socket.get_executor()))),
      socket_(std::move(socket)),
      linger_timer_(strand_),
      peer_address_(format_peer(socket_)) {
  error_code ec;
  // do_write sends with a plain non-blocking sendmsg first (asio's async ops work either way).
  socket_.non_blocking(true, ec);
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  socket_.set_option(asio::socket_base::keep_alive(false), ec);
#if defined(TCP_NOTSENT_LOWAT)
  if (options_.notsent_lowat > 0 && socket_.is_open()) {
    const int lowat = static_cast<int>(std::min<std::size_t>(options_.notsent_lowat, 1u << 30));
    (void)::setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat,
                       sizeof lowat);
  }
#endif
  if (socket_.is_open()) stats_fd_ = socket_.native_handle();
}

TcpCarrier::~TcpCarrier() {
  close_socket();
}

void TcpCarrier::close_socket() {
  {
    std::lock_guard lock(stats_fd_mutex_);
    stats_fd_ = -1;
  }
  error_code ignored;
  socket_.close(ignored);
}

std::optional<TransportCongestion> TcpCarrier::transport_congestion() const {
  std::lock_guard lock(stats_fd_mutex_);
  if (stats_fd_ < 0) return std::nullopt;
  return read_tcp_congestion(stats_fd_);
}

void TcpCarrier::start(std::weak_ptr<CarrierHandler> handler) {
  handler_.set(std::move(handler));
  asio::post(strand_, [self = shared_from_this()] { self->do_start(); });
}

void TcpCarrier::set_handler(std::weak_ptr<CarrierHandler> handler) {
  handler_.set(std::move(handler));
}

void TcpCarrier::kick() {
  if (kick_pending_.exchange(true, std::memory_order_acq_rel)) return;
  // dispatch, not post: called on a thread that runs the carrier's context while the strand is
  // idle (the application's coroutine on Engine(io_context&), or a handler of this carrier),
  // the write starts right here, without a handler hop; otherwise it is queued on the strand.
  asio::dispatch(strand_, [self = shared_from_this()] {
    self->kick_pending_.store(false, std::memory_order_release);
    self->do_write();
  });
}

void TcpCarrier::close() {
  asio::post(strand_, [self = shared_from_this()] { self->do_close(); });
}

void TcpCarrier::abort() {
  asio::post(strand_, [self = shared_from_this()] { self->do_abort(); });
}

void TcpCarrier::do_start() {
  if (state_ != State::idle) return;
  state_ = State::open;
  start_wait();
  do_write();
}

// ---- reading ----------------------------------------------------------------------------------

constexpr std::size_t kIdleReadBytes = 16 * 1024;

// With nothing to read, a carrier holds no read block: it reads into a small inline buffer and
// takes a block (from the block pool) when bytes arrive, so an idle connection costs no buffer.
// (A real read, not async_wait: asio's wait_read can miss readiness that arrived while no
// operation was pending.)
void TcpCarrier::start_wait() {
  socket_.async_read_some(
      asio::buffer(probe_),
      asio::bind_executor(strand_, [self = shared_from_this()](error_code ec, std::size_t n) {
        self->on_probe(ec, n);
      }));
}

void TcpCarrier::on_probe(error_code ec, std::size_t n) {
  if (!ec) {
    if (!block_) {
      block_ = wire::make_block(options_.read_block_size);
      counters_.blocks_allocated.fetch_add(1, std::memory_order_relaxed);
    }
    std::memcpy(block_->data.get() + block_->used, probe_.data(), n);
  }
  probe_filled_ = n == probe_.size();
  on_read(ec, n);
}

void TcpCarrier::start_read() {
  if (!block_) {
    block_ = wire::make_block(options_.read_block_size);
    counters_.blocks_allocated.fetch_add(1, std::memory_order_relaxed);
  }
  wire::Block& b = *block_;
  socket_.async_read_some(
      asio::buffer(b.data.get() + b.used, b.capacity - b.used),
      asio::bind_executor(strand_, [self = shared_from_this()](error_code ec, std::size_t n) {
        self->on_read(ec, n);
      }));
}

void TcpCarrier::on_read(error_code ec, std::size_t n) {
  switch (state_) {
    case State::open:
      break;
    case State::closing:
      // Draining after close(): nothing is delivered any more.
      if (ec) {
        if (ec == asio::error::eof && write_in_flight_) {
          read_eof_ = true;  // finish the write first (begin_shutdown closes then)
          return;
        }
        finish_close();
        return;
      }
      block_->used = 0;  // never handed out: safe to overwrite
      start_read();
      return;
    default:
      return;
  }
  if (ec) {
    fail(reason_for(ec), ec, wire::DecodeError::none);
    return;
  }
  counters_.reads.fetch_add(1, std::memory_order_relaxed);
  counters_.bytes_read.fetch_add(n, std::memory_order_relaxed);
  // A short read drained the socket: the connection is idle or trickling, not streaming (bulk
  // reads keep their block and read again at once, which usually finds more bytes).
  socket_drained_ = n < std::min(kIdleReadBytes, block_->capacity - block_->used) && !probe_filled_;
  probe_filled_ = false;
  block_->used += n;
  deliver_frames();
}

void TcpCarrier::deliver_frames() {
  const wire::Byte* base = block_->data.get();
  const std::size_t end = block_->used;
  std::size_t pos = 0;
  wire::DecodeError error = wire::DecodeError::none;
  frames_.clear();
  while (pos < end) {
    frames_.emplace_back();
    const wire::DecodeResult r = wire::decode(wire::ConstBytes(base + pos, end - pos),
                                              frames_.back(), options_.max_frame_body);
    if (r.error != wire::DecodeError::none) {
      frames_.pop_back();
      if (r.error != wire::DecodeError::need_more) error = r.error;
      break;
    }
    pos += r.consumed;
  }

  bool handed_out = false;
  if (!frames_.empty()) {
    auto handler = handler_.lock();
    if (!handler) {
      frames_.clear();
      block_->used = 0;  // not handed out; the drain may reuse it
      do_close();
      if (state_ == State::closing) start_read();
      return;
    }
    counters_.frames_read.fetch_add(frames_.size(), std::memory_order_relaxed);
    handed_out = true;
    {
      const wire::Slice backing(block_, 0, pos);
      handler->on_frames(frames_, backing);
    }
    frames_.clear();
  }

  if (error != wire::DecodeError::none) {
    fail(DownReason::protocol_error, {}, error);
    return;
  }
  if (state_ != State::open) return;
  if (pos == block_->used && socket_drained_) {
    block_.reset();  // no partial frame: give the block back until more bytes arrive
    start_wait();
    return;
  }
  prepare_next_block(handed_out, pos);
  start_read();
}

// Makes block_ ready for the next read: the partial frame [consumed, used) moves to the front,
// of the same block if no handler holds a part of it, else of a fresh one (a block handed out is
// never written again). The block is made large enough for the whole partial frame.
void TcpCarrier::prepare_next_block(bool handed_out, std::size_t consumed) {
  wire::Block& old = *block_;
  const std::size_t leftover = old.used - consumed;
  const wire::Byte* rest = old.data.get() + consumed;
  const std::size_t need = std::max(options_.read_block_size, frame_size_hint(rest, leftover));
  if ((handed_out && !sole_owner(block_)) || old.capacity < need) {
    auto fresh = wire::make_block(need);
    counters_.blocks_allocated.fetch_add(1, std::memory_order_relaxed);
    if (leftover > 0) std::memcpy(fresh->data.get(), rest, leftover);
    fresh->used = leftover;
    block_ = std::move(fresh);
    return;
  }
  if (consumed > 0 && leftover > 0) std::memmove(old.data.get(), rest, leftover);
  old.used = leftover;
}

// ---- writing ----------------------------------------------------------------------------------

// At most this many batches are written inline per do_write (each a non-blocking sendmsg that
// took everything); the next one goes out as an async write, so a carrier that could keep
// writing lets the context's other handlers run in between.
constexpr int kInlineWrites = 2;

void TcpCarrier::do_write() {
  if (state_ != State::open || write_in_flight_) return;
  if (pulling_) {
    // A kick from inside our own pull (the session's work after it kicked another carrier of
    // this thread, whose pull kicked us back): pull again once this pull is done.
    repull_ = true;
    return;
  }
  for (int written_inline = 0;; ++written_inline) {
    if (!pull_batch()) return;  // nothing to send: idle until kick()
    if (written_inline == kInlineWrites) {
      start_async_write(0);
      return;
    }
    // Most small batches fit the socket's buffer: one sendmsg, no completion handler.
    error_code ec;
    const std::size_t n = socket_.write_some(std::span<const asio::const_buffer>(buffers_), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again ||
        (!ec && n < batch_bytes_)) {
      start_async_write(ec ? 0 : n);
      return;
    }
    finish_write(n);
    if (ec) {
      fail(reason_for(ec), ec, wire::DecodeError::none);
      return;
    }
    // Nothing more owed: a pull now would find nothing (the next kick brings the next batch).
    if (!owed_after_batch_) return;
  }
}

// Pulls the next batch into out_ / buffers_; false if there is nothing to send.
bool TcpCarrier::pull_batch() {
  auto handler = handler_.lock();
  if (!handler) {
    do_close();
    return false;
  }
  for (;;) {
    out_.reset(options_.max_write_bytes);
    repull_ = false;
    pulling_ = true;
    (void)handler->pull(out_);
    pulling_ = false;
    if (out_.frame_count() > 0 || !repull_ || state_ != State::open) break;
  }
  handler.reset();
  owed_after_batch_ = out_.more_owed() || repull_;

  buffers_.clear();
  batch_bytes_ = 0;
  for (const wire::OutFrame& f : out_.frames()) {
    if (f.header_size > 0) buffers_.emplace_back(f.header.data(), f.header_size);
    if (!f.payload.empty()) buffers_.emplace_back(f.payload.data(), f.payload.size());
    batch_bytes_ += f.size();
  }
  if (batch_bytes_ == 0) {
    out_.clear();
    buffers_.clear();
    return false;
  }
  counters_.frames_written.fetch_add(out_.frame_count(), std::memory_order_relaxed);
  return true;
}

// Writes the batch from byte `sent` on (what a non-blocking sendmsg already took) as an async
// write; on_write follows.
void TcpCarrier::start_async_write(std::size_t sent) {
  write_in_flight_ = true;
  write_sent_inline_ = sent;
  // Drop the buffers (and the front of the one) that already went out.
  auto first = buffers_.begin();
  while (sent > 0 && sent >= first->size()) {
    sent -= first->size();
    ++first;
  }
  buffers_.erase(buffers_.begin(), first);
  if (sent > 0) buffers_.front() += sent;
  // A span, not the vector: asio copies the buffer sequence into its operation.
  // asio's transfer_all() caps every sendmsg at 64 KiB; hand the kernel the whole gather.
  auto whole_gather = [](const error_code& ec, std::size_t) -> std::size_t {
    return ec ? 0 : std::size_t{1} << 30;
  };
  asio::async_write(
      socket_, std::span<const asio::const_buffer>(buffers_), whole_gather,
      asio::bind_executor(strand_, [self = shared_from_this()](error_code ec, std::size_t n) {
        self->on_write(ec, n);
      }));
}

// The batch is written (or failed): release it.
void TcpCarrier::finish_write(std::size_t n) {
  out_.clear();  // releases the payload slices
  buffers_.clear();
  counters_.writes.fetch_add(1, std::memory_order_relaxed);
  counters_.bytes_written.fetch_add(n, std::memory_order_relaxed);
}

void TcpCarrier::on_write(error_code ec, std::size_t n) {
  write_in_flight_ = false;
  finish_write(write_sent_inline_ + n);
  write_sent_inline_ = 0;
  switch (state_) {
    case State::open:
      if (ec) {
        fail(reason_for(ec), ec, wire::DecodeError::none);
        return;
      }
      do_write();
      return;
    case State::closing:
      if (ec) {
        finish_close();
        return;
      }
      begin_shutdown();
      return;
    default:
      return;
  }
}

// ---- closing ----------------------------------------------------------------------------------

void TcpCarrier::do_close() {
  if (state_ == State::idle) {
    close_socket();
    state_ = State::closed;
    return;
  }
  if (state_ != State::open) return;
  state_ = State::closing;
  linger_timer_.expires_after(options_.close_linger);
  linger_timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (ec || self->state_ != State::closing) return;
    self->finish_close();
  });
  // A read is pending (the read loop always keeps one while open, except inside
  // deliver_frames, whose caller restarts it); it now drains.
  if (!write_in_flight_) begin_shutdown();
}

void TcpCarrier::begin_shutdown() {
  error_code ec;
  socket_.shutdown(asio::socket_base::shutdown_send, ec);
  if (ec || read_eof_) finish_close();
  // Otherwise the pending read drains until the peer's EOF or the linger deadline.
}

void TcpCarrier::finish_close() {
  state_ = State::closed;
  linger_timer_.cancel();
  close_socket();
  report_down(DownReason::closed, {}, wire::DecodeError::none);
}

void TcpCarrier::do_abort() {
  if (state_ == State::closed || state_ == State::down) return;
  const bool started = state_ != State::idle;
  error_code ec;
  socket_.set_option(asio::socket_base::linger(true, 0), ec);
  close_socket();
  linger_timer_.cancel();
  state_ = State::closed;
  if (started) report_down(DownReason::closed, {}, wire::DecodeError::none);
}

void TcpCarrier::fail(DownReason reason, error_code ec, wire::DecodeError decode_error) {
  if (state_ == State::closing) {  // a local close is in progress: it wins
    finish_close();
    return;
  }
  if (state_ != State::open) return;
  state_ = State::down;
  linger_timer_.cancel();
  close_socket();
  report_down(reason, ec, decode_error);
}

void TcpCarrier::report_down(DownReason reason, error_code ec, wire::DecodeError decode_error) {
  if (auto handler = handler_.take()) handler->on_down(reason, ec, decode_error);
}

std::shared_ptr<Carrier> make_tcp_carrier(asio::ip::tcp::socket socket, const TcpOptions& options) {
  return std::make_shared<TcpCarrier>(std::move(socket), options);
}

// ---- dialing ----------------------------------------------------------------------------------

namespace {

// One dial: resolve, connect, bounded by a timer. All of it runs on one strand of the executor.
class DialOp : public std::enable_shared_from_this<DialOp> {
 public:
  DialOp(asio::any_io_executor executor, const TcpOptions& options, DialCallback done)
      : strand_(asio::make_strand(executor)),
        resolver_(strand_),
        socket_(executor),  // the carrier makes its own strand from the socket's executor
        timer_(strand_),
        options_(options),
        done_(std::move(done)) {}

  void run(const std::string& host, std::uint16_t port) {
    // Everything, the timer included, runs on the strand: timeout and completions never race.
    asio::post(strand_, [self = shared_from_this(), host, port] {
      if (self->options_.connect_timeout.count() > 0) {
        self->timer_.expires_after(self->options_.connect_timeout);
        self->timer_.async_wait([self](error_code ec) {
          if (ec || self->finished_) return;
          self->resolver_.cancel();
          error_code ignored;
          self->socket_.close(ignored);
          self->finish(asio::error::timed_out);
        });
      }
      self->resolver_.async_resolve(
          host, std::to_string(port), asio::ip::resolver_base::numeric_service,
          [self](error_code ec, asio::ip::tcp::resolver::results_type results) {
            self->on_resolved(ec, std::move(results));
          });
    });
  }

 private:
  void on_resolved(error_code ec, asio::ip::tcp::resolver::results_type results) {
    if (finished_) return;
    if (ec) {
      finish(ec);
      return;
    }
    asio::async_connect(
        socket_, results,
        asio::bind_executor(
            strand_, [self = shared_from_this()](error_code ec, const asio::ip::tcp::endpoint&) {
              if (self->finished_) return;
              if (ec) {
                self->finish(ec);
                return;
              }
              self->finish({}, make_tcp_carrier(std::move(self->socket_), self->options_));
            }));
  }

  void finish(error_code ec, std::shared_ptr<Carrier> carrier = nullptr) {
    finished_ = true;
    timer_.cancel();
    DialCallback done = std::move(done_);
    done_ = nullptr;
    if (done) done(ec, std::move(carrier));
  }

  asio::strand<asio::any_io_executor> strand_;
  asio::ip::tcp::resolver resolver_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  const TcpOptions options_;
  DialCallback done_;
  bool finished_ = false;
};

}  // namespace

void TcpTransport::async_dial(asio::any_io_executor executor, const std::string& host,
                              std::uint16_t port, DialCallback done) {
  std::make_shared<DialOp>(std::move(executor), options_, std::move(done))->run(host, port);
}

}  // namespace rendr::carrier

#include "support/fault_proxy.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <future>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <asio.hpp>

#include "rendr/asio.hpp"

namespace rendr::testing {
namespace {

using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr int kC2S = 0;  // client -> server
constexpr int kS2C = 1;  // server -> client

void abort_socket(tcp::socket& s) {
  if (!s.is_open()) return;
  error_code ec;
  s.set_option(asio::socket_base::linger(true, 0), ec);
  s.close(ec);
}

struct Chunk {
  std::vector<char> data;
  std::size_t offset = 0;  // bytes of data already written
  Clock::time_point release;
};

// One direction of a relayed connection: reads from src, delays/paces, writes to dst.
struct Pump {
  Pump(const asio::any_io_executor& ex, int d, tcp::socket& s, tcp::socket& t)
      : dir(d), src(&s), dst(&t), timer(ex) {}

  int dir;
  tcp::socket* src;
  tcp::socket* dst;
  asio::steady_timer timer;  // delay line / token bucket wait
  std::vector<char> read_buf;
  std::deque<Chunk> queue;
  std::size_t queued = 0;  // unwritten bytes in queue
  Clock::time_point last_release{};
  bool reading = false;    // async_read_some outstanding
  bool read_done = false;  // src gave EOF or an error
  bool writing = false;    // async_write outstanding (its buffer lives in queue.front())
  bool waiting = false;    // timer wait outstanding
  bool shut_sent = false;  // EOF propagated to dst
  double tokens = static_cast<double>(FaultProxy::kBurstBytes);
  Clock::time_point last_refill = Clock::now();
};

class Connection;

}  // namespace

struct FaultProxy::Impl {
  Impl(const std::string& listen_host, const std::string& target_host, std::uint16_t target_port);

  void start_accept();
  void on_accept(const error_code& ec, tcp::socket s);
  void add(const std::shared_ptr<Connection>& c);
  void remove(const std::shared_ptr<Connection>& c);
  void apply_mode(FaultMode m);
  void reshape_all();
  void shutdown();
  Shaping shaping(int dir) const {
    std::lock_guard lock(shaping_mu);
    return shaping_[static_cast<std::size_t>(dir)];
  }

  // Runs f on the io thread and waits for it.
  template <class F>
  void run_on_io(F&& f) {
    if (io.get_executor().running_in_this_thread()) {
      f();
      return;
    }
    std::promise<void> done;
    auto fut = done.get_future();
    asio::post(io, [&] {
      f();
      done.set_value();
    });
    fut.wait();
  }

  // Declaration order matters: io is destroyed last (it may destroy pending handlers, which own
  // connections whose sockets belong to io).
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  tcp::resolver::results_type target;
  std::uint16_t port = 0;

  std::atomic<FaultMode> mode{FaultMode::pass};
  mutable std::mutex shaping_mu;
  std::array<Shaping, 2> shaping_{};

  // io thread only.
  std::mt19937_64 rng{std::random_device{}()};
  std::set<std::shared_ptr<Connection>> conns;
  bool stopping = false;

  std::atomic<std::uint64_t> forwarded{0};
  std::atomic<std::uint64_t> discarded{0};
  std::atomic<std::uint64_t> queued{0};
  std::atomic<std::size_t> accepted{0};
  std::atomic<std::size_t> live{0};

  std::thread thread;
};

namespace {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(FaultProxy::Impl& impl, tcp::socket client, bool blackholed)
      : impl_(impl),
        client_(std::move(client)),
        upstream_(impl.io),
        c2s_(impl.io.get_executor(), kC2S, client_, upstream_),
        s2c_(impl.io.get_executor(), kS2C, upstream_, client_),
        blackholed_(blackholed) {
    error_code ec;
    client_.set_option(tcp::no_delay(true), ec);
  }

  // pass mode: connect upstream, then relay.
  void start_connect() {
    asio::async_connect(upstream_, impl_.target,
                        [self = shared_from_this()](const error_code& ec, const tcp::endpoint&) {
                          self->on_connect(ec);
                        });
  }

  // Accepted in blackhole mode: no upstream; read and discard the client side.
  void start_blackholed() { start_read(c2s_); }

  void blackhole() {
    if (closed_ || blackholed_) return;
    blackholed_ = true;
    for (Pump* p : {&c2s_, &s2c_}) {
      if (p->waiting) p->timer.cancel();
      if (!p->writing) drop_queue(*p);
      if (connected_) start_read(*p);  // resume reads that back-pressure may have paused
    }
    maybe_finish();
  }

  // Shaping changed: re-evaluate token-bucket waits and buffer caps.
  void reshape() {
    if (closed_ || blackholed_) return;
    for (Pump* p : {&c2s_, &s2c_}) {
      if (p->waiting && !p->queue.empty() && Clock::now() >= p->queue.front().release) {
        p->timer.cancel();  // a token-bucket wait: recompute with the new rate
      }
      if (connected_) start_read(*p);
    }
  }

  void close(bool rst) {
    if (closed_) return;
    closed_ = true;
    error_code ec;
    if (rst) {
      abort_socket(client_);
      abort_socket(upstream_);
    } else {
      client_.close(ec);
      upstream_.close(ec);
    }
    for (Pump* p : {&c2s_, &s2c_}) {
      p->timer.cancel();
      impl_.queued.fetch_sub(p->queued, std::memory_order_relaxed);
      p->queued = 0;
      if (!p->writing) p->queue.clear();  // else the in-flight buffer is freed with *this
    }
    impl_.remove(shared_from_this());
  }

 private:
  void on_connect(const error_code& ec) {
    if (closed_) return;
    if (ec) {
      close(true);  // upstream unreachable: the client sees a reset
      return;
    }
    connected_ = true;
    error_code ignored;
    upstream_.set_option(tcp::no_delay(true), ignored);
    start_read(c2s_);
    start_read(s2c_);
  }

  std::size_t cap(int dir) const {
    const Shaping s = impl_.shaping(dir);
    const auto line = s.delay + s.jitter;
    double extra = 0;
    if (line.count() > 0) {
      extra = s.rate_bps > 0 ? static_cast<double>(s.rate_bps) / 8.0 *
                                       std::chrono::duration<double>(line).count() +
                                   static_cast<double>(FaultProxy::kBurstBytes)
                             : static_cast<double>(FaultProxy::kUnlimitedDelayBufferBytes);
    }
    const double total = static_cast<double>(FaultProxy::kBaseBufferBytes) + extra;
    return static_cast<std::size_t>(
        std::min(total, static_cast<double>(FaultProxy::kMaxBufferBytes)));
  }

  void start_read(Pump& p) {
    if (closed_ || p.reading || p.read_done) return;
    std::size_t want = FaultProxy::kReadChunkBytes;
    if (!blackholed_) {
      // Back-pressure with a low-water mark: resume only once a whole read chunk (or half the
      // buffer) is free, else reads and writes shrink to the few bytes each write frees.
      const std::size_t limit = cap(p.dir);
      const std::size_t room = p.queued < limit ? limit - p.queued : 0;
      if (room < std::min(want, limit / 2)) return;
      want = std::min(want, room);
    }
    p.read_buf.resize(want);
    p.reading = true;
    p.src->async_read_some(asio::buffer(p.read_buf),
                           [self = shared_from_this(), &p](const error_code& ec, std::size_t n) {
                             self->on_read(p, ec, n);
                           });
  }

  void on_read(Pump& p, const error_code& ec, std::size_t n) {
    p.reading = false;
    if (closed_) return;
    if (n > 0) {
      if (blackholed_) {
        impl_.discarded.fetch_add(n, std::memory_order_relaxed);
      } else {
        enqueue(p, n);
      }
    }
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      p.read_done = true;
      if (blackholed_) {
        maybe_finish();  // swallow FIN/RST
      } else if (ec == asio::error::eof) {
        write_next(p);  // propagates the EOF once the queue has drained
      } else {
        close(true);  // propagate the reset/error as an abort on both sides
      }
      return;
    }
    start_read(p);
  }

  void enqueue(Pump& p, std::size_t n) {
    const Shaping s = impl_.shaping(p.dir);
    Clock::time_point release = Clock::now() + s.delay;
    if (s.jitter.count() > 0) {
      std::uniform_int_distribution<std::int64_t> dist(0, s.jitter.count());
      release += std::chrono::microseconds(dist(impl_.rng));
    }
    release = std::max(release, p.last_release);  // never reorder
    p.last_release = release;
    p.read_buf.resize(n);
    p.queue.push_back(Chunk{std::move(p.read_buf), 0, release});
    p.read_buf = {};
    p.queued += n;
    impl_.queued.fetch_add(n, std::memory_order_relaxed);
    write_next(p);
  }

  void wait_until(Pump& p, Clock::time_point t) {
    p.waiting = true;
    p.timer.expires_at(t);
    p.timer.async_wait([self = shared_from_this(), &p](const error_code&) {
      p.waiting = false;
      self->write_next(p);  // also after cancel(): write_next re-checks everything
    });
  }

  void write_next(Pump& p) {
    if (closed_ || blackholed_ || p.writing || p.waiting) return;
    if (p.queue.empty()) {
      if (p.read_done && !p.shut_sent) {
        p.shut_sent = true;
        error_code ec;
        p.dst->shutdown(tcp::socket::shutdown_send, ec);
        maybe_finish();
      }
      return;
    }
    Chunk& c = p.queue.front();
    const auto now = Clock::now();
    if (now < c.release) {
      wait_until(p, c.release);
      return;
    }
    std::size_t piece = c.data.size() - c.offset;
    const Shaping s = impl_.shaping(p.dir);
    constexpr double kBurst = static_cast<double>(FaultProxy::kBurstBytes);
    if (s.rate_bps > 0) {
      piece = std::min(piece, FaultProxy::kPaceBytes);
      const double bytes_per_sec = static_cast<double>(s.rate_bps) / 8.0;
      const double elapsed = std::chrono::duration<double>(now - p.last_refill).count();
      p.tokens = std::min(kBurst, p.tokens + elapsed * bytes_per_sec);
      p.last_refill = now;
      const double need = static_cast<double>(piece);
      if (p.tokens < need) {
        const auto wait = std::chrono::ceil<std::chrono::microseconds>(
            std::chrono::duration<double>((need - p.tokens) / bytes_per_sec));
        wait_until(p, now + wait);
        return;
      }
      p.tokens -= need;
    } else {
      p.tokens = kBurst;
      p.last_refill = now;
    }
    p.writing = true;
    asio::async_write(*p.dst, asio::buffer(c.data.data() + c.offset, piece),
                      [self = shared_from_this(), &p](const error_code& ec, std::size_t n) {
                        self->on_write(p, ec, n);
                      });
  }

  void on_write(Pump& p, const error_code& ec, std::size_t n) {
    p.writing = false;
    if (closed_) return;  // close() already fixed the accounting
    if (n > 0) {
      impl_.forwarded.fetch_add(n, std::memory_order_relaxed);
      impl_.queued.fetch_sub(n, std::memory_order_relaxed);
      p.queued -= n;
      Chunk& c = p.queue.front();
      c.offset += n;
      if (c.offset == c.data.size()) p.queue.pop_front();
    }
    if (ec) {
      close(true);
      return;
    }
    if (blackholed_) drop_queue(p);  // blackholed while this write was in flight
    start_read(p);                   // space was freed
    write_next(p);
  }

  void drop_queue(Pump& p) {
    impl_.discarded.fetch_add(p.queued, std::memory_order_relaxed);
    impl_.queued.fetch_sub(p.queued, std::memory_order_relaxed);
    p.queued = 0;
    p.queue.clear();
  }

  void maybe_finish() {
    if (closed_) return;
    if (blackholed_) {
      // Close only when every side we have has gone away; nothing is propagated.
      if (c2s_.read_done && (!connected_ || s2c_.read_done)) close(false);
    } else if (c2s_.shut_sent && s2c_.shut_sent) {
      close(false);  // both half-closes relayed
    }
  }

  FaultProxy::Impl& impl_;
  tcp::socket client_;
  tcp::socket upstream_;
  Pump c2s_;
  Pump s2c_;
  bool blackholed_;
  bool connected_ = false;
  bool closed_ = false;
};

}  // namespace

FaultProxy::Impl::Impl(const std::string& listen_host, const std::string& target_host,
                       std::uint16_t target_port) {
  tcp::resolver resolver(io);
  const auto listen_eps = resolver.resolve(listen_host, "0", tcp::resolver::passive);
  target = resolver.resolve(target_host, std::to_string(target_port));
  const tcp::endpoint ep = listen_eps.begin()->endpoint();
  acceptor.open(ep.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  acceptor.bind(ep);
  acceptor.listen();
  port = acceptor.local_endpoint().port();
  start_accept();
  thread = std::thread([this] { io.run(); });
}

void FaultProxy::Impl::start_accept() {
  acceptor.async_accept(
      [this](const error_code& ec, tcp::socket s) { on_accept(ec, std::move(s)); });
}

void FaultProxy::Impl::on_accept(const error_code& ec, tcp::socket s) {
  if (stopping || ec == asio::error::operation_aborted) return;
  if (ec) {  // e.g. EMFILE: back off briefly instead of spinning
    accept_retry.expires_after(std::chrono::milliseconds(10));
    accept_retry.async_wait([this](const error_code& e) {
      if (!e && !stopping) start_accept();
    });
    return;
  }
  accepted.fetch_add(1, std::memory_order_relaxed);
  switch (mode.load()) {
    case FaultMode::reset:
      abort_socket(s);
      break;
    case FaultMode::blackhole: {
      auto c = std::make_shared<Connection>(*this, std::move(s), true);
      add(c);
      c->start_blackholed();
      break;
    }
    case FaultMode::pass: {
      auto c = std::make_shared<Connection>(*this, std::move(s), false);
      add(c);
      c->start_connect();
      break;
    }
  }
  start_accept();
}

void FaultProxy::Impl::add(const std::shared_ptr<Connection>& c) {
  conns.insert(c);
  live.store(conns.size(), std::memory_order_relaxed);
}

void FaultProxy::Impl::remove(const std::shared_ptr<Connection>& c) {
  conns.erase(c);
  live.store(conns.size(), std::memory_order_relaxed);
}

void FaultProxy::Impl::apply_mode(FaultMode m) {
  mode.store(m);
  if (m == FaultMode::pass) return;  // blackholed connections stay blackholed
  const auto snapshot = conns;       // close() erases from conns
  for (const auto& c : snapshot) {
    if (m == FaultMode::blackhole) {
      c->blackhole();
    } else {
      c->close(true);
    }
  }
}

void FaultProxy::Impl::reshape_all() {
  const auto snapshot = conns;
  for (const auto& c : snapshot)
    c->reshape();
}

void FaultProxy::Impl::shutdown() {
  stopping = true;
  error_code ec;
  acceptor.close(ec);
  accept_retry.cancel();
  const auto snapshot = conns;
  for (const auto& c : snapshot)
    c->close(false);
  conns.clear();
  live.store(0);
  work.reset();
  io.stop();  // handlers still pending are destroyed (not run) by ~io_context
}

FaultProxy::FaultProxy(std::string listen_host, std::string target_host, std::uint16_t target_port)
    : impl_(std::make_unique<Impl>(listen_host, target_host, target_port)) {}

FaultProxy::~FaultProxy() {
  asio::post(impl_->io, [impl = impl_.get()] { impl->shutdown(); });
  impl_->thread.join();
}

std::uint16_t FaultProxy::port() const {
  return impl_->port;
}

void FaultProxy::set_mode(FaultMode m) {
  impl_->run_on_io([this, m] { impl_->apply_mode(m); });
}

FaultMode FaultProxy::mode() const {
  return impl_->mode.load();
}

void FaultProxy::set_shaping(Shaping client_to_server, Shaping server_to_client) {
  {
    std::lock_guard lock(impl_->shaping_mu);
    impl_->shaping_[kC2S] = client_to_server;
    impl_->shaping_[kS2C] = server_to_client;
  }
  impl_->run_on_io([this] { impl_->reshape_all(); });
}

Shaping FaultProxy::shaping_client_to_server() const {
  return impl_->shaping(kC2S);
}
Shaping FaultProxy::shaping_server_to_client() const {
  return impl_->shaping(kS2C);
}

std::uint64_t FaultProxy::bytes_forwarded() const {
  return impl_->forwarded.load(std::memory_order_relaxed);
}
std::uint64_t FaultProxy::bytes_discarded() const {
  return impl_->discarded.load(std::memory_order_relaxed);
}
std::size_t FaultProxy::connections_accepted() const {
  return impl_->accepted.load(std::memory_order_relaxed);
}
std::size_t FaultProxy::live_connections() const {
  return impl_->live.load(std::memory_order_relaxed);
}
std::uint64_t FaultProxy::bytes_queued() const {
  return impl_->queued.load(std::memory_order_relaxed);
}

}  // namespace rendr::testing

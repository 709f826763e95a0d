#include "support/udp_fault_proxy.hpp"

#include <array>
#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <asio.hpp>

#include "support/udp_fault_pipeline.hpp"

namespace rendr::testing {
namespace {

using udp = asio::ip::udp;
using Clock = UdpFaultPipeline::Clock;

constexpr std::size_t kC2S = 0;  // client -> server
constexpr std::size_t kS2C = 1;  // server -> client

// Distinct, reproducible RNG streams per session and direction.
std::uint64_t stream_seed(std::uint64_t seed, std::uint64_t session_index, std::size_t dir) {
  return seed ^ ((session_index * 2 + dir + 1) * 0x9E3779B97F4A7C15ULL);
}

void enlarge_buffers(udp::socket& s) {
  std::error_code ignored;  // the kernel caps or refuses larger buffers; the defaults still work
  s.set_option(asio::socket_base::receive_buffer_size(UdpFaultProxy::kSocketBufferBytes), ignored);
  s.set_option(asio::socket_base::send_buffer_size(UdpFaultProxy::kSocketBufferBytes), ignored);
}

// One client source address and its upstream socket.
struct Session {
  Session(asio::io_context& io, udp::endpoint from, std::uint64_t seed, std::uint64_t index,
          std::array<AtomicUdpFaultCounters, 2>& counters)
      : client(std::move(from)),
        upstream(io),
        pipes{UdpFaultPipeline(stream_seed(seed, index, kC2S), counters[kC2S], Clock::now()),
              UdpFaultPipeline(stream_seed(seed, index, kS2C), counters[kS2C], Clock::now())},
        timers{asio::steady_timer(io), asio::steady_timer(io)} {}

  udp::endpoint client;
  udp::socket upstream;
  std::uint64_t upstream_generation = 0;  // bumped on rebind; stale receives are ignored
  std::vector<char> upstream_buf = std::vector<char>(UdpFaultProxy::kMaxDatagramBytes);
  std::array<UdpFaultPipeline, 2> pipes;
  std::array<asio::steady_timer, 2> timers;
  std::array<std::optional<Clock::time_point>, 2> armed;  // pending timer expiry per direction
};

}  // namespace

struct UdpFaultProxy::Impl {
  Impl(const std::string& listen_host, const std::string& target_host, std::uint16_t target_port,
       std::uint64_t seed);

  void start_listen_receive();
  void on_client_datagram(std::size_t n);
  std::shared_ptr<Session> session_for(const udp::endpoint& client);
  void open_upstream(Session& s);
  void start_upstream_receive(const std::shared_ptr<Session>& s);
  void accept(Session& s, std::size_t dir, std::vector<char> d);
  void track_queued(std::size_t before, std::size_t after);
  void service(const std::shared_ptr<Session>& s, std::size_t dir);
  void send(Session& s, std::size_t dir, const std::vector<char>& d);
  void apply_faults();
  void rebind_all();
  void shutdown();
  UdpFaults faults(std::size_t dir) const {
    std::lock_guard lock(faults_mu);
    return faults_[dir];
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
  // sessions whose sockets belong to io).
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  udp::socket listener{io};
  udp::endpoint target;
  std::uint16_t port = 0;
  const std::uint64_t seed;

  mutable std::mutex faults_mu;
  std::array<UdpFaults, 2> faults_{};

  // io thread only.
  std::vector<char> listen_buf = std::vector<char>(UdpFaultProxy::kMaxDatagramBytes);
  udp::endpoint listen_from;
  std::map<udp::endpoint, std::shared_ptr<Session>> sessions;
  std::uint64_t sessions_created = 0;
  bool stopping = false;
  UdpFaultProxy::Tap client_tap;

  std::array<AtomicUdpFaultCounters, 2> counters;
  std::atomic<std::size_t> live_sessions{0};
  std::atomic<std::uint64_t> rebinds{0};
  std::atomic<std::uint64_t> queued{0};

  std::thread thread;
};

UdpFaultProxy::Impl::Impl(const std::string& listen_host, const std::string& target_host,
                          std::uint16_t target_port, std::uint64_t s)
    : seed(s) {
  udp::resolver resolver(io);
  const udp::endpoint listen_ep =
      resolver.resolve(listen_host, "0", udp::resolver::passive).begin()->endpoint();
  target = resolver.resolve(target_host, std::to_string(target_port)).begin()->endpoint();
  listener.open(listen_ep.protocol());
  listener.bind(listen_ep);
  listener.non_blocking(true);
  enlarge_buffers(listener);
  port = listener.local_endpoint().port();
  start_listen_receive();
  thread = std::thread([this] { io.run(); });
}

void UdpFaultProxy::Impl::start_listen_receive() {
  listener.async_receive_from(asio::buffer(listen_buf), listen_from,
                              [this](const std::error_code& ec, std::size_t n) {
                                if (stopping || ec == asio::error::operation_aborted) return;
                                if (!ec) on_client_datagram(n);
                                start_listen_receive();  // a transient error loses one datagram
                              });
}

void UdpFaultProxy::Impl::on_client_datagram(std::size_t n) {
  if (client_tap)
    client_tap(
        std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(listen_buf.data()), n));
  const auto s = session_for(listen_from);
  if (!s) {  // over kMaxSessions: dropped like any other datagram the proxy cannot carry
    AtomicUdpFaultCounters::bump(counters[kC2S].received);
    AtomicUdpFaultCounters::bump(counters[kC2S].dropped);
    return;
  }
  accept(*s, kC2S, std::vector<char>(listen_buf.begin(), listen_buf.begin() + n));
  service(s, kC2S);
}

std::shared_ptr<Session> UdpFaultProxy::Impl::session_for(const udp::endpoint& client) {
  if (const auto it = sessions.find(client); it != sessions.end()) return it->second;
  if (sessions.size() >= UdpFaultProxy::kMaxSessions) return nullptr;
  auto s = std::make_shared<Session>(io, client, seed, sessions_created, counters);
  const auto now = Clock::now();
  for (std::size_t dir : {kC2S, kS2C})
    s->pipes[dir].configure(faults(dir), now);
  try {
    open_upstream(*s);
  } catch (const std::system_error&) {
    return nullptr;  // e.g. out of file descriptors: this client's datagrams are dropped
  }
  ++sessions_created;
  sessions.emplace(client, s);
  live_sessions.store(sessions.size(), std::memory_order_relaxed);
  start_upstream_receive(s);
  return s;
}

void UdpFaultProxy::Impl::open_upstream(Session& s) {
  udp::socket fresh(io);
  fresh.open(target.protocol());
  enlarge_buffers(fresh);
  fresh.connect(target);  // binds a fresh ephemeral port and filters replies to the target's
  fresh.non_blocking(true);
  s.upstream = std::move(fresh);  // closes the old socket, aborting its pending receive
  ++s.upstream_generation;
}

void UdpFaultProxy::Impl::start_upstream_receive(const std::shared_ptr<Session>& s) {
  s->upstream.async_receive(
      asio::buffer(s->upstream_buf),
      [this, s, generation = s->upstream_generation](const std::error_code& ec, std::size_t n) {
        if (stopping || ec == asio::error::operation_aborted ||
            generation != s->upstream_generation) {
          return;
        }
        // connection_refused: an ICMP error for an earlier send; the next datagram may pass.
        if (!ec) {
          accept(*s, kS2C, std::vector<char>(s->upstream_buf.begin(), s->upstream_buf.begin() + n));
          service(s, kS2C);
        }
        start_upstream_receive(s);
      });
}

void UdpFaultProxy::Impl::accept(Session& s, std::size_t dir, std::vector<char> d) {
  if (queued.load(std::memory_order_relaxed) + d.size() > UdpFaultProxy::kMaxQueuedBytes) {
    AtomicUdpFaultCounters::bump(counters[dir].received);
    AtomicUdpFaultCounters::bump(counters[dir].dropped);
    return;
  }
  const std::size_t before = s.pipes[dir].queued_bytes();
  s.pipes[dir].push(std::move(d), Clock::now());
  track_queued(before, s.pipes[dir].queued_bytes());
}

void UdpFaultProxy::Impl::track_queued(std::size_t before, std::size_t after) {
  if (after >= before) {
    queued.fetch_add(after - before, std::memory_order_relaxed);
  } else {
    queued.fetch_sub(before - after, std::memory_order_relaxed);
  }
}

void UdpFaultProxy::Impl::service(const std::shared_ptr<Session>& s, std::size_t dir) {
  UdpFaultPipeline& pipe = s->pipes[dir];
  const std::size_t before = pipe.queued_bytes();
  std::vector<std::vector<char>> due;
  pipe.pop_due(Clock::now(), due);
  track_queued(before, pipe.queued_bytes());
  for (const auto& d : due)
    send(*s, dir, d);

  const auto wake = pipe.next_wake();
  if (!wake || s->armed[dir] == wake) return;
  s->armed[dir] = wake;
  s->timers[dir].expires_at(*wake);  // cancels an earlier wait (its handler sees aborted)
  s->timers[dir].async_wait([this, s, dir](const std::error_code& ec) {
    if (stopping || ec == asio::error::operation_aborted) return;
    s->armed[dir].reset();
    service(s, dir);
  });
}

void UdpFaultProxy::Impl::send(Session& s, std::size_t dir, const std::vector<char>& d) {
  std::error_code ec;
  if (dir == kC2S) {
    s.upstream.send(asio::buffer(d), 0, ec);
  } else {
    listener.send_to(asio::buffer(d), s.client, 0, ec);
  }
  AtomicUdpFaultCounters::bump(ec ? counters[dir].dropped : counters[dir].forwarded);
}

void UdpFaultProxy::Impl::apply_faults() {
  const auto now = Clock::now();
  for (const auto& [client, s] : sessions) {
    for (std::size_t dir : {kC2S, kS2C}) {
      const std::size_t before = s->pipes[dir].queued_bytes();
      s->pipes[dir].configure(faults(dir), now);
      track_queued(before, s->pipes[dir].queued_bytes());
      s->armed[dir].reset();  // the rate may have changed: recompute the wake-up
      service(s, dir);
    }
  }
}

void UdpFaultProxy::Impl::rebind_all() {
  for (const auto& [client, s] : sessions) {
    try {
      open_upstream(*s);
    } catch (const std::system_error&) {
      continue;  // keeps the old port; the test sees no new source port
    }
    rebinds.fetch_add(1, std::memory_order_relaxed);
    start_upstream_receive(s);
  }
}

void UdpFaultProxy::Impl::shutdown() {
  stopping = true;
  std::error_code ec;
  listener.close(ec);
  for (const auto& [client, s] : sessions) {
    s->upstream.close(ec);
    for (auto& t : s->timers)
      t.cancel();
  }
  sessions.clear();
  live_sessions.store(0);
  queued.store(0);
  work.reset();
  io.stop();  // handlers still pending are destroyed (not run) by ~io_context
}

UdpFaultProxy::UdpFaultProxy(std::string listen_host, std::string target_host,
                             std::uint16_t target_port, std::uint64_t seed)
    : impl_(std::make_unique<Impl>(listen_host, target_host, target_port, seed)) {}

UdpFaultProxy::~UdpFaultProxy() {
  asio::post(impl_->io, [impl = impl_.get()] { impl->shutdown(); });
  impl_->thread.join();
}

std::uint16_t UdpFaultProxy::port() const {
  return impl_->port;
}

void UdpFaultProxy::set_faults(UdpFaults client_to_server, UdpFaults server_to_client) {
  {
    std::lock_guard lock(impl_->faults_mu);
    impl_->faults_[kC2S] = client_to_server;
    impl_->faults_[kS2C] = server_to_client;
  }
  impl_->run_on_io([this] { impl_->apply_faults(); });
}

UdpFaults UdpFaultProxy::faults_client_to_server() const {
  return impl_->faults(kC2S);
}
UdpFaults UdpFaultProxy::faults_server_to_client() const {
  return impl_->faults(kS2C);
}

void UdpFaultProxy::set_client_tap(Tap tap) {
  impl_->run_on_io([this, &tap] { impl_->client_tap = std::move(tap); });
}

void UdpFaultProxy::rebind_source_ports() {
  impl_->run_on_io([this] { impl_->rebind_all(); });
}

UdpFaultCounters UdpFaultProxy::counters_client_to_server() const {
  return impl_->counters[kC2S].snapshot();
}
UdpFaultCounters UdpFaultProxy::counters_server_to_client() const {
  return impl_->counters[kS2C].snapshot();
}
std::size_t UdpFaultProxy::sessions() const {
  return impl_->live_sessions.load(std::memory_order_relaxed);
}
std::uint64_t UdpFaultProxy::rebinds() const {
  return impl_->rebinds.load(std::memory_order_relaxed);
}
std::uint64_t UdpFaultProxy::bytes_queued() const {
  return impl_->queued.load(std::memory_order_relaxed);
}

}  // namespace rendr::testing

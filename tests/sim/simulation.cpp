#include "simulation.hpp"

#include <algorithm>
#include <array>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <vector>

#include "core/endpoint.hpp"
#include "core/flow.hpp"
#include "timing_watch.hpp"

namespace rendr::sim {

namespace {

using namespace std::chrono_literals;
using core::Duration;
using core::Flow;
using core::FlowState;
using core::PathId;
using core::Time;
using wire::Byte;

// ---------------------------------------------------------------------------------------------
// Randomness and the test pattern. Our own generator, so a seed means the same run everywhere.

std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(mix64(seed)) {}
  std::uint64_t next() { return mix64(state_++); }
  // Uniform in [lo, hi].
  std::uint64_t between(std::uint64_t lo, std::uint64_t hi) { return lo + next() % (hi - lo + 1); }
  bool chance(double p) { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }
  Duration micros(std::uint64_t lo, std::uint64_t hi) {
    return std::chrono::microseconds(between(lo, hi));
  }
  Duration millis(std::uint64_t lo, std::uint64_t hi) { return micros(lo * 1000, hi * 1000); }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[next() % v.size()];
  }

 private:
  std::uint64_t state_;
};

// Byte `offset` of the stream keyed by `key`: any loss, duplication or reordering shows up as a
// mismatch at the first wrong offset.
void fill_pattern(std::uint64_t key, std::uint64_t offset, std::span<Byte> out) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::uint64_t at = offset + i;
    out[i] = static_cast<Byte>(mix64(key ^ (at >> 3)) >> ((at & 7) * 8));
  }
}

double seconds(Duration d) {
  return std::chrono::duration<double>(d).count();
}

// ---------------------------------------------------------------------------------------------
// Network model.

enum Side { kClient = 0, kServer = 1 };
Side other(Side s) {
  return s == kClient ? kServer : kClient;
}
const char* name(Side s) {
  return s == kClient ? "client" : "server";
}

// One direction of a route's behaviour; indexed by the sending side.
struct RouteProfile {
  std::array<Duration, 2> latency{};
  std::array<Duration, 2> jitter{};
  std::uint64_t bytes_per_second = 0;
};

// How a route treats datagrams (datagram runs only), per sending side.
struct DatagramProfile {
  std::array<double, 2> loss{};       // chance a packet vanishes
  std::array<double, 2> duplicate{};  // chance it arrives twice
  // Packets arrive after latency + a fresh jitter each, so they reorder.
  std::size_t mtu = 1500;  // bytes of UDP payload; a larger packet is dropped
};

struct Route {
  RouteProfile profile;
  DatagramProfile datagram;
  bool blackholed = false;     // live connections vanish; new dials go unanswered
  bool refusing = false;       // killed: new dials are refused
  std::array<bool, 2> dark{};  // datagrams from this side vanish (an asymmetric blackhole)
};

// A TCP connection: per direction a byte pipe that serialises at the route's rate and keeps
// order despite jitter.
struct Connection {
  struct Direction {
    Time busy_until{};    // the last queued byte leaves the sender
    Time last_arrival{};  // arrivals never overtake each other
    bool wake_scheduled = false;
    bool sent_any = false;  // the sender's core wrote on it (a JOIN/JOIN_ACK comes first)
  };
  std::uint64_t id = 0;
  int route = 0;
  bool datagram = false;  // a datagram path's: whole packets, each on its own
  PathId path = core::kNoPath;
  Time dialed_at{};
  bool dialing = true;
  bool blackholed = false;
  std::array<bool, 2> open{true, true};  // each end: not yet closed or reset
  bool server_attached = false;          // the server's flow took it (OPEN or JOIN accepted)
  // The listener accepted it and waits for its first frame (the endpoint's half-open entry).
  std::optional<core::ConnectionId> half_open;
  // The server flow's id for it: a provisional id after a JOIN, the path's once its PROOF came.
  PathId server_path = core::kNoPath;
  bool proven = false;  // the server has the client's PROOF on it: frames behind it are attached
  // Not the client flow's: a stranger who replays the flow's OPEN or sends a forged one.
  enum class Stranger { none, replay, forged } stranger = Stranger::none;
  std::array<Direction, 2> direction;  // indexed by the sending side
};

// The runtime keeps the kernel's unsent bytes small (TCP_NOTSENT_LOWAT): it pulls frames only
// while less than this much is still waiting to be serialised.
constexpr std::size_t kUnsentLowWater = 32 * 1024;
constexpr std::size_t kPollBytes = 64 * 1024;
// What a byte pipe delivers at once (frame-aligned: the model decodes whole frames).
constexpr std::size_t kSegmentBytes = 4 * 1024;
constexpr Duration kConnectTimeout = 1s;  // the runtime's dial timeout (unanswered SYN)
constexpr Duration kMaxVirtualTime = 300s;
constexpr int kMaxSameTimeSteps = 20'000;
constexpr std::uint64_t kMaxSteps = 5'000'000;
// A datagram's bytes beyond its frames: the protected header and AEAD tag (docs/protocol.md).
constexpr std::size_t kDatagramOverhead = 13 + 16;
// With mtu_probing: the largest datagram the carriers could send (PathOptions).
constexpr std::size_t kMaxProbedDatagram = 1452;

// ---------------------------------------------------------------------------------------------
// The application on each end: writes a generated stream, reads and checks the peer's.

struct App {
  std::uint64_t key = 0;      // pattern of the stream this end writes
  std::uint64_t total = 0;    // bytes to write before close()
  bool endless = false;       // keeps writing until the flow fails (long dark runs)
  std::uint64_t written = 0;  // accepted by write()
  bool write_closed = false;
  std::uint64_t received = 0;  // read and verified
  bool saw_eof = false;
  std::optional<Time> finished_at;
  std::vector<Byte> scratch;
  std::vector<Byte> expected;
  // Packet mode: `total`, `written` and `received` count messages; which arrived, and the last.
  std::vector<bool> seen;
  std::optional<std::uint64_t> last_number;
};

// Packet mode: message `n` of the end keyed by `key` is its number (8 bytes) and a pattern; its
// size follows from both, so a reader checks a message whole without knowing what was sent.
std::size_t message_size(std::uint64_t key, std::uint64_t n, std::size_t max) {
  const std::uint64_t h = mix64(key ^ (n * 0x9e3779b97f4a7c15ull));
  return 8 + static_cast<std::size_t>(h % 4 == 0 ? h % 24 : h % (max - 7));
}
void fill_message(std::uint64_t key, std::uint64_t n, std::span<Byte> out) {
  for (int b = 0; b < 8; ++b)
    out[b] = static_cast<Byte>(n >> (8 * b));
  fill_pattern(key ^ n, 0, out.subspan(8));
}

// ---------------------------------------------------------------------------------------------

class Simulation {
 public:
  Simulation(std::uint64_t seed, const RunOptions& options)
      : seed_(seed),
        rng_(seed),
        verbose_(options.verbose),
        transports_(options.transports),
        mtu_probing_(options.mtu_probing),
        packet_(options.packet),
        check_timing_(options.check_timing),
        timing_(options.deaths_in_every_mode) {}

  RunResult run();

 private:
  // ---- scenario
  void choose_scenario();
  RouteProfile random_profile();
  DatagramProfile random_datagram_profile();
  // Datagram runs: the kind of a new client path.
  core::PathOptions path_options();
  PathId add_client_path(int route);

  // ---- event queue (a heap, so scheduled closures are moved, never copied)
  struct Scheduled {
    Time at;
    std::uint64_t seq;
    std::function<void()> run;
  };
  struct Later {
    bool operator()(const Scheduled& a, const Scheduled& b) const {
      return a.at != b.at ? a.at > b.at : a.seq > b.seq;
    }
  };
  void at(Time when, std::function<void()> fn);
  std::optional<Time> next_time() const;
  void run_due();

  // ---- network
  Flow* flow(Side s) const { return s == kClient ? client_.get() : server_.get(); }
  std::map<PathId, std::uint64_t>& carriers(Side s) { return carriers_[s]; }
  Connection* connection(std::uint64_t id);
  Connection* carrier_of(Side s, PathId path);
  // The id under which side `s`'s flow knows the connection.
  static PathId id_on(const Connection& c, Side s) { return s == kClient ? c.path : c.server_path; }
  void dial(PathId path);
  void dial_result(std::uint64_t conn_id, bool refused);
  bool transmit_all();
  bool transmit(Connection& c, Side from);
  void send_bytes(Connection& c, Side from, std::vector<Byte> bytes);
  void send_packet(Connection& c, Side from, std::uint64_t number, std::vector<Byte> bytes);
  void deliver_packet(std::uint64_t conn_id, Side to, std::uint64_t number,
                      const std::vector<Byte>& bytes);
  void datagram_fault(int route);
  void maybe_duplicate(const Connection& c, Side from, const std::vector<Byte>& bytes,
                       const std::vector<std::pair<std::size_t, std::size_t>>& data_frames);
  void deliver(std::uint64_t conn_id, Side to, const std::vector<Byte>& bytes);
  void accept(Connection& c, const wire::Frame& first);
  void accept_open(Connection& c, const wire::Open& open, core::Admission admission);
  void accept_join(Connection& c, const wire::Join& join, const core::Admission& admission);
  void answer_and_close(Connection& c, const wire::Frame& answer);
  void listener_accepts(Connection& c);
  void forget_half_open(Connection& c);
  void run_endpoint_actions();
  void report_server_flow();
  void close_end(Connection& c, Side s);
  void reset(Connection& c);
  void eof_arrives(std::uint64_t conn_id, Side to);
  void blackhole_route(int route);

  // ---- flows
  bool drain_events();
  void on_event(Side s, const core::Event& e);

  // ---- application
  void start_app(Side s);
  void writer_tick(Side s);
  void send_messages(Side s);
  void read_messages(Side s);
  void reader_tick(Side s);
  void read_some(Side s);
  Duration app_pause();

  // ---- faults and admin
  void fault_tick();
  void handshake_fault_tick();
  void route_fault_until(int route, bool kill, Time until);
  void lose_open_ack(Connection& c);
  void spike_route(int route, Duration to_server, Duration to_client, Time until);
  void stranger_open();
  void stranger_answer(const Connection& c, const wire::Frame& frame);
  void note_open_ack(const wire::OpenAck& ack, const char* where);
  bool other_route_healthy(int route) const;
  std::vector<PathId> client_path_ids() const;
  void start_long_dark();
  void switch_mode_at_random();
  void expect_failover(PathId path);

  // ---- checks
  void check_invariants();
  void check_outcome();
  void check_endpoint_counters();
  bool done() const;
  // Every PROOF the established client sent was lost, and no JOIN of it got through before the
  // server's handshake timeout: the server forgot the flow, and the client's JOINs now meet
  // unknown_flow until its budget runs out. A known limit (docs/design.md, "Handshake and
  // attach security"), not a broken contract.
  bool proof_lost() const {
    return server_ && established_at_ && server_->state() == FlowState::failed &&
           !server_->authenticated();
  }
  void fail(const std::string& what);
  std::string describe() const;
  template <class... Args>
  void trace(const Args&... args) {
    if (!verbose_) return;
    std::ostringstream line;
    line << "[" << seconds(now_ - start_) << "s] ";
    (line << ... << args);
    std::cerr << line.str() << "\n";
  }

  std::uint64_t seed_;
  Rng rng_;
  bool verbose_;
  Transports transports_;
  bool mtu_probing_;
  std::optional<core::PacketOptions> packet_;
  bool check_timing_;
  std::uint64_t datagrams_dropped_ = 0;
  // Datagrams delivered after a later one of their connection and direction.
  std::uint64_t datagrams_reordered_ = 0;
  std::map<std::pair<std::uint64_t, Side>, std::uint64_t> highest_delivered_;
  std::vector<std::size_t> route_mtu_;                  // each route's MTU when no fault lowers it
  std::map<PathId, core::TransportKind> client_kinds_;  // client path id -> its kind
  Time start_{std::chrono::seconds(1000)};
  Time now_ = start_;
  std::vector<Scheduled> queue_;
  std::uint64_t next_seq_ = 0;

  core::FlowConfig config_;
  std::vector<Route> routes_;
  std::map<std::uint64_t, Connection> connections_;
  std::uint64_t next_connection_ = 1;
  std::array<std::map<PathId, std::uint64_t>, 2> carriers_;  // current carrier per path id
  std::map<PathId, int> client_routes_;                      // client path id -> route

  std::unique_ptr<Flow> client_, server_;
  std::array<App, 2> apps_;
  TimingWatch timing_;
  bool faults_started_ = false;

  // Scenario knobs.
  double duplicate_chance_ = 0;
  double dial_refuse_chance_ = 0;
  double mode_switch_chance_ = 0;  // per fault tick: an application calls set_mode
  Duration fault_gap_max_{};
  bool short_dark_planned_ = false;
  bool long_dark_ = false;
  std::optional<Time> long_dark_since_;
  std::optional<Time> unhealthy_until_;  // a short all-dark period is in progress
  std::array<Time, 2> last_path_up_{};   // last time each side had a path up
  // Handshake faults: until this time (or the OPEN_ACK) faults also hit the opening client.
  // Every one of them ends by then, so the client can still open within its budget.
  std::optional<Time> handshake_faults_until_;
  Duration handshake_gap_max_{};
  enum class LoseOpenAck { no, reset, blackhole, delay } lose_open_ack_ = LoseOpenAck::no;
  double stranger_chance_ = 0;  // per fault tick: a stranger sends the flow's OPEN, maybe forged
  std::optional<Time> established_at_;
  std::vector<std::optional<RouteProfile>> unspiked_;  // per route, while a latency spike lasts
  std::vector<Time> spiked_until_;

  // The listener: the real core::Endpoint, and what the runtime tells it of the server flow.
  std::optional<core::Endpoint> endpoint_;
  std::map<core::ConnectionId, std::uint64_t> half_open_;  // endpoint id -> connection
  core::FlowRef server_ref_;
  core::FlowReport server_report_{0, 1, false};
  bool server_heard_ = false;  // the client sent something after its OPEN
  // Server flows never authenticated (every PROOF lost) after which the client opened again.
  std::uint64_t abandoned_server_flows_ = 0;
  std::uint64_t joins_verified_ = 0;  // JOINs the server verified (provisional paths)
  // OPENs after the flow ended (a stranger's, or one left on a path the client gave up): new
  // flows.
  std::uint64_t late_open_flows_ = 0;
  std::uint64_t answered_repeats_ = 0;  // OPENs answered with the flow's OPEN_ACK

  // The listener's view of the handshake.
  std::optional<wire::Open> first_open_;         // the OPEN that created the server flow
  std::optional<wire::OpenAck> first_open_ack_;  // the first ok OPEN_ACK on any wire

  // Counters for the summary.
  std::uint64_t faults_ = 0, duplicates_ = 0, dials_ = 0, explicit_migrations_ = 0;
  std::size_t largest_datagram_ = 0;  // that crossed a route
  std::uint64_t mode_switches_ = 0, illegal_switches_ = 0;
  std::uint64_t handshake_faults_ = 0, repeated_opens_ = 0, stranger_opens_ = 0;
  // The last legal set_mode came when its side may have been done already: the peer may have
  // closed without it, so the ends need not agree.
  bool switched_late_ = false;
  std::uint64_t steps_ = 0;

  bool failed_ = false;
  std::string failure_;
};

// ---------------------------------------------------------------------------------------------
// Scenario.

RouteProfile Simulation::random_profile() {
  RouteProfile p;
  // Mostly LAN-like, sometimes WAN-like, rarely slow.
  const std::uint64_t max_latency_us = rng_.chance(0.6)   ? 2'000
                                       : rng_.chance(0.8) ? 40'000
                                                          : 150'000;
  for (int s = 0; s < 2; ++s) {
    p.latency[s] = rng_.micros(20, max_latency_us);
    p.jitter[s] = rng_.chance(0.5) ? Duration::zero() : rng_.micros(0, max_latency_us / 2);
  }
  p.bytes_per_second = rng_.between(1, 200) * 1'000'000;
  return p;
}

void Simulation::choose_scenario() {
  config_.send_buffer = rng_.between(16, 512) * 1024;
  config_.recv_window = rng_.between(8, 256) * 1024;
  config_.max_data_payload = rng_.between(512, 16 * 1024);
  config_.ack_every_bytes = rng_.between(1, 64) * 1024;
  config_.max_ack_delay = rng_.millis(1, 5);
  config_.dead_cap = 1s;
  config_.handshake_timeout = 1s;
  config_.redial_initial = rng_.millis(5, 30);
  config_.redial_max = 250ms;
  config_.migration_budget = 5s;
  config_.close_linger = config_.migration_budget;
  // Half the runs start in prime, a quarter each in race and bond; some switch modes at random.
  const std::uint64_t mode = rng_.between(0, 3);
  config_.mode = mode == 2 ? core::Mode::race : mode == 3 ? core::Mode::bond : core::Mode::prime;
  mode_switch_chance_ = rng_.chance(0.4) ? 0.0 : rng_.between(2, 30) / 100.0;

  routes_.resize(rng_.between(2, 4));
  for (auto& r : routes_)
    r.profile = random_profile();

  for (int s = 0; s < 2; ++s) {
    App& app = apps_[s];
    app.key = rng_.next();
    const std::uint64_t shape = rng_.between(0, 9);
    app.total = shape == 0   ? 0
                : shape <= 2 ? rng_.between(1, 2'000)
                : shape <= 7 ? rng_.between(2'000, 256 * 1024)
                             : rng_.between(256 * 1024, 2 * 1024 * 1024);
  }
  if (packet_) {
    // Messages of ~600 bytes on average: the same volumes, counted in messages.
    for (App& app : apps_)
      app.total /= 400;
    config_.packet = packet_;
    config_.accept_packet_flows = true;
  }
  duplicate_chance_ = rng_.chance(0.5) ? 0.0 : rng_.between(1, 50) / 1000.0;
  dial_refuse_chance_ = rng_.chance(0.5) ? 0.0 : rng_.between(1, 30) / 100.0;
  fault_gap_max_ = rng_.millis(30, 600);
  short_dark_planned_ = rng_.chance(0.15);
  long_dark_ = rng_.chance(0.05);
  if (long_dark_) apps_[kClient].endless = apps_[kServer].endless = rng_.chance(0.5);
  // A third of the runs fault the handshake too. Those faults end within 1.2 s, so even after
  // a dial or handshake timeout (1 s each) and a backoff the client opens well within its 5 s
  // budget (it counts from make_client while opening).
  if (rng_.chance(0.33)) {
    handshake_faults_until_ = start_ + rng_.millis(50, 1200);
    handshake_gap_max_ = rng_.millis(5, 150);
  }
  // Some runs lose the first OPEN_ACK with its path once the OPEN reached the server.
  const std::uint64_t lose = rng_.between(0, 19);
  lose_open_ack_ = lose == 0   ? LoseOpenAck::reset
                   : lose == 1 ? LoseOpenAck::blackhole
                   : lose == 2 ? LoseOpenAck::delay
                               : LoseOpenAck::no;
  stranger_chance_ = rng_.chance(0.8) ? 0.0 : rng_.between(1, 5) / 100.0;
  if (transports_ != Transports::reliable) {
    for (auto& r : routes_)
      r.datagram = random_datagram_profile();
  }
  // Not drawn from rng_: runs without MTU probing stay exactly what they were.
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    static constexpr std::array<std::size_t, 3> kMtus{1500, 1400, 1300};
    route_mtu_.push_back(mtu_probing_ ? kMtus[mix64(seed_ ^ (i << 32)) % kMtus.size()] : 1500);
    routes_[i].datagram.mtu = route_mtu_.back();
  }
}

DatagramProfile Simulation::random_datagram_profile() {
  DatagramProfile d;
  for (int s = 0; s < 2; ++s) {
    d.loss[s] = rng_.chance(0.3) ? 0.0 : rng_.between(1, 30) / 1000.0;  // up to 3 %
    d.duplicate[s] = rng_.chance(0.7) ? 0.0 : rng_.between(1, 20) / 1000.0;
  }
  return d;
}

core::PathOptions Simulation::path_options() {
  core::PathOptions o;
  if (transports_ == Transports::datagram || (transports_ == Transports::mixed && rng_.chance(0.5)))
    o.transport = core::TransportKind::datagram;
  if (mtu_probing_) o.max_datagram_size = kMaxProbedDatagram;
  return o;
}

PathId Simulation::add_client_path(int route) {
  const core::PathOptions options = path_options();
  const PathId id = client_->add_path(now_, options);
  if (id != core::kNoPath) {
    client_routes_[id] = route;
    client_kinds_[id] = options.transport;
  }
  return id;
}

// ---------------------------------------------------------------------------------------------
// Event queue.

void Simulation::at(Time when, std::function<void()> fn) {
  queue_.push_back(Scheduled{std::max(when, now_), next_seq_++, std::move(fn)});
  std::push_heap(queue_.begin(), queue_.end(), Later{});
}

std::optional<Time> Simulation::next_time() const {
  std::optional<Time> t;
  auto consider = [&](std::optional<Time> x) {
    if (x && (!t || *x < *t)) t = x;
  };
  if (!queue_.empty()) consider(queue_.front().at);
  if (client_) consider(client_->next_deadline());
  if (server_) consider(server_->next_deadline());
  if (endpoint_) consider(endpoint_->next_deadline());
  return t;
}

void Simulation::run_due() {
  while (!queue_.empty() && queue_.front().at <= now_ && !failed_) {
    std::pop_heap(queue_.begin(), queue_.end(), Later{});
    Scheduled item = std::move(queue_.back());
    queue_.pop_back();
    item.run();
  }
}

// ---------------------------------------------------------------------------------------------
// Network.

Connection* Simulation::connection(std::uint64_t id) {
  auto it = connections_.find(id);
  return it == connections_.end() ? nullptr : &it->second;
}

Connection* Simulation::carrier_of(Side s, PathId path) {
  auto it = carriers_[s].find(path);
  return it == carriers_[s].end() ? nullptr : connection(it->second);
}

void Simulation::dial(PathId path) {
  ++dials_;
  if (Connection* old = carrier_of(kClient, path)) {
    carriers_[kClient].erase(path);
    close_end(*old, kClient);
  }
  const int route_index = client_routes_.at(path);
  const Route& route = routes_[route_index];
  Connection& c = connections_[next_connection_];
  c.id = next_connection_++;
  c.route = route_index;
  c.path = path;
  c.dialed_at = now_;
  c.blackholed = route.blackholed;
  c.datagram = client_kinds_[path] == core::TransportKind::datagram;
  carriers_[kClient][path] = c.id;
  const Duration rtt = route.profile.latency[kClient] + route.profile.latency[kServer];
  const bool refused = route.refusing || rng_.chance(dial_refuse_chance_);
  trace("dial path ", path, " route ", route_index, " conn ", c.id,
        refused        ? " (will be refused)"
        : c.blackholed ? " (unanswered)"
                       : "");
  const std::uint64_t id = c.id;
  if (c.datagram) {
    // A UDP socket is ready at once; a dark route only loses what it sends.
    at(now_, [this, id] { dial_result(id, false); });
    return;
  }
  at(now_ + (c.blackholed ? kConnectTimeout : rtt),
     [this, id, refused] { dial_result(id, refused); });
}

void Simulation::dial_result(std::uint64_t conn_id, bool refused) {
  Connection* c = connection(conn_id);
  if (c == nullptr || !c->dialing || !c->open[kClient] || carrier_of(kClient, c->path) != c) return;
  if (c->blackholed && !c->datagram && now_ < c->dialed_at + kConnectTimeout) {
    // The route went dark while the SYN was out: the dial now times out.
    const std::uint64_t id = c->id;
    at(c->dialed_at + kConnectTimeout, [this, id, refused] { dial_result(id, refused); });
    return;
  }
  c->dialing = false;
  if (!c->datagram && (refused || c->blackholed)) {
    trace("dial of path ", c->path, " conn ", c->id, " failed");
    c->open = {false, false};
    carriers_[kClient].erase(c->path);
    client_->on_dial_failed(c->path, now_);
    return;
  }
  trace("conn ", c->id, " connected for path ", c->path);
  listener_accepts(*c);
  client_->on_path_connected(c->path, now_);
}

bool Simulation::transmit_all() {
  bool progress = false;
  for (Side s : {kClient, kServer}) {
    if (!flow(s)) continue;
    std::vector<std::uint64_t> ids;
    for (const auto& [path, id] : carriers_[s])
      ids.push_back(id);
    for (std::uint64_t id : ids) {
      if (Connection* c = connection(id)) progress |= transmit(*c, s);
    }
  }
  return progress;
}

bool Simulation::transmit(Connection& c, Side from) {
  Flow& f = *flow(from);
  bool progress = false;
  wire::TransmitBatch out;
  for (int guard = 0; guard < 10'000; ++guard) {
    const PathId id = id_on(c, from);
    if (c.dialing || !c.open[from] || carrier_of(from, id) != &c) return progress;
    if (!f.wants_transmit(id)) return progress;
    auto& dir = c.direction[from];
    const Route& route = routes_[c.route];
    const Duration slack = std::chrono::nanoseconds(kUnsentLowWater * 1'000'000'000ull /
                                                    route.profile.bytes_per_second);
    if (dir.busy_until > now_ + slack) {
      if (!dir.wake_scheduled) {
        dir.wake_scheduled = true;
        const std::uint64_t id = c.id;
        at(dir.busy_until - slack, [this, id, from] {
          if (Connection* cc = connection(id)) cc->direction[from].wake_scheduled = false;
        });
      }
      return progress;
    }
    out.reset(kPollBytes);
    if (!f.poll_transmit(id, now_, out)) {
      if (c.datagram) return progress;  // paced: the flow's next deadline is its send time
      fail(std::string(name(from)) + ": wants_transmit(" + std::to_string(id) +
           ") was true but poll_transmit produced nothing");
      return progress;
    }
    progress = true;
    if (c.datagram) {
      for (const auto& packet : out.packets()) {
        std::vector<Byte> bytes;
        for (const auto& frame : out.frames_of(packet)) {
          bytes.insert(bytes.end(), frame.header_bytes().begin(), frame.header_bytes().end());
          bytes.insert(bytes.end(), frame.payload.bytes().begin(), frame.payload.bytes().end());
        }
        if (bytes.size() > packet.max_bytes) {
          fail(std::string(name(from)) + " packed " + std::to_string(bytes.size()) +
               " bytes into a packet of at most " + std::to_string(packet.max_bytes));
          return progress;
        }
        send_packet(c, from, packet.number, std::move(bytes));
      }
      continue;
    }
    std::vector<Byte> bytes;
    std::vector<std::pair<std::size_t, std::size_t>> data_frames;  // (start, size) in bytes
    // A byte pipe delivers as it serialises, not a whole batch at its end: frames leave in
    // segments of about kSegmentBytes, each arriving once its last byte has crossed.
    const auto send_segment = [&] {
      if (bytes.empty()) return;
      if (!data_frames.empty() && rng_.chance(duplicate_chance_))
        maybe_duplicate(c, from, bytes, data_frames);
      send_bytes(c, from, std::move(bytes));
      bytes.clear();
      data_frames.clear();
    };
    for (const auto& frame : out.frames()) {
      if (from == kServer && !first_open_ack_ && frame.payload.empty()) {
        wire::Frame decoded;
        if (wire::decode(frame.header_bytes(), decoded).error == wire::DecodeError::none) {
          if (const auto* ack = std::get_if<wire::OpenAck>(&decoded.body))
            note_open_ack(*ack, "the server flow's OPEN_ACK");
        }
      }
      if (!frame.payload.empty()) data_frames.emplace_back(bytes.size(), frame.size());
      bytes.insert(bytes.end(), frame.header_bytes().begin(), frame.header_bytes().end());
      bytes.insert(bytes.end(), frame.payload.bytes().begin(), frame.payload.bytes().end());
      if (bytes.size() >= kSegmentBytes) send_segment();
    }
    send_segment();
  }
  fail(std::string(name(from)) + ": transmit loop on path " + std::to_string(c.path) +
       " did not end");
  return progress;
}

void Simulation::send_bytes(Connection& c, Side from, std::vector<Byte> bytes) {
  auto& dir = c.direction[from];
  dir.sent_any = true;
  const RouteProfile& p = routes_[c.route].profile;
  const Time tx_start = std::max(now_, dir.busy_until);
  dir.busy_until =
      tx_start + std::chrono::nanoseconds(bytes.size() * 1'000'000'000ull / p.bytes_per_second);
  const Duration jitter =
      p.jitter[from] > Duration::zero()
          ? std::chrono::nanoseconds(rng_.between(
                0, static_cast<std::uint64_t>(std::chrono::nanoseconds(p.jitter[from]).count())))
          : Duration::zero();
  dir.last_arrival = std::max(dir.last_arrival, dir.busy_until + p.latency[from] + jitter);
  const std::uint64_t id = c.id;
  const Side to = other(from);
  at(dir.last_arrival, [this, id, to, bytes = std::move(bytes)] { deliver(id, to, bytes); });
}

// One datagram: it leaves at the route's rate, then may be dropped (loss, a dark direction, the
// MTU), duplicated, and arrives after the latency and a jitter of its own (so packets reorder).
void Simulation::send_packet(Connection& c, Side from, std::uint64_t number,
                             std::vector<Byte> bytes) {
  auto& dir = c.direction[from];
  dir.sent_any = true;
  const Route& route = routes_[c.route];
  const RouteProfile& p = route.profile;
  const std::size_t size = bytes.size() + kDatagramOverhead;
  const Time tx_start = std::max(now_, dir.busy_until);
  dir.busy_until =
      tx_start + std::chrono::nanoseconds(size * 1'000'000'000ull / p.bytes_per_second);
  if (size > route.datagram.mtu || route.dark[from] || rng_.chance(route.datagram.loss[from])) {
    ++datagrams_dropped_;
    return;
  }
  largest_datagram_ = std::max(largest_datagram_, size);
  const int copies = rng_.chance(route.datagram.duplicate[from]) ? 2 : 1;
  const std::uint64_t id = c.id;
  const Side to = other(from);
  for (int i = 0; i < copies; ++i) {
    const Duration jitter =
        p.jitter[from] > Duration::zero()
            ? std::chrono::nanoseconds(rng_.between(
                  0, static_cast<std::uint64_t>(std::chrono::nanoseconds(p.jitter[from]).count())))
            : Duration::zero();
    if (i > 0) ++duplicates_;
    at(dir.busy_until + p.latency[from] + jitter,
       [this, id, to, number, bytes] { deliver_packet(id, to, number, bytes); });
  }
}

void Simulation::deliver_packet(std::uint64_t conn_id, Side to, std::uint64_t number,
                                const std::vector<Byte>& bytes) {
  Connection* c = connection(conn_id);
  if (c == nullptr || !c->open[to]) return;
  if (c->blackholed) {
    ++datagrams_dropped_;  // the network lost it (an unreliable message in it may be lost)
    return;
  }
  std::uint64_t& highest = highest_delivered_[{conn_id, to}];
  if (number < highest) ++datagrams_reordered_;
  highest = std::max(highest, number);
  const wire::Slice backing = wire::Slice::copy_of(bytes);
  std::vector<wire::Frame> frames;
  for (std::size_t offset = 0; offset < bytes.size();) {
    wire::Frame frame;
    const auto r = wire::decode(backing.bytes().subspan(offset), frame);
    if (r.error != wire::DecodeError::none)
      return fail(std::string("decoding a packet ") + name(other(to)) +
                  " encoded failed: " + std::string(wire::to_string(r.error)));
    offset += r.consumed;
    frames.push_back(std::move(frame));
  }
  if (frames.empty()) return fail(std::string(name(other(to))) + " sent an empty packet");
  if (to == kServer && !c->server_attached) {
    // A handshake packet: its one frame goes to the listener (its number to nobody).
    if (frames.size() != 1) return fail("a handshake packet with more than its one frame");
    return accept(*c, frames.front());
  }
  Flow* f = flow(to);
  if (f == nullptr || carrier_of(to, id_on(*c, to)) != c) return;
  if (to == kServer) server_heard_ = true;
  f->on_packet(id_on(*c, to), number, frames, backing, now_);
  if (to == kServer && std::holds_alternative<wire::Proof>(frames.front().body)) {
    // As the runtime does: a proven JOIN path takes its id (the flow carried the packet's
    // other frames over to it already).
    drain_events();
    c = connection(conn_id);
    if (c == nullptr) return;
    c->proven = f->path_state(c->server_path) == core::PathState::up;
  }
}

// A stale copy of one DATA frame shows up on another attached connection, as a replay after a
// migration would.
void Simulation::maybe_duplicate(
    const Connection& c, Side from, const std::vector<Byte>& bytes,
    const std::vector<std::pair<std::size_t, std::size_t>>& data_frames) {
  std::vector<std::uint64_t> targets;
  for (const auto& [path, id] : carriers_[from]) {
    const Connection* t = connection(id);
    if (t == nullptr || t->datagram || t->id == c.id || t->path == c.path || t->dialing ||
        !t->open[kClient] || !t->open[kServer] || !t->server_attached ||
        carrier_of(kServer, t->path) != t || !t->direction[from].sent_any || !t->proven)
      continue;  // nor ahead of the handshake answer or PROOF the core has yet to write on it
    if (flow(from)->path_state(t->path) != core::PathState::up) continue;
    targets.push_back(id);
  }
  if (targets.empty()) return;
  const auto& [start, size] = rng_.pick(data_frames);
  Connection& target = *connection(rng_.pick(targets));
  ++duplicates_;
  trace(name(from), " duplicate DATA from path ", c.path, " onto path ", target.path);
  send_bytes(target, from, std::vector<Byte>(bytes.begin() + start, bytes.begin() + start + size));
}

void Simulation::deliver(std::uint64_t conn_id, Side to, const std::vector<Byte>& bytes) {
  Connection* c = connection(conn_id);
  if (c == nullptr || c->blackholed || !c->open[to]) return;
  const wire::Slice backing = wire::Slice::copy_of(bytes);
  std::size_t offset = 0;
  while (offset < bytes.size() && !failed_) {
    wire::Frame frame;
    const auto r = wire::decode(backing.bytes().subspan(offset), frame);
    if (r.error != wire::DecodeError::none) {
      fail(std::string("decoding what ") + name(other(to)) +
           " encoded failed: " + std::string(wire::to_string(r.error)));
      return;
    }
    offset += r.consumed;
    if (!c->open[to]) return;  // the end was closed by what an earlier frame caused
    if (to == kClient && c->stranger != Connection::Stranger::none) {
      stranger_answer(*c, frame);
      continue;
    }
    if (to == kServer && !c->server_attached) {
      accept(*c, frame);
      continue;
    }
    Flow* f = flow(to);
    if (f == nullptr || carrier_of(to, id_on(*c, to)) != c) return;
    if (to == kServer) server_heard_ = true;
    f->on_frame(id_on(*c, to), frame, backing, now_);
    if (to == kServer && std::holds_alternative<wire::Proof>(frame.body)) {
      // As the runtime does: a proven JOIN path takes its id before the frames behind it.
      drain_events();
      c = connection(conn_id);
      if (c == nullptr) return;
      c->proven = f->path_state(c->server_path) == core::PathState::up;
    }
  }
}

// The listener (runtime::Listener's part, around the real core::Endpoint): it accepts every
// connection that connects, and the endpoint judges its first frame. The model has one client
// flow, so the endpoint must never refuse, drop or evict anything of the client's.
void Simulation::listener_accepts(Connection& c) {
  const core::ConnectionId id = endpoint_->on_connection(now_);
  c.half_open = id;
  half_open_[id] = c.id;
  run_endpoint_actions();
}

void Simulation::forget_half_open(Connection& c) {
  if (!c.half_open) return;
  endpoint_->on_connection_lost(*c.half_open, false);
  half_open_.erase(*c.half_open);
  c.half_open.reset();
}

void Simulation::accept(Connection& c, const wire::Frame& first) {
  if (!c.half_open)
    return fail("a first frame on conn " + std::to_string(c.id) +
                " that the listener no longer waits for");
  const core::ConnectionId id = *c.half_open;
  half_open_.erase(id);
  c.half_open.reset();
  core::PathOptions carrier;
  carrier.transport = c.datagram ? core::TransportKind::datagram : core::TransportKind::reliable;
  if (mtu_probing_) carrier.max_datagram_size = kMaxProbedDatagram;
  core::Admission admission = endpoint_->on_first_frame(id, first, now_, carrier);
  run_endpoint_actions();
  if (failed_) return;
  const bool honest = c.stranger == Connection::Stranger::none;
  switch (admission.kind) {
    case core::Admission::Kind::open:
    case core::Admission::Kind::repeated_open:
      return accept_open(c, std::get<wire::Open>(first.body), std::move(admission));
    case core::Admission::Kind::join:
      if (!honest) return fail("a stranger sent a JOIN");
      return accept_join(c, std::get<wire::Join>(first.body), admission);
    case core::Admission::Kind::refuse:
      if (honest && std::holds_alternative<wire::Join>(first.body) && server_ &&
          (server_->state() == FlowState::closed || server_->state() == FlowState::failed)) {
        return close_end(c, kServer);  // a JOIN racing the end of the flow
      }
      if (honest)
        return fail("the endpoint refused the client's first frame on conn " +
                    std::to_string(c.id));
      return answer_and_close(c, *admission.answer);
    case core::Admission::Kind::drop:
      return fail("the endpoint dropped a first frame on conn " + std::to_string(c.id));
  }
}

// An OPEN: a new flow, or one naming the flow we hold. A repeat of the creating OPEN gets the
// flow's first OPEN_ACK, any other OPEN a refusal; either way the connection is closed, never
// attached.
void Simulation::accept_open(Connection& c, const wire::Open& open, core::Admission admission) {
  const bool honest = c.stranger == Connection::Stranger::none;
  if (honest && open.path_id != c.path)
    return fail("the client's OPEN on path " + std::to_string(c.path) + " names path " +
                std::to_string(open.path_id));
  if (admission.kind == core::Admission::Kind::open) {
    if (server_ && honest && server_->state() == FlowState::failed && !server_->authenticated()) {
      // No PROOF came in time (its OPEN_ACK was lost): the listener forgot that flow, and the
      // client, still opening, opens another.
      trace("server flow abandoned unauthenticated; a new one from the OPEN on conn ", c.id);
      for (const auto& [path, id] : carriers_[kServer]) {
        if (Connection* old = connection(id)) close_end(*old, kServer);
      }
      carriers_[kServer].clear();
      server_.reset();
      first_open_.reset();
      first_open_ack_.reset();
      server_report_ = {0, 1, false};
      server_heard_ = false;
      ++abandoned_server_flows_;
    }
    if (server_) {
      // The endpoint has forgotten the flow (it ended) and opened a second one. Only a
      // stranger's replay may do that, or an OPEN the client sent on a path it then gave up
      // (removed while opening): bytes in flight cannot be recalled, and the listener cannot
      // tell them from a replay. That flow never sees a PROOF and ends unaccepted.
      if (honest && c.open[kClient])
        return fail(
            "an OPEN of the client reached the listener after its server flow ended: "
            "a second server flow for one client flow");
      ++late_open_flows_;
      endpoint_->on_flow_finished(admission.flow);  // a late flow, out of this model
      return close_end(c, kServer);
    }
    if (!honest) return fail("a stranger's OPEN came before the client's");
    server_ = std::move(admission.created);
    server_ref_ = admission.flow;
    first_open_ = open;
    c.server_attached = true;
    c.server_path = c.path;
    carriers_[kServer][c.path] = c.id;
    last_path_up_[kServer] = now_;
    trace("server created from OPEN on conn ", c.id, " path ", c.path);
    // The application accepts it once the client has proven the key (Event::authenticated).
    if (lose_open_ack_ != LoseOpenAck::no) lose_open_ack(c);
    lose_open_ack_ = LoseOpenAck::no;  // one fault; a later server flow's answer gets through
    return;
  }
  if (!server_ || admission.flow.serial != server_ref_.serial)
    return fail("the endpoint routed an OPEN to a flow it never created");
  if (honest) {
    wire::Open same_path = open;
    same_path.path_id = first_open_->path_id;
    if (!(same_path == *first_open_))
      return fail("the client's repeated OPEN differs from its first in more than path_id");
  }
  const std::optional<wire::OpenAck> ack = server_->open_ack_for_repeated_open(open, now_);
  const bool verbatim = c.stranger != Connection::Stranger::forged;
  if (ack.has_value() != verbatim)
    return fail(std::string("open_ack_for_repeated_open ") + (ack ? "answered" : "refused") +
                (verbatim ? " a repeat of the creating OPEN" : " a forged OPEN"));
  const wire::Frame answer = endpoint_->answer_repeated_open(ack);
  if (ack) {
    ++answered_repeats_;
    note_open_ack(*ack, "the listener's answer to a repeated OPEN");
    if (failed_) return;
    if (honest) ++repeated_opens_;
  }
  trace("listener: ",
        honest     ? "repeated"
        : verbatim ? "replayed"
                   : "forged",
        " OPEN on conn ", c.id, " path ", c.path, " -> ", ack ? "OPEN_ACK" : "refused", ", close");
  answer_and_close(c, answer);
}

void Simulation::accept_join(Connection& c, const wire::Join& join,
                             const core::Admission& admission) {
  if (!server_ || admission.flow.serial != server_ref_.serial)
    return fail("the endpoint routed a JOIN to a flow it never created");
  core::PathOptions carrier;
  carrier.transport = c.datagram ? core::TransportKind::datagram : core::TransportKind::reliable;
  if (mtu_probing_) carrier.max_datagram_size = kMaxProbedDatagram;
  const auto verdict =
      core::admit_join(*server_, join, endpoint_->limits().max_paths_per_flow, now_, carrier);
  if (endpoint_->on_join_result(admission.flow, verdict.status)) {
    if (server_->state() == FlowState::closed || server_->state() == FlowState::failed) {
      close_end(c, kServer);  // a JOIN racing the end of the flow
      return;
    }
    fail("server refused an honest JOIN on path " + std::to_string(c.path) + ": status " +
         std::to_string(static_cast<int>(verdict.status)));
    return;
  }
  trace("server: JOIN accepted on conn ", c.id, " path ", c.path, " as provisional path ",
        verdict.provisional);
  ++joins_verified_;
  server_heard_ = true;
  c.server_attached = true;
  c.server_path = verdict.provisional;
  carriers_[kServer][c.server_path] = c.id;
}

void Simulation::answer_and_close(Connection& c, const wire::Frame& answer) {
  std::vector<Byte> bytes(wire::encoded_size(answer));
  wire::encode(answer, bytes);
  if (c.datagram) {
    // A handshake packet of the listener's. No EOF follows on UDP: the client's path dies of
    // its PTOs, which is not a fault of its route.
    if (c.stranger == Connection::Stranger::none) timing_.path_faulted(c.path);
    send_packet(c, kServer, 0, std::move(bytes));
  } else {
    send_bytes(c, kServer, std::move(bytes));
  }
  close_end(c, kServer);
}

// What the endpoint decided: close a half-open connection (timed out or evicted), drop a flow.
void Simulation::run_endpoint_actions() {
  while (auto action = endpoint_->poll_action()) {
    if (action->kind == core::EndpointAction::Kind::drop_flow) {
      if (server_ && action->flow.serial == server_ref_.serial)
        return fail("the endpoint dropped the client's flow (abandoned or evicted)");
      continue;
    }
    auto it = half_open_.find(action->connection);
    if (it == half_open_.end()) continue;
    Connection* c = connection(it->second);
    half_open_.erase(it);
    if (c == nullptr) continue;
    c->half_open.reset();
    trace("listener closes conn ", c->id, ": no first frame in time");
    close_end(*c, kServer);
  }
}

// The runtime's Session reports its attached carriers and whether the client has spoken since
// its OPEN; so does the simulation.
void Simulation::report_server_flow() {
  if (!server_ || server_->state() == FlowState::closed || server_->state() == FlowState::failed)
    return;
  const std::size_t paths = carriers_[kServer].size();
  const bool authenticated = server_->authenticated();
  if (paths == server_report_.paths && server_heard_ == server_report_.heard &&
      authenticated == server_report_.authenticated)
    return;
  server_report_ = {server_report_.version + 1, paths, server_heard_, authenticated};
  endpoint_->on_flow_report(server_ref_, server_report_, now_);
}

// Graceful close of one end: the other end reads EOF after every byte already sent.
void Simulation::close_end(Connection& c, Side s) {
  if (!c.open[s]) return;
  c.open[s] = false;
  if (c.dialing) {
    c.open = {false, false};
    return;
  }
  if (c.datagram) return;  // no EOF on UDP: the other end's path dies of its PTOs
  auto& dir = c.direction[s];
  const RouteProfile& p = routes_[c.route].profile;
  dir.last_arrival = std::max(dir.last_arrival, std::max(now_, dir.busy_until) + p.latency[s]);
  const std::uint64_t id = c.id;
  const Side to = other(s);
  at(dir.last_arrival, [this, id, to] { eof_arrives(id, to); });
}

void Simulation::eof_arrives(std::uint64_t conn_id, Side to) {
  Connection* c = connection(conn_id);
  if (c == nullptr || c->blackholed || !c->open[to]) return;
  c->open[to] = false;
  if (to == kServer) forget_half_open(*c);
  // The listener closes what it never attached (it answered a repeated OPEN): not a death.
  if (to == kClient && !c->server_attached) timing_.path_faulted(c->path);
  const PathId id = id_on(*c, to);
  if (carrier_of(to, id) != c) return;
  carriers_[to].erase(id);
  trace(name(to), " sees EOF on conn ", c->id, " path ", c->path);
  if (flow(to)) flow(to)->on_path_down(id, core::DownCause::eof, now_);
}

void Simulation::reset(Connection& c) {
  trace("reset conn ", c.id, " path ", c.path);
  if (c.stranger == Connection::Stranger::none) timing_.path_faulted(c.path);
  for (Side s : {kClient, kServer}) {
    if (!c.open[s]) continue;
    c.open[s] = false;
    if (s == kServer) forget_half_open(c);
    const PathId id = id_on(c, s);
    if (carrier_of(s, id) != &c) continue;
    carriers_[s].erase(id);
    if (c.dialing) {
      c.dialing = false;
      client_->on_dial_failed(c.path, now_);
    } else if (flow(s)) {
      flow(s)->on_path_down(id, core::DownCause::reset, now_);
    }
  }
}

void Simulation::blackhole_route(int route) {
  timing_.route_faulted(route);
  routes_[route].blackholed = true;
  for (auto& [id, c] : connections_) {
    if (c.route == route) c.blackholed = true;
  }
}

// ---------------------------------------------------------------------------------------------
// Flow events: what the runtime does with them.

bool Simulation::drain_events() {
  bool progress = false;
  for (Side s : {kClient, kServer}) {
    if (!flow(s)) continue;
    while (auto e = flow(s)->poll_event()) {
      progress = true;
      on_event(s, *e);
      if (failed_) return progress;
    }
  }
  return progress;
}

void Simulation::on_event(Side s, const core::Event& e) {
  using Kind = core::Event::Kind;
  switch (e.kind) {
    case Kind::dial_path:
      if (s != kClient) return fail("the server asked to dial");
      dial(e.path);
      break;
    case Kind::close_path:
      trace(name(s), " closes path ", e.path, " (",
            core::to_string(flow(s)->stats(now_).last_down_cause), ")");
      if (Connection* c = carrier_of(s, e.path)) {
        carriers_[s].erase(e.path);
        close_end(*c, s);
      }
      break;
    case Kind::established:
      established_at_ = now_;
      trace("client established");
      break;
    case Kind::authenticated:
      trace("server authenticated the client");
      endpoint_->on_flow_accepted(server_ref_);
      start_app(kServer);  // the listener's accept() returns only now
      break;
    case Kind::authentication_failed:
      // An honest client's PROOF can only be lost with its path (or never sent, if its path
      // died first): the server gave up waiting.
      trace("server: no proof on path ", e.path);
      break;
    case Kind::path_joined:
      // As the runtime does: the older carrier of the path closes, the proven one takes over.
      trace("server: provisional path ", e.old_path, " proved itself as path ", e.path);
      if (Connection* old = carrier_of(kServer, e.path)) {
        carriers_[kServer].erase(e.path);
        close_end(*old, kServer);
      }
      if (Connection* c = carrier_of(kServer, e.old_path)) {
        carriers_[kServer].erase(e.old_path);
        c->server_path = e.path;
        carriers_[kServer][e.path] = c->id;
      }
      break;
    case Kind::migrated:
      trace(name(s), " migrated ", e.old_path, " -> ", e.path, " (", core::to_string(e.cause), ")");
      break;
    case Kind::readable:
      // Some readers react at once, the others only poll. (A server flow has no reader before
      // it is accepted.)
      if (!apps_[s].scratch.empty() && rng_.chance(0.5)) read_some(s);
      break;
    case Kind::writable:
      break;
    case Kind::mode_changed:
      trace(name(s), " mode changed by the peer to ", core::to_string(e.mode));
      break;
    case Kind::finished:
      apps_[s].finished_at = now_;
      if (s == kServer) endpoint_->on_flow_finished(server_ref_);
      trace(name(s), " finished: ", core::to_string(flow(s)->state()));
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Application.

Duration Simulation::app_pause() {
  if (rng_.chance(0.03)) return rng_.millis(50, 800);  // the application looks away
  return rng_.micros(0, 5'000);
}

void Simulation::start_app(Side s) {
  apps_[s].scratch.resize(512 * 1024);
  apps_[s].expected.resize(512 * 1024);
  at(now_ + app_pause(), [this, s] { writer_tick(s); });
  at(now_ + app_pause(), [this, s] { reader_tick(s); });
}

void Simulation::writer_tick(Side s) {
  Flow& f = *flow(s);
  App& app = apps_[s];
  if (app.write_closed || f.state() == FlowState::closed || f.state() == FlowState::failed) return;
  if (packet_) return send_messages(s);
  const std::uint64_t shape = rng_.between(0, 9);
  std::uint64_t size = shape <= 1   ? rng_.between(1, 16)
                       : shape <= 4 ? rng_.between(1, 4096)
                       : shape <= 8 ? rng_.between(1, 64 * 1024)
                                    : rng_.between(1, app.scratch.size());
  if (!app.endless) size = std::min(size, app.total - app.written);
  if (size > 0) {
    std::span<Byte> chunk(app.scratch.data(), size);
    fill_pattern(app.key, app.written, chunk);
    const std::size_t n = f.write(chunk, now_);
    app.written += n;
  }
  if (!app.endless && app.written == app.total) {
    trace(name(s), " app: close after ", app.written, " bytes");
    app.write_closed = true;
    f.close(now_);
    return;
  }
  at(now_ + app_pause(), [this, s] { writer_tick(s); });
}

// Packet mode: a burst of messages, as many as the flow takes.
void Simulation::send_messages(Side s) {
  Flow& f = *flow(s);
  App& app = apps_[s];
  std::uint64_t burst = rng_.between(1, 64);
  while (burst-- > 0 && (app.endless || app.written < app.total)) {
    const std::size_t size = message_size(app.key, app.written, packet_->max_message);
    std::span<Byte> m(app.scratch.data(), size);
    fill_message(app.key, app.written, m);
    const core::MessageSendResult r = f.send_message(m, now_);
    if (r == core::MessageSendResult::full) break;
    if (r != core::MessageSendResult::ok)
      return fail(std::string(name(s)) + " could not send message " + std::to_string(app.written));
    ++app.written;
  }
  if (!app.endless && app.written == app.total) {
    trace(name(s), " app: close after ", app.written, " messages");
    app.write_closed = true;
    f.close(now_);
    return;
  }
  at(now_ + app_pause(), [this, s] { writer_tick(s); });
}

// Packet mode: reads some messages and checks each: whole, intact, sent by the peer, not seen
// before, after the last one if ordered; at EOF all of them if reliable.
void Simulation::read_messages(Side s) {
  Flow& f = *flow(s);
  App& app = apps_[s];
  const App& peer = apps_[other(s)];
  if (app.saw_eof) return;
  std::uint64_t burst = rng_.between(1, 128);
  while (burst-- > 0) {
    // Sometimes a buffer too small: the message must stay queued for the next read.
    const std::size_t room = rng_.chance(0.05) ? rng_.between(0, 64) : app.scratch.size();
    const core::MessageReceiveResult r =
        f.receive_message(std::span<Byte>(app.scratch.data(), room), now_);
    if (r.status == core::MessageReceiveResult::Status::none) break;
    if (r.status == core::MessageReceiveResult::Status::buffer_too_small) {
      if (r.size <= room) return fail(std::string(name(s)) + " refused a message that fits");
      continue;
    }
    if (r.size < 8) return fail(std::string(name(s)) + " read a message cut short");
    std::uint64_t n = 0;
    for (int b = 0; b < 8; ++b)
      n |= static_cast<std::uint64_t>(app.scratch[b]) << (8 * b);
    if (n >= peer.written)
      return fail(std::string(name(s)) + " read message " + std::to_string(n) +
                  " the peer never sent");
    const std::size_t size = message_size(peer.key, n, packet_->max_message);
    std::span<Byte> want(app.expected.data(), size);
    fill_message(peer.key, n, want);
    if (r.size != size || !std::equal(want.begin(), want.end(), app.scratch.begin()))
      return fail(std::string(name(s)) + " read message " + std::to_string(n) +
                  " with wrong bytes or boundaries");
    if (app.seen.size() <= n) app.seen.resize(n + 1);
    if (app.seen[n])
      return fail(std::string(name(s)) + " read message " + std::to_string(n) + " twice");
    app.seen[n] = true;
    if (packet_->ordered && app.last_number && n < *app.last_number)
      return fail(std::string(name(s)) + " read message " + std::to_string(n) + " after " +
                  std::to_string(*app.last_number) + " in an ordered flow");
    app.last_number = n;
    ++app.received;
  }
  if (f.eof()) {
    if (!peer.write_closed || (packet_->reliable && app.received != peer.written))
      return fail(std::string(name(s)) + " saw EOF after " + std::to_string(app.received) +
                  " messages; the peer sent " + std::to_string(peer.written) +
                  (peer.write_closed ? " and closed" : " and did not close"));
    trace(name(s), " app: EOF after ", app.received, " messages");
    app.saw_eof = true;
  }
}

void Simulation::reader_tick(Side s) {
  read_some(s);
  const Flow& f = *flow(s);
  if (failed_ || apps_[s].saw_eof) return;
  if (f.state() == FlowState::failed && f.readable_bytes() == 0) return;
  // Readers are sometimes slow, so windows fill and back-pressure reaches the writer.
  const Duration pause = rng_.chance(0.05) ? rng_.millis(20, 400) : rng_.micros(0, 3'000);
  at(now_ + pause, [this, s] { reader_tick(s); });
}

// Reads a random amount and checks it against the peer's pattern; checks EOF semantics.
void Simulation::read_some(Side s) {
  if (packet_) return read_messages(s);
  Flow& f = *flow(s);
  App& app = apps_[s];
  const App& peer = apps_[other(s)];
  if (app.saw_eof) return;
  const std::size_t want =
      rng_.chance(0.3) ? rng_.between(1, 64) : rng_.between(1, app.scratch.size());
  const std::size_t n = f.read(std::span<Byte>(app.scratch.data(), want), now_);
  if (n > 0) {
    fill_pattern(peer.key, app.received, std::span<Byte>(app.expected.data(), n));
    if (!std::equal(app.scratch.begin(), app.scratch.begin() + n, app.expected.begin())) {
      const auto at_byte =
          std::mismatch(app.scratch.begin(), app.scratch.begin() + n, app.expected.begin()).first -
          app.scratch.begin();
      return fail(std::string(name(s)) + " read a wrong byte at stream offset " +
                  std::to_string(app.received + at_byte));
    }
    app.received += n;
    if (app.received > peer.written)
      return fail(std::string(name(s)) + " read more bytes than the peer wrote");
  }
  if (f.eof()) {
    if (!peer.write_closed || app.received != peer.written)
      return fail(std::string(name(s)) + " saw EOF after " + std::to_string(app.received) +
                  " bytes; the peer wrote " + std::to_string(peer.written) +
                  (peer.write_closed ? " and closed" : " and did not close"));
    trace(name(s), " app: EOF after ", app.received, " bytes");
    app.saw_eof = true;
  }
}

// ---------------------------------------------------------------------------------------------
// Faults and admin actions.

std::vector<PathId> Simulation::client_path_ids() const {
  std::vector<PathId> ids;
  for (const auto& [id, route] : client_routes_)
    ids.push_back(id);
  return ids;
}

// Route faults keep the no-path periods short: some other route that a client path uses must
// stay healthy meanwhile.
bool Simulation::other_route_healthy(int route) const {
  return std::any_of(client_routes_.begin(), client_routes_.end(), [&](const auto& kv) {
    const int r = kv.second;
    return r != route && !routes_[r].blackholed && !routes_[r].refusing;
  });
}

void Simulation::start_long_dark() {
  trace("FAULT all routes dark for good");
  ++faults_;
  long_dark_since_ = now_;
  for (int r = 0; r < static_cast<int>(routes_.size()); ++r)
    blackhole_route(r);
}

// Either end's application asks for a random mode, legal or not. An illegal switch must be
// refused and change nothing. The server only switches while both ends agree, as crossing
// announcements are settled in the client's favour (tested in flow_test).
void Simulation::switch_mode_at_random() {
  const bool agreed = server_ && server_->mode() == client_->mode();
  const Side side = agreed && rng_.chance(0.3) ? kServer : kClient;
  Flow& f = *flow(side);
  if (f.state() == FlowState::closed || f.state() == FlowState::failed) return;
  const core::Mode before = f.mode();
  const core::Mode target = static_cast<core::Mode>(rng_.between(1, 3));
  const bool legal = core::mode_switch_legal(before, target);
  const core::SetModeResult result = f.set_mode(target, now_);
  trace(name(side), " set_mode(", core::to_string(target), ") from ", core::to_string(before),
        " -> ", result == core::SetModeResult::ok ? "ok" : "illegal");
  if (legal != (result == core::SetModeResult::ok))
    return fail(std::string(name(side)) + " set_mode(" + std::string(core::to_string(target)) +
                ") from " + std::string(core::to_string(before)) + " returned the wrong result");
  if (f.mode() != (legal ? target : before))
    return fail(std::string(name(side)) + " is in the wrong mode after set_mode");
  ++(legal ? mode_switches_ : illegal_switches_);
  if (legal && before != target) {
    // A side that is done (both streams complete) has sent its last word; the peer may close
    // without hearing this MODE. Otherwise the announcement keeps the side open until the
    // peer confirmed it, so the ends must agree.
    const core::FlowStats st = f.stats(now_);
    const App& peer_app = apps_[other(side)];
    const Flow* peer = flow(other(side));
    // Packet mode counts the peer's messages, not its offsets.
    const std::uint64_t peer_written =
        packet_ ? (peer != nullptr ? peer->stats(now_).bytes_written : 0) : peer_app.written;
    const bool maybe_done = f.send_closed() && st.bytes_acked == st.bytes_written &&
                            peer_app.write_closed && st.bytes_delivered == peer_written;
    switched_late_ = maybe_done || peer == nullptr || peer->state() == FlowState::closed ||
                     peer->state() == FlowState::failed;
  }
}

// The allowance of a blackhole of the client's active path `path` (see timing_watch.hpp).
void Simulation::expect_failover(PathId path) {
  if (client_->state() != FlowState::established || client_->mode() != core::Mode::prime ||
      client_->active_path() != path || !server_)
    return;
  const core::FlowStats st = client_->stats(now_);
  const bool datagram = client_kinds_[path] == core::TransportKind::datagram;
  // A datagram path's deadline is 3 backed-off PTOs (1 + 2 + 4), counted from its oldest
  // unacknowledged packet or its last ACK, whichever is later: ACKs already on their way at
  // the fault may still arrive (the route's return latency and jitter, behind up to a window
  // at its rate), and the PTO at the fault is an estimate (the last samples may have queued
  // less than what is in flight), so another 7 PTOs are allowed on top.
  const auto rtt_sample = [&](const core::PathStats& p) {
    if (datagram) return 7 * p.pto;
    return p.srtt > Duration::zero() ? 2 * p.srtt + 8 * p.rttvar + config_.max_ack_delay
                                     : config_.handshake_timeout;
  };
  Duration deadline{};
  Duration slack{};
  for (const auto& p : st.paths) {
    if (p.id != path) continue;
    deadline = std::clamp(rtt_sample(p), config_.dead_floor,
                          std::max(config_.dead_floor, config_.dead_cap));
    const Connection* c = carrier_of(kClient, path);
    if (datagram && c != nullptr) {
      const RouteProfile& r = routes_[c->route].profile;
      const Duration drain = std::chrono::duration_cast<Duration>(
          std::chrono::duration<double>(static_cast<double>(p.congestion_window + kPollBytes) /
                                        static_cast<double>(r.bytes_per_second)));
      slack = 7 * p.pto + r.latency[kServer] + r.jitter[kServer] + drain;
    }
  }
  // Another up path corroborates in time if its route answers a PING within deadline/2: both
  // latencies and jitters, and what may be queued ahead of the PING and the PONG at its rate.
  // A path still joining (its JOIN sent) may come up before the verdict: from then the silent
  // path is no longer alone, so it dies only once the peer is heard on that path (it missed the
  // corroborating PINGs sent halfway) or after silent_peer_grace. When it comes up is not known
  // here, so it counts as another path that does not corroborate in time.
  bool others = false, timely = false;
  for (const auto& p : st.paths) {
    if (p.id == path) continue;
    if (p.state == core::PathState::handshaking) others = true;
    if (p.state != core::PathState::up) continue;
    others = true;
    const Connection* c = carrier_of(kClient, p.id);
    if (c == nullptr || c->blackholed || routes_[c->route].blackholed) continue;
    const RouteProfile& r = routes_[c->route].profile;
    const Duration queued = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(
        2.0 * (kUnsentLowWater + kPollBytes) / static_cast<double>(r.bytes_per_second)));
    const Duration round_trip = r.latency[0] + r.latency[1] + r.jitter[0] + r.jitter[1] + queued;
    timely = timely || round_trip <= deadline / 2;
  }
  const Duration late_corroboration =
      !others || timely ? Duration::zero()
                        : std::max(deadline, config_.silent_peer_grace) - deadline;
  timing_.active_blackholed(
      {path, now_, deadline, config_.ping_interval_active + 1ms + late_corroboration + slack});
}

void Simulation::fault_tick() {
  const bool finished =
      client_->state() == FlowState::closed || client_->state() == FlowState::failed;
  if (finished || long_dark_since_) return;
  at(now_ + rng_.micros(
                1'000,
                static_cast<std::uint64_t>(
                    std::chrono::duration_cast<std::chrono::microseconds>(fault_gap_max_).count())),
     [this] { fault_tick(); });
  if (unhealthy_until_ && now_ < *unhealthy_until_) return;
  timing_.interrupted();
  if (rng_.chance(mode_switch_chance_)) return switch_mode_at_random();
  if (rng_.chance(stranger_chance_)) return stranger_open();

  const int route = static_cast<int>(rng_.between(0, routes_.size() - 1));
  const std::vector<PathId> paths = client_path_ids();
  const PathId path = rng_.pick(paths);
  Connection* carrier = carrier_of(kClient, path);
  const std::uint64_t action = rng_.between(0, 99);
  ++faults_;
  if (long_dark_ && rng_.chance(0.05) && !apps_[kClient].write_closed &&
      !apps_[kServer].write_closed) {
    start_long_dark();
  } else if (short_dark_planned_ && action < 3 && client_->state() == FlowState::established) {
    short_dark_planned_ = false;
    const Duration length = rng_.millis(100, 1500);
    trace("FAULT all routes dark for ", seconds(length), "s");
    for (int r = 0; r < static_cast<int>(routes_.size()); ++r)
      blackhole_route(r);
    unhealthy_until_ = now_ + length;
    at(now_ + length, [this] {
      trace("all routes light again");
      for (auto& r : routes_)
        r.blackholed = false;
    });
  } else if (action < 15) {
    if (carrier && !carrier->blackholed) {
      trace("FAULT blackhole conn ", carrier->id, " of path ", path);
      carrier->blackholed = true;
      timing_.path_faulted(path);
      expect_failover(path);
    }
  } else if (action < 25) {
    if (!routes_[route].blackholed && other_route_healthy(route)) {
      const Duration length = rng_.millis(20, 800);
      trace("FAULT blackhole route ", route, " for ", seconds(length), "s");
      blackhole_route(route);
      at(now_ + length, [this, route] {
        if (!long_dark_since_) routes_[route].blackholed = false;
      });
    }
  } else if (action < 33) {
    if (!routes_[route].refusing && other_route_healthy(route)) {
      const Duration length = rng_.millis(20, 800);
      trace("FAULT kill route ", route, " for ", seconds(length), "s");
      routes_[route].refusing = true;
      timing_.route_faulted(route);
      for (auto& [id, c] : connections_) {
        if (c.route == route && (c.open[kClient] || c.open[kServer])) reset(c);
      }
      at(now_ + length, [this, route] { routes_[route].refusing = false; });
    }
  } else if (action < 43) {
    if (carrier && (carrier->open[kClient] || carrier->open[kServer])) reset(*carrier);
  } else if (action < 53) {
    trace("route ", route, " changes its latency/rate");
    routes_[route].profile = random_profile();
    timing_.route_faulted(route);
  } else if (action < 70) {
    ++explicit_migrations_;
    const bool ok = client_->migrate(path, now_);
    trace("client migrate(", path, ") -> ", ok);
  } else if (action < 75) {
    if (server_) {
      const bool ok = server_->migrate(path, now_);
      trace("server migrate(", path, ") -> ", ok);
    }
  } else if (action < 85) {
    if (paths.size() > 1 && client_->remove_path(path, now_)) {
      trace("client remove_path(", path, ")");
      timing_.path_faulted(path);
      client_routes_.erase(path);
      carriers_[kClient].erase(path);  // the close_path event was already queued
      if (carrier) close_end(*carrier, kClient);
    }
  } else if (action < 95) {
    if (paths.size() < 4) {
      // Register the route before the dial_path event is handled.
      const PathId id = add_client_path(route);
      if (id != core::kNoPath) trace("client add_path -> ", id, " on route ", route);
    }
  } else if (transports_ != Transports::reliable) {
    datagram_fault(route);
  } else {
    --faults_;
  }
}

// Faults only datagrams know: one direction of a route goes dark, its MTU drops below a full
// packet (full packets vanish, small ones pass), or its loss rates change.
void Simulation::datagram_fault(int route) {
  if (!other_route_healthy(route)) return;
  const Duration length = rng_.millis(20, 800);
  const std::uint64_t kind = rng_.between(0, 2);
  timing_.route_faulted(route);
  if (kind == 0) {
    const Side side = rng_.chance(0.5) ? kClient : kServer;
    trace("FAULT datagrams from the ", name(side), " on route ", route, " vanish for ",
          seconds(length), "s");
    routes_[route].dark[side] = true;
    at(now_ + length, [this, route, side] { routes_[route].dark[side] = false; });
  } else if (kind == 1) {
    trace("FAULT route ", route, " MTU drops to 1000 for ", seconds(length), "s");
    routes_[route].datagram.mtu = 1000;
    at(now_ + length, [this, route] { routes_[route].datagram.mtu = route_mtu_[route]; });
  } else {
    trace("route ", route, " changes its datagram loss");
    const std::size_t mtu = routes_[route].datagram.mtu;
    routes_[route].datagram = random_datagram_profile();
    routes_[route].datagram.mtu = mtu;
  }
}

// ---------------------------------------------------------------------------------------------
// Handshake faults: the client is still opening (OPEN unsent, in flight, or its OPEN_ACK on the
// way). Everything here ends by handshake_faults_until_, except a long dark.

void Simulation::handshake_fault_tick() {
  if (established_at_ || long_dark_since_ || now_ >= *handshake_faults_until_ ||
      client_->state() != FlowState::opening)
    return;
  at(now_ + rng_.micros(
                500, static_cast<std::uint64_t>(
                         std::chrono::duration_cast<std::chrono::microseconds>(handshake_gap_max_)
                             .count())),
     [this] { handshake_fault_tick(); });
  if (rng_.chance(stranger_chance_)) return stranger_open();
  const Time until = *handshake_faults_until_;
  const int route = static_cast<int>(rng_.between(0, routes_.size() - 1));
  const std::vector<PathId> paths = client_path_ids();
  const PathId path = rng_.pick(paths);
  Connection* carrier = carrier_of(kClient, path);
  const std::uint64_t action = rng_.between(0, 99);
  ++handshake_faults_;
  if (long_dark_ && rng_.chance(0.1)) {
    start_long_dark();  // dark for good while opening: handshake_failed after the budget
  } else if (action < 20) {
    if (carrier && !carrier->blackholed) {
      trace("HANDSHAKE FAULT blackhole conn ", carrier->id, " of path ", path,
            carrier->dialing ? " (dialing)" : "");
      carrier->blackholed = true;
      timing_.path_faulted(path);
    }
  } else if (action < 40) {
    if (carrier && (carrier->open[kClient] || carrier->open[kServer])) {
      trace("HANDSHAKE FAULT reset conn ", carrier->id, " of path ", path);
      reset(*carrier);
    }
  } else if (action < 65) {
    // Every route may be dark or dead at once here: it ends by `until`.
    route_fault_until(route, action >= 55, std::min(now_ + rng_.millis(20, 800), until));
  } else if (action < 80) {
    const Duration up = rng_.millis(100, 600), down = rng_.millis(100, 600);
    trace("HANDSHAKE FAULT route ", route, " delays ", seconds(up), "s/", seconds(down), "s");
    spike_route(route, up, down, std::min(now_ + rng_.millis(50, 800), until));
  } else if (action < 88) {
    if (paths.size() < 4) {
      const PathId id = add_client_path(route);
      if (id != core::kNoPath)
        trace("client add_path -> ", id, " on route ", route, " while opening");
    }
  } else if (action < 95) {
    // Perhaps the path carrying the OPEN: another path must carry it instead.
    if (paths.size() > 1 && client_->remove_path(path, now_)) {
      trace("client remove_path(", path, ") while opening");
      timing_.path_faulted(path);
      client_routes_.erase(path);
      carriers_[kClient].erase(path);
      if (carrier) close_end(*carrier, kClient);
    }
  } else {
    --handshake_faults_;
  }
}

void Simulation::route_fault_until(int route, bool kill, Time until) {
  if (kill) {
    if (routes_[route].refusing) return;
    trace("HANDSHAKE FAULT kill route ", route, " for ", seconds(until - now_), "s");
    routes_[route].refusing = true;
    timing_.route_faulted(route);
    for (auto& [id, c] : connections_) {
      if (c.route == route && (c.open[kClient] || c.open[kServer])) reset(c);
    }
    at(until, [this, route] { routes_[route].refusing = false; });
    return;
  }
  if (routes_[route].blackholed) return;
  trace("HANDSHAKE FAULT blackhole route ", route, " for ", seconds(until - now_), "s");
  blackhole_route(route);
  at(until, [this, route] {
    if (!long_dark_since_) routes_[route].blackholed = false;
  });
}

// Bytes sent on the route meanwhile take this long (each connection keeps its order); then the
// route's profile comes back.
void Simulation::spike_route(int route, Duration to_server, Duration to_client, Time until) {
  timing_.route_faulted(route);
  if (!unspiked_[route]) unspiked_[route] = routes_[route].profile;
  routes_[route].profile.latency[kClient] = to_server;
  routes_[route].profile.latency[kServer] = to_client;
  spiked_until_[route] = std::max(spiked_until_[route], until);
  at(spiked_until_[route], [this, route] {
    if (!unspiked_[route] || now_ < spiked_until_[route]) return;
    routes_[route].profile = *unspiked_[route];
    unspiked_[route].reset();
  });
}

// The OPEN has just created the server flow on `c`; its OPEN_ACK is lost with the path, so the
// client must send the OPEN again (on another path, or on this one re-dialed). A handshake
// fault: unreliable messages sent meanwhile on a path the listener answered and closed are lost.
void Simulation::lose_open_ack(Connection& c) {
  const std::uint64_t id = c.id;
  ++handshake_faults_;
  switch (lose_open_ack_) {
    case LoseOpenAck::reset:
      // Before the OPEN_ACK can arrive (it takes at least the route's latency).
      at(now_ + rng_.micros(0, static_cast<std::uint64_t>(
                                   std::chrono::duration_cast<std::chrono::microseconds>(
                                       routes_[c.route].profile.latency[kServer])
                                       .count())),
         [this, id] {
           Connection* cc = connection(id);
           if (cc == nullptr || !(cc->open[kClient] || cc->open[kServer])) return;
           trace("FAULT reset conn ", id, " with the OPEN_ACK on it");
           reset(*cc);
         });
      break;
    case LoseOpenAck::blackhole:
      trace("FAULT blackhole conn ", id, " with the OPEN_ACK on it");
      c.blackholed = true;
      timing_.path_faulted(c.path);
      break;
    case LoseOpenAck::delay: {
      // Longer than the client's handshake timeout: it gives up on the path first.
      const RouteProfile& p = routes_[c.route].profile;
      trace("FAULT the OPEN_ACK on conn ", id, " outlasts the handshake timeout");
      spike_route(c.route, p.latency[kClient], config_.handshake_timeout + rng_.millis(50, 400),
                  now_ + rng_.millis(1, 300));
      break;
    }
    case LoseOpenAck::no:
      break;
  }
}

// A stranger who saw the flow's OPEN sends it again from elsewhere, verbatim or changed. The
// listener must answer the verbatim one with the first OPEN_ACK and refuse the other; either
// way the flow must not notice.
void Simulation::stranger_open() {
  if (!first_open_ || !server_ || server_->state() == FlowState::closed ||
      server_->state() == FlowState::failed)
    return;
  const int route = static_cast<int>(rng_.between(0, routes_.size() - 1));
  if (routes_[route].blackholed || routes_[route].refusing) return;
  wire::Open open = *first_open_;
  open.path_id = rng_.between(1, 6);
  const bool forged = rng_.chance(0.5);
  if (forged) {
    switch (rng_.between(0, 3)) {
      case 0:
        open.key_share[rng_.between(0, open.key_share.size() - 1)] ^= 1;
        break;
      case 1:
        open.nonce[rng_.between(0, open.nonce.size() - 1)] ^= 0x80;
        break;
      case 2:
        open.window += rng_.between(1, 4096);
        break;
      default:
        open.mode =
            open.mode == wire::ModeCode::prime ? wire::ModeCode::bond : wire::ModeCode::prime;
        break;
    }
  }
  Connection& c = connections_[next_connection_];
  c.id = next_connection_++;
  c.route = route;
  c.path = static_cast<PathId>(open.path_id);
  c.dialed_at = now_;
  c.dialing = false;
  c.stranger = forged ? Connection::Stranger::forged : Connection::Stranger::replay;
  listener_accepts(c);
  ++stranger_opens_;
  trace("stranger ", forged ? "forges" : "replays", " the OPEN on conn ", c.id, " route ", route);
  const wire::Frame frame{0, open};
  std::vector<Byte> bytes(wire::encoded_size(frame));
  wire::encode(frame, bytes);
  send_bytes(c, kClient, std::move(bytes));
}

void Simulation::stranger_answer(const Connection& c, const wire::Frame& frame) {
  const auto* ack = std::get_if<wire::OpenAck>(&frame.body);
  if (ack == nullptr) return fail("a stranger got something other than an OPEN_ACK");
  if (c.stranger == Connection::Stranger::replay)
    return note_open_ack(*ack, "the answer to a replayed OPEN");
  if (ack->status != wire::Status::bad_request)
    return fail("a forged OPEN was not refused with bad_request");
}

// Every ok OPEN_ACK of the flow, on its first path or to a repeated OPEN, is the same one.
void Simulation::note_open_ack(const wire::OpenAck& ack, const char* where) {
  if (ack.status != wire::Status::ok) return fail(std::string(where) + " is not ok");
  if (!first_open_ack_) {
    first_open_ack_ = ack;
  } else if (!(ack == *first_open_ack_)) {
    fail(std::string(where) + " differs from the flow's first OPEN_ACK");
  }
}

// ---------------------------------------------------------------------------------------------
// Checks.

void Simulation::fail(const std::string& what) {
  if (failed_) return;
  failed_ = true;
  failure_ = what;
}

void Simulation::check_invariants() {
  for (Side s : {kClient, kServer}) {
    const Flow* f = flow(s);
    if (!f) continue;
    const core::FlowStats st = f->stats(now_);
    if (st.send_buffered > config_.send_buffer)
      return fail(std::string(name(s)) + " send buffer holds " + std::to_string(st.send_buffered) +
                  " bytes > cap " + std::to_string(config_.send_buffer));
    if (st.recv_buffered > config_.recv_window)
      return fail(std::string(name(s)) + " receive buffer holds " +
                  std::to_string(st.recv_buffered) + " bytes > window " +
                  std::to_string(config_.recv_window));
    if (st.protocol_errors != 0) return fail(std::string(name(s)) + " counted a protocol error");
    // An unauthenticated server flow ends after the handshake timeout; the listener forgets it.
    const bool abandoned = s == kServer ? !f->authenticated() : proof_lost();
    if (f->state() == FlowState::failed && !abandoned) {
      if (!long_dark_since_)
        return fail(std::string(name(s)) + " failed although a route was usable");
      // A client still opening counts its budget from make_client and fails the handshake.
      const core::FlowError allowed = s == kClient && !established_at_
                                          ? core::FlowError::handshake_failed
                                          : core::FlowError::migration_budget_exceeded;
      if (f->error() != allowed)
        return fail(std::string(name(s)) + " failed with error " +
                    std::to_string(static_cast<int>(f->error())) + ", not " +
                    std::to_string(static_cast<int>(allowed)));
      if (now_ - last_path_up_[s] < config_.migration_budget)
        return fail(std::string(name(s)) + " failed " +
                    std::to_string(seconds(now_ - last_path_up_[s])) +
                    "s after its last path went down, before the budget ran out");
    }
    if (std::any_of(st.paths.begin(), st.paths.end(),
                    [](const auto& p) { return p.state == core::PathState::up; }))
      last_path_up_[s] = now_;
  }
  if (const std::string broken =
          check_timing_ ? timing_.observe(*client_, server_.get(), client_routes_, now_) : "";
      !broken.empty())
    fail(broken);
}

bool Simulation::done() const {
  if (!client_) return false;
  if (!server_) return client_->state() == FlowState::failed;  // no OPEN ever got through

  auto finished = [](const Flow& f) {
    return f.state() == FlowState::closed || f.state() == FlowState::failed;
  };
  if (!finished(*client_) || !finished(*server_)) return false;
  if (client_->state() == FlowState::failed || server_->state() == FlowState::failed) return true;
  return apps_[kClient].saw_eof && apps_[kServer].saw_eof;
}

void Simulation::check_outcome() {
  if (proof_lost()) return;
  if (long_dark_since_) {
    for (Side s : {kClient, kServer}) {
      if (!flow(s)) continue;  // the dark came before any OPEN got through
      const bool opening = s == kClient ? !established_at_ : !flow(s)->authenticated();
      const core::FlowError allowed =
          opening ? core::FlowError::handshake_failed : core::FlowError::migration_budget_exceeded;
      if (flow(s)->state() != FlowState::failed || flow(s)->error() != allowed)
        return fail(std::string(name(s)) + " did not fail with " +
                    (allowed == core::FlowError::handshake_failed ? "handshake_failed"
                                                                  : "migration_budget_exceeded") +
                    " after the long dark period");
      if (apps_[s].saw_eof) return fail(std::string(name(s)) + " saw EOF in a failed flow");
      // Detection (a few RTT-variances, capped) plus the budget bounds the failure time.
      const Duration late = config_.migration_budget + config_.dead_cap + 2s;
      if (*apps_[s].finished_at - *long_dark_since_ > late)
        return fail(std::string(name(s)) + " failed late: " +
                    std::to_string(seconds(*apps_[s].finished_at - *long_dark_since_)) +
                    "s after the dark began");
    }
    return;
  }
  if (client_->mode() != server_->mode() && !switched_late_)
    return fail(std::string("the ends closed in different modes: client ") +
                std::string(core::to_string(client_->mode())) + ", server " +
                std::string(core::to_string(server_->mode())));
  for (Side s : {kClient, kServer}) {
    if (flow(s)->state() != FlowState::closed)
      return fail(std::string(name(s)) + " did not reach closed");
    // Unreliable messages may be lost where the network lost them or reordered them (a packet
    // that overtakes the PROOF it must follow is dropped and declared lost; ordered, a message
    // that arrives after its SKIP is too late for its place), never where it did neither.
    const bool may_lose = packet_ && !packet_->reliable &&
                          (datagrams_dropped_ > 0 || faults_ > 0 || handshake_faults_ > 0 ||
                           datagrams_reordered_ > 0);
    if (may_lose ? apps_[s].received > apps_[other(s)].total
                 : apps_[s].received != apps_[other(s)].total)
      return fail(std::string(name(s)) + " received " + std::to_string(apps_[s].received) + " of " +
                  std::to_string(apps_[other(s)].total) + (packet_ ? " messages" : " bytes"));
  }
}

// The endpoint counted what the listener saw: one flow (plus strangers' after it ended), each
// answered repeat, each accepted JOIN, and nothing refused, evicted or dropped.
void Simulation::check_endpoint_counters() {
  const core::EndpointStats e = endpoint_->stats();
  auto expect = [&](const char* what, std::uint64_t got, std::uint64_t want) {
    if (got != want && !failed_)
      fail(std::string("endpoint counted ") + std::to_string(got) + " " + what + ", expected " +
           std::to_string(want));
  };
  expect("flows opened", e.flows_opened,
         (server_ ? 1 : 0) + abandoned_server_flows_ + late_open_flows_);
  expect("duplicate OPENs", e.duplicate_opens, answered_repeats_);
  // The endpoint counts JOINs whose MAC verified (each then awaits its PROOF).
  expect("JOINs accepted", e.joins_accepted, joins_verified_);
  expect("evicted or dropped flows", e.evicted_flows + e.dropped_abandoned, 0);
  expect("capacity refusals",
         e.rejected_capacity + e.rejected_accept_queue + e.rejected_paths_per_flow +
             e.evicted_half_open,
         0);
}

std::string Simulation::describe() const {
  std::ostringstream out;
  out << "  at t=" << seconds(now_ - start_) << "s, step " << steps_ << "\n";
  for (Side s : {kClient, kServer}) {
    const Flow* f = flow(s);
    const App& app = apps_[s];
    out << "  " << name(s) << ": ";
    if (!f) {
      out << "(no flow)\n";
      continue;
    }
    const core::FlowStats st = f->stats(now_);
    out << "state=" << core::to_string(f->state()) << " mode=" << core::to_string(f->mode())
        << " error=" << static_cast<int>(f->error()) << " active=" << f->active_path()
        << " written=" << st.bytes_written << " acked=" << st.bytes_acked
        << " delivered=" << st.bytes_delivered << " send_buffered=" << st.send_buffered
        << " recv_buffered=" << st.recv_buffered << " send_closed=" << f->send_closed()
        << " eof=" << f->eof() << " migrations=" << st.migrations
        << " rtx=" << st.retransmitted_bytes << " dups=" << st.recv_dups
        << "\n    app: total=" << app.total << (app.endless ? "(endless)" : "")
        << " written=" << app.written << " closed=" << app.write_closed << " read=" << app.received
        << " eof=" << app.saw_eof << "\n";
    for (const auto& p : st.paths) {
      out << "    path " << p.id << ": " << core::to_string(p.state) << (p.active ? " active" : "")
          << " srtt=" << seconds(p.srtt) * 1e3 << "ms heard " << seconds(p.last_heard_age) * 1e3
          << "ms ago, frames " << p.frames_sent << "/" << p.frames_received << "\n";
    }
  }
  out << "  routes:";
  for (const auto& r : routes_)
    out << " [" << (r.blackholed ? "blackholed " : "") << (r.refusing ? "refusing " : "")
        << seconds(r.profile.latency[0]) * 1e3 << "/" << seconds(r.profile.latency[1]) * 1e3
        << "ms " << r.profile.bytes_per_second / 1'000'000 << "MB/s]";
  out << "\n";
  return out.str();
}

RunResult Simulation::run() {
  choose_scenario();
  trace("seed ", seed_, ": ", routes_.size(), " routes, client writes ", apps_[kClient].total,
        ", server writes ", apps_[kServer].total, long_dark_ ? ", long dark" : "");
  // The listener's defaults, but an abandoned flow outlives the client's budget here: the
  // model has one client flow, which must never be dropped (tests/unit/endpoint_test.cpp
  // covers the drop itself).
  core::EndpointLimits limits;
  limits.abandoned_flow_timeout = config_.migration_budget + 1s;
  endpoint_.emplace(config_, limits);
  client_ = Flow::make_client(config_, now_);
  last_path_up_ = {now_, now_};  // the opening client's budget runs from make_client
  unspiked_.resize(routes_.size());
  spiked_until_.assign(routes_.size(), now_);
  if (handshake_faults_until_) at(now_ + rng_.millis(0, 20), [this] { handshake_fault_tick(); });
  const std::size_t initial_paths = rng_.between(1, routes_.size());
  for (std::size_t i = 0; i < initial_paths; ++i)
    add_client_path(static_cast<int>(i));
  start_app(kClient);

  int same_time_steps = 0;
  while (!failed_) {
    for (int round = 0; !failed_; ++round) {
      if (round > 10'000) fail("the runtime loop did not settle (events/transmits never end)");
      const bool events = drain_events();
      const bool sent = transmit_all();
      if (!events && !sent) break;
    }
    report_server_flow();
    if (failed_) break;
    if (!faults_started_ && server_ && client_->state() == FlowState::established) {
      faults_started_ = true;
      at(now_ + rng_.millis(0, 200), [this] { fault_tick(); });
    }
    check_invariants();
    if (failed_ || done()) break;
    const std::optional<Time> next = next_time();
    if (!next) {
      fail("stuck: nothing scheduled and no flow deadline");
      break;
    }
    if (*next - start_ > kMaxVirtualTime || ++steps_ > kMaxSteps) {
      fail("stuck: no end after " + std::to_string(seconds(*next - start_)) + "s virtual / " +
           std::to_string(steps_) + " steps");
      break;
    }
    if (*next <= now_) {
      if (++same_time_steps > kMaxSameTimeSteps) {
        fail("livelock: time does not advance (a deadline in the past is never cleared)");
        break;
      }
    } else {
      same_time_steps = 0;
      now_ = *next;
    }
    run_due();
    if (auto d = endpoint_->next_deadline(); d && *d <= now_ && !failed_) {
      endpoint_->on_timer(now_);
      run_endpoint_actions();
    }
    for (Side s : {kClient, kServer}) {
      const Flow* f = flow(s);
      if (f == nullptr || failed_) continue;
      if (auto d = f->next_deadline(); d && *d <= now_) flow(s)->on_timer(now_);
    }
  }
  if (!failed_) check_outcome();
  if (!failed_) check_endpoint_counters();

  RunResult result;
  result.ok = !failed_;
  result.outcome = long_dark_since_ ? Outcome::budget_exceeded : Outcome::closed;
  result.virtual_seconds = seconds(now_ - start_);
  result.handshake_faults = handshake_faults_until_.has_value();
  result.repeated_opens = repeated_opens_;
  result.stranger_opens = stranger_opens_;
  result.established_after = established_at_ ? seconds(*established_at_ - start_) : 0;
  result.failovers_checked = timing_.failovers_checked();
  result.largest_datagram = largest_datagram_;
  result.worst_failover_ratio = timing_.worst_ratio();
  result.datagrams_dropped = datagrams_dropped_;
  if (packet_) {
    for (Side s : {kClient, kServer}) {
      result.messages_sent += apps_[s].written;
      result.messages_lost +=
          apps_[s].written - std::min(apps_[s].written, apps_[other(s)].received);
    }
  }
  std::ostringstream summary;
  summary << "seed " << seed_ << ": " << routes_.size() << " routes, bytes c->s "
          << apps_[kClient].written << " s->c " << apps_[kServer].written << ", faults " << faults_
          << ", dials " << dials_ << ", duplicates " << duplicates_ << ", mode "
          << core::to_string(config_.mode) << " + " << mode_switches_ << " switches ("
          << illegal_switches_ << " illegal refused), migrations "
          << (client_ ? client_->migration_count() : 0) << ", handshake faults "
          << handshake_faults_ << ", repeated OPENs " << repeated_opens_ << ", stranger OPENs "
          << stranger_opens_ << ", failovers timed " << timing_.failovers_checked()
          << ", opened after " << (established_at_ ? seconds(*established_at_ - start_) : -1)
          << "s, " << (long_dark_since_ ? "long dark -> budget exceeded" : "closed") << ", "
          << result.virtual_seconds << "s virtual";
  result.summary = summary.str();
  if (failed_) result.failure = failure_ + "\n" + describe();
  return result;
}

}  // namespace

RunResult run_seed(std::uint64_t seed, const RunOptions& options) {
  Simulation sim(seed, options);
  return sim.run();
}

}  // namespace rendr::sim

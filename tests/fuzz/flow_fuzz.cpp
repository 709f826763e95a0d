// Stateful libFuzzer target for core::Flow: a client and a server flow joined by a network the
// fuzz input controls. The input is a script (flow_fuzz_script.hpp): frames are delivered,
// dropped, duplicated or reordered, hostile frames are injected on any connection, carriers go
// down, time advances, the applications write, read, close, migrate, switch modes, add and
// remove paths. After every step both flows are checked:
//   - no crash or UB (ASan/UBSan build);
//   - memory bounded: receive buffer <= window, send buffer <= its cap, reorder segments
//     <= window, events per step and paths per flow bounded;
//   - the delivered stream: reads never exceed what was delivered, delivery never goes back,
//     and until a hostile DATA frame was injected towards a side, every byte it reads is the
//     peer's (a pattern): drops, duplicates and reordering never corrupt the stream;
//   - state transitions legal: a finished flow stays finished (same state, same error), a
//     client never goes back to opening, and nothing is delivered to it before its handshake.
// Any violation aborts. Built with clang -fsanitize=fuzzer (target flow_fuzz) and, without
// libFuzzer, into flow_fuzz_replay (replay_main.cpp).
//
// The server side is a listener around the real core::Endpoint (small limits, so the fuzzer
// reaches them): the client's connections are announced to it when they connect, and every
// first frame on a connection the server flow has not attached (the client's OPEN and JOINs,
// and hostile OPENs, JOINs and garbage on any path) goes through Endpoint::on_first_frame.
// Flows a hostile OPEN creates are strangers: held, reported pathless at once, evicted or dropped
// by the endpoint. An empty injection towards the server is a stranger's connection that stays
// silent (a half-open flood). After every step the endpoint is checked too:
//   - gauges within their limits (half-open, live flows, unaccepted flows), live flows equal to
//     the flows held, counters never decrease;
//   - the client's OPEN is never refused or dropped, and its flow is never dropped or evicted
//     while it has a path.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "core/endpoint.hpp"
#include "core/flow.hpp"
#include "flow_fuzz_script.hpp"
#include "wire/frame.hpp"

namespace {

using namespace rendr;
using namespace std::chrono_literals;
using core::Flow;
using core::FlowState;
using core::PathId;
using core::Time;
using rendr::fuzz::Op;
using rendr::fuzz::Script;
using wire::Byte;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "flow_fuzz: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

enum Side { kClient = 0, kServer = 1 };

Byte pattern_byte(int side, std::uint64_t offset) {
  std::uint64_t x = (offset + 1) * 0x9e3779b97f4a7c15ull + static_cast<std::uint64_t>(side);
  x ^= x >> 29;
  return static_cast<Byte>(x * 0xbf58476d1ce4e5b9ull >> 56);
}

// One carrier per client path id: a reliable ordered pipe per direction (frames as bytes).
struct Connection {
  bool connected = false;
  bool server_attached = false;
  // The server flow's id for it: a provisional id after a JOIN, the path's once its PROOF came
  // (Event::path_joined).
  PathId server_path = core::kNoPath;
  std::array<std::deque<std::vector<Byte>>, 2> to;  // indexed by the receiving side
  // The endpoint's id while the server waits for its first frame (later frames on a connection
  // the server did not attach are ignored, as on a connection the listener closed).
  std::optional<core::ConnectionId> half_open;
};

// The endpoint's limits here: small, so that floods of a few frames reach them.
core::EndpointLimits fuzz_limits() {
  core::EndpointLimits l;
  l.max_half_open = 4;
  l.first_frame_timeout = 2s;
  l.max_flows = 2;
  l.max_unaccepted = 2;
  l.max_paths_per_flow = 4;
  l.abandoned_flow_timeout = 3s;
  return l;
}

struct App {
  std::uint64_t written = 0;
  std::uint64_t read = 0;
  std::uint64_t delivered_seen = 0;
  bool tainted = false;  // a hostile DATA frame was injected towards this side
  bool closed = false;
};

class World {
 public:
  explicit World(const core::FlowConfig& config)
      : config_(config), endpoint_(config_, fuzz_limits()) {
    client_ = Flow::make_client(config_, now_);
    client_->add_path(now_);
  }

  void run(Script& script) {
    for (int step = 0; step < fuzz::kMaxSteps && !script.done(); ++step) {
      apply(script.next(), script);
      settle_events();
      report_server_flow();
      check_invariants();
      check_endpoint();
    }
  }

 private:
  Flow* flow(int s) { return s == kClient ? client_.get() : server_.get(); }

  void apply(const Op& op, Script& script) {
    const int side = op.side;
    const PathId path = op.path;
    switch (op.kind) {
      case Op::Kind::pump:
        pump();
        break;
      case Op::Kind::deliver:
      case Op::Kind::drop:
      case Op::Kind::duplicate:
      case Op::Kind::reorder: {
        auto it = conns_.find(path);
        if (it == conns_.end() || it->second.to[side].empty()) break;
        auto& q = it->second.to[side];
        if (op.kind == Op::Kind::drop) {
          q.pop_front();
        } else if (op.kind == Op::Kind::duplicate) {
          q.push_back(q.front());
        } else if (op.kind == Op::Kind::reorder) {
          if (q.size() > 1) std::swap(q[0], q[1]);
        } else {
          std::vector<Byte> bytes = std::move(q.front());
          q.pop_front();
          deliver(side, path, bytes, false);
        }
        break;
      }
      case Op::Kind::inject: {
        std::vector<Byte> bytes = script.bytes(op.arg);
        if (bytes.empty() && side == kServer) {
          silent_.insert(endpoint_.on_connection(now_));  // a stranger connects, says nothing
          run_endpoint_actions();
          break;
        }
        deliver(side, path, bytes, true);
        break;
      }
      case Op::Kind::path_down:
        if (Flow* f = flow(side)) {
          f->on_path_down(path, static_cast<core::DownCause>(op.arg % 9), now_);
          if (side == kClient) conns_.erase(path);
        }
        break;
      case Op::Kind::advance:
        now_ += std::chrono::microseconds(op.arg) * 100;
        for (int s : {kClient, kServer}) {
          if (Flow* f = flow(s)) {
            const auto d = f->next_deadline();
            if (d && *d <= now_) f->on_timer(now_);
          }
        }
        if (const auto d = endpoint_.next_deadline(); d && *d <= now_) {
          endpoint_.on_timer(now_);
          run_endpoint_actions();
        }
        break;
      case Op::Kind::write:
        if (Flow* f = flow(side)) {
          std::vector<Byte> chunk(op.arg * 97 % 70'000 + 1);
          for (std::size_t i = 0; i < chunk.size(); ++i)
            chunk[i] = pattern_byte(side, apps_[side].written + i);
          apps_[side].written += f->write(chunk, now_);
        }
        break;
      case Op::Kind::read:
        read(side, op.arg * 131 % 100'000 + 1);
        break;
      case Op::Kind::close:
        if (Flow* f = flow(side)) {
          f->close(now_);
          apps_[side].closed = true;
        }
        break;
      case Op::Kind::abort:
        if (Flow* f = flow(side)) f->abort(now_);
        break;
      case Op::Kind::migrate:
        if (Flow* f = flow(side)) f->migrate(path, now_);
        break;
      case Op::Kind::add_path:
        if (client_->stats(now_).paths.size() < 6) client_->add_path(now_, op.arg % 4);
        break;
      case Op::Kind::remove_path:
        if (client_->remove_path(path, now_)) conns_.erase(path);
        break;
      case Op::Kind::set_mode:
        if (Flow* f = flow(side)) f->set_mode(static_cast<core::Mode>(op.arg % 3 + 1), now_);
        break;
      case Op::Kind::dial_fails:
      case Op::Kind::count:  // never decoded (kinds are taken modulo count)
        fail_next_dial_ = true;
        break;
    }
  }

  // Moves what each flow wants to send into the pipes (bounded).
  void pump() {
    for (auto& [id, c] : conns_) {
      if (!c.connected) continue;
      for (int s : {kClient, kServer}) {
        Flow* f = flow(s);
        if (f == nullptr || (s == kServer && !c.server_attached)) continue;
        wire::TransmitBatch out(96 * 1024);
        if (!f->poll_transmit(s == kServer ? c.server_path : id, now_, out)) continue;
        for (const auto& o : out.frames()) {
          std::vector<Byte> bytes(o.header_bytes().begin(), o.header_bytes().end());
          bytes.insert(bytes.end(), o.payload.bytes().begin(), o.payload.bytes().end());
          auto& q = c.to[1 - s];
          if (q.size() < 512) q.push_back(std::move(bytes));
        }
      }
    }
  }

  void deliver(int side, PathId path, const std::vector<Byte>& bytes, bool hostile) {
    wire::Slice backing = wire::Slice::copy_of(bytes);
    wire::Frame frame;
    Connection& c = conns_[path];
    if (wire::decode(backing.bytes(), frame).error != wire::DecodeError::none) {
      // Garbage first on a stranger's connection: the listener closes it.
      if (side == kServer && hostile && !c.server_attached) {
        endpoint_.on_connection_lost(endpoint_.on_connection(now_), true);
        run_endpoint_actions();
      }
      return;
    }
    if (hostile && std::holds_alternative<wire::Data>(frame.body)) apps_[side].tainted = true;
    if (side == kServer && !c.server_attached) return first_frame(path, c, frame, hostile);
    if (Flow* f = flow(side)) {
      f->on_frame(side == kServer ? c.server_path : path, frame, backing, now_);
      if (side == kServer) server_heard_ = true;
    }
  }

  // A frame on a connection the server flow has not attached: the first of its connection, as
  // a listener hands it to the endpoint. A hostile frame comes on a stranger's new connection,
  // which is closed after it (never attached).
  void first_frame(PathId path, Connection& c, const wire::Frame& frame, bool hostile) {
    core::ConnectionId id = 0;
    if (hostile) {
      id = endpoint_.on_connection(now_);
      run_endpoint_actions();
    } else {
      if (!c.half_open) return;  // closed by the listener, or not a first frame
      id = *c.half_open;
      c.half_open.reset();
    }
    core::Admission admission = endpoint_.on_first_frame(id, frame, now_);
    run_endpoint_actions();
    const auto* open = std::get_if<wire::Open>(&frame.body);
    const bool client_open = !hostile && open != nullptr && !server_;
    switch (admission.kind) {
      case core::Admission::Kind::open:
        if (client_open) {
          server_ = std::move(admission.created);
          server_ref_ = admission.flow;
          c.server_attached = open->path_id == path;
          c.server_path = path;
        } else {
          // A stranger's flow (or a second one for a client OPEN after the first ended): its
          // opener vanishes at once.
          endpoint_.on_flow_report(admission.flow, {1, 0, false}, now_);
          strangers_[admission.flow.serial] = std::move(admission.created);
        }
        break;
      case core::Admission::Kind::repeated_open: {
        Flow* target = flow_of(admission.flow);
        check(target != nullptr, "the endpoint routed an OPEN to a flow it never created");
        (void)endpoint_.answer_repeated_open(target->open_ack_for_repeated_open(*open, now_));
        break;
      }
      case core::Admission::Kind::join: {
        Flow* target = flow_of(admission.flow);
        check(target != nullptr, "the endpoint routed a JOIN to a flow it never created");
        const auto& join = std::get<wire::Join>(frame.body);
        const core::JoinVerdict verdict =
            core::admit_join(*target, join, endpoint_.limits().max_paths_per_flow, now_);
        const bool refused = endpoint_.on_join_result(admission.flow, verdict.status).has_value();
        check(refused == (verdict.status != wire::Status::ok), "JOIN verdict and answer differ");
        if (!refused && !hostile && target == server_.get() && join.path_id == path) {
          c.server_attached = true;
          c.server_path = verdict.provisional;
          server_heard_ = true;
        }
        break;
      }
      case core::Admission::Kind::refuse:
      case core::Admission::Kind::drop:
        // Strangers' flows are pathless, so one is always evictable.
        check(!client_open, "the endpoint refused or dropped the client's OPEN");
        break;
    }
    report_server_flow();
  }

  Flow* flow_of(const core::FlowRef& ref) {
    if (server_ && ref.serial == server_ref_.serial) return server_.get();
    auto it = strangers_.find(ref.serial);
    return it == strangers_.end() ? nullptr : it->second.get();
  }

  // What the endpoint decided: close a half-open connection, drop a flow.
  void run_endpoint_actions() {
    while (auto action = endpoint_.poll_action()) {
      if (action->kind == core::EndpointAction::Kind::drop_flow) {
        if (server_ && action->flow.serial == server_ref_.serial) {
          check(server_report_.paths == 0, "the endpoint dropped the client's flow with a path");
          server_->abort(now_);
          finish_server_flow();
        } else {
          check(strangers_.erase(action->flow.serial) == 1, "the endpoint dropped an unknown flow");
          endpoint_.on_flow_finished(action->flow);
        }
        continue;
      }
      if (silent_.erase(action->connection) > 0) continue;
      for (auto it = conns_.begin(); it != conns_.end(); ++it) {
        if (it->second.half_open != action->connection) continue;
        // The listener closed the client's waiting connection: the client sees it go down.
        const PathId path = it->first;
        conns_.erase(it);
        client_->on_path_down(path, core::DownCause::eof, now_);
        break;
      }
    }
  }

  void finish_server_flow() {
    if (server_finished_) return;
    server_finished_ = true;
    endpoint_.on_flow_finished(server_ref_);
  }

  // As the runtime's Session does: the server flow's attached carriers, and whether the client
  // has spoken since its OPEN.
  void report_server_flow() {
    if (!server_ || server_finished_) return;
    std::size_t paths = 0;
    for (const auto& [id, c] : conns_)
      paths += c.server_attached ? 1 : 0;
    const bool authenticated = server_->authenticated();
    if (paths == server_report_.paths && server_heard_ == server_report_.heard &&
        authenticated == server_report_.authenticated)
      return;
    server_report_ = {server_report_.version + 1, paths, server_heard_, authenticated};
    endpoint_.on_flow_report(server_ref_, server_report_, now_);
  }

  void read(int side, std::size_t want) {
    Flow* f = flow(side);
    if (f == nullptr) return;
    App& app = apps_[side];
    std::vector<Byte> buf(want);
    const std::size_t n = f->read(buf, now_);
    check(n <= want, "read returned more than asked");
    if (!app.tainted) {
      for (std::size_t i = 0; i < n; ++i)
        check(buf[i] == pattern_byte(1 - side, app.read + i),
              "read a byte the peer did not write (no hostile DATA was injected)");
      check(app.read + n <= apps_[1 - side].written, "read more than the peer wrote");
    }
    app.read += n;
  }

  void settle_events() {
    for (int round = 0; round < 64; ++round) {
      bool any = false;
      for (int s : {kClient, kServer}) {
        Flow* f = flow(s);
        if (f == nullptr) continue;
        int events = 0;
        while (auto e = f->poll_event()) {
          any = true;
          check(++events < 10'000, "event queue does not drain");
          if (e->kind == core::Event::Kind::dial_path && s == kClient) {
            if (fail_next_dial_) {
              fail_next_dial_ = false;
              client_->on_dial_failed(e->path, now_);
            } else {
              Connection& c = conns_[e->path];
              if (c.half_open) endpoint_.on_connection_lost(*c.half_open, false);
              c = Connection{};
              c.connected = true;
              c.half_open =
                  endpoint_.on_connection(now_);  // the listener waits for its first frame
              client_->on_path_connected(e->path, now_);
              run_endpoint_actions();
            }
          } else if (e->kind == core::Event::Kind::authenticated && s == kServer) {
            endpoint_.on_flow_accepted(server_ref_);
          } else if (e->kind == core::Event::Kind::finished && s == kServer) {
            finish_server_flow();
          } else if (e->kind == core::Event::Kind::path_joined && s == kServer) {
            // As the runtime does: the proven provisional path takes the path's id.
            for (auto& [id, c] : conns_) {
              if (c.server_attached && c.server_path == e->path) c.server_attached = false;
              if (c.server_attached && c.server_path == e->old_path) c.server_path = e->path;
            }
          } else if (e->kind == core::Event::Kind::close_path) {
            auto it = conns_.find(e->path);
            if (it != conns_.end() && s == kClient) conns_.erase(it);
          }
        }
      }
      if (!any) return;
    }
  }

  void check_invariants() {
    for (int s : {kClient, kServer}) {
      Flow* f = flow(s);
      if (f == nullptr) continue;
      const core::FlowStats st = f->stats(now_);
      App& app = apps_[s];
      check(st.send_buffered <= config_.send_buffer, "send buffer above its cap");
      check(st.recv_buffered <= config_.recv_window, "receive buffer above the window");
      check(st.recv_queue_hwm <= config_.recv_window, "reorder segments unbounded");
      check(st.paths.size() <= 16, "paths unbounded");
      check(st.bytes_delivered >= app.delivered_seen, "delivery went back");
      app.delivered_seen = st.bytes_delivered;
      check(app.read <= st.bytes_delivered, "read more than was delivered");
      check(f->readable_bytes() <= config_.recv_window, "readable bytes above the window");
      const FlowState state = f->state();
      if (finished_[s]) {
        check(state == *finished_[s], "a finished flow changed its state");
        check(f->error() == finished_error_[s], "a finished flow changed its error");
      } else if (state == FlowState::closed || state == FlowState::failed) {
        finished_[s] = state;
        finished_error_[s] = f->error();
      }
      if (s == kClient) {
        if (state != FlowState::opening) client_opened_ = true;
        check(!(client_opened_ && state == FlowState::opening), "client went back to opening");
        if (state == FlowState::opening) {
          check(st.bytes_delivered == 0 && f->readable_bytes() == 0,
                "client delivered DATA before its handshake completed");
        }
      }
    }
  }

  // Gauges within the limits, counters monotonic.
  void check_endpoint() {
    const core::EndpointStats e = endpoint_.stats();
    const core::EndpointLimits& l = endpoint_.limits();
    check(e.half_open <= l.max_half_open, "half-open connections above the limit");
    check(e.live_flows <= l.max_flows, "live flows above the limit");
    check(e.unaccepted_flows <= l.max_unaccepted, "unaccepted flows above the limit");
    check(strangers_.size() + (server_ && !server_finished_ ? 1 : 0) == e.live_flows,
          "the endpoint's live flows differ from the flows held");
    using C = std::uint64_t core::EndpointStats::*;
    for (C counter :
         {&core::EndpointStats::connections, &core::EndpointStats::flows_opened,
          &core::EndpointStats::joins_accepted, &core::EndpointStats::duplicate_opens,
          &core::EndpointStats::rejected_malformed, &core::EndpointStats::rejected_unknown_flow,
          &core::EndpointStats::rejected_bad_proof, &core::EndpointStats::rejected_replay,
          &core::EndpointStats::rejected_capacity, &core::EndpointStats::rejected_accept_queue,
          &core::EndpointStats::rejected_paths_per_flow, &core::EndpointStats::rejected_memory,
          &core::EndpointStats::rejected_timeout, &core::EndpointStats::evicted_half_open,
          &core::EndpointStats::evicted_flows, &core::EndpointStats::dropped_abandoned})
      check(e.*counter >= endpoint_stats_.*counter, "an endpoint counter decreased");
    endpoint_stats_ = e;
  }

  core::FlowConfig config_;
  core::Endpoint endpoint_;
  core::EndpointStats endpoint_stats_;
  core::FlowRef server_ref_;
  core::FlowReport server_report_{0, 1, false};  // the OPEN's connection is its first path
  bool server_heard_ = false;
  bool server_finished_ = false;
  std::map<std::uint64_t, std::unique_ptr<Flow>> strangers_;  // by FlowRef::serial
  std::set<core::ConnectionId> silent_;                       // strangers' half-open connections
  Time now_{std::chrono::seconds(1000)};
  std::unique_ptr<Flow> client_, server_;
  std::map<PathId, Connection> conns_;
  std::array<App, 2> apps_;
  std::array<std::optional<FlowState>, 2> finished_;
  std::array<core::FlowError, 2> finished_error_{};
  bool client_opened_ = false;
  bool fail_next_dial_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Script script(data, size);
  World world(script.config());
  world.run(script);
  return 0;
}

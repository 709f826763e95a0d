#include "runtime/session.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/system_executor.hpp>

#include "runtime/convert.hpp"
#include "runtime/engine_thread.hpp"
#include "runtime/flow_registry.hpp"
#include "runtime/keepalive.hpp"
#include "runtime/peer_endpoint.hpp"

namespace rendr::runtime {

namespace {

// Whether the client said anything beyond the PROOF that completes its handshake: a flow whose
// client proved the key and then fell silent without a path is abandoned (core::Endpoint).
bool speaks_beyond_handshake(std::span<const wire::Frame> frames) {
  return std::any_of(frames.begin(), frames.end(), [](const wire::Frame& f) {
    return !std::holds_alternative<wire::Proof>(f.body);
  });
}

core::Time now() {
  return core::Clock::now();
}

// Jumbo frames' 9000 bytes under an IPv6 (40) and UDP (8) header (IPv4's is 20); the route's
// MTU lowers it further (1452 or 1472 on a 1500-byte link: Flow::on_path_connected).
constexpr std::size_t kDefaultMaxDatagramSize = 8952;

// A udpflow path is a datagram path: the core numbers its packets and runs its loss recovery.
core::PathOptions path_options(const PathSpec& spec) {
  core::PathOptions options;
  options.weight = spec.weight;
  if (spec.transport == "udpflow") {
    options.transport = core::TransportKind::datagram;
    // Path-MTU probing from the safe 1200 bytes up to this ceiling (docs/design.md, "Path
    // MTU"): a probe the path cannot carry is lost, never fragmented (DF is set).
    options.max_datagram_size =
        spec.max_datagram_size != 0 ? spec.max_datagram_size : kDefaultMaxDatagramSize;
    if (spec.congestion) options.congestion = to_core(*spec.congestion);
  }
  return options;
}

core::PathOptions carrier_path_options(const carrier::Carrier& c) {
  core::PathOptions options;
  if (c.datagram()) {
    options.transport = core::TransportKind::datagram;
    options.max_packet_payload = c.max_packet_payload();
  }
  return options;
}

// After the flow has finished, carriers get this long to flush and close before they are
// aborted and the session is released.
constexpr std::chrono::seconds kFinishLinger{3};

// A timer that fires later than this was held up by a busy engine thread (see on_timer).
constexpr std::chrono::milliseconds kLateTimer{3};

// How often arm_timer may move a timer later (see there).
constexpr std::chrono::milliseconds kTimerPushInterval{1};

}  // namespace

// Work collected under the session mutex and carried out after it is released.
struct Session::Actions {
  std::vector<std::shared_ptr<carrier::Carrier>> kicks;
  std::vector<std::shared_ptr<carrier::Carrier>> closes;
  std::vector<std::shared_ptr<carrier::Carrier>> aborts;
  std::vector<std::pair<std::shared_ptr<carrier::Carrier>, std::weak_ptr<PathHandler>>> starts;
  std::vector<std::pair<std::shared_ptr<carrier::Carrier>, carrier::FlowKeyBytes>> keys;
  struct Dial {
    core::PathId path;
    std::uint64_t seq;
    PathSpec spec;
  };
  std::vector<Dial> dials;
  struct Done {
    detail::Completion completion;
    error_code ec;
    std::size_t n;
  };
  std::vector<Done> completions;
  std::vector<std::function<void()>> callbacks;
  std::vector<std::shared_ptr<void>> releases;  // references dropped outside the lock
  bool notify = false;
  // Not inside an application's initiating call (a carrier or timer handler): completions may
  // run their handlers right away where the handler's executor allows (Completion::dispatch).
  bool dispatch_completions = false;
};

// ---------------------------------------------------------------------------------------------
// PathHandler: forwards carrier callbacks to the session, if it still exists.

void PathHandler::on_frames(const std::vector<wire::Frame>& frames, const wire::Slice& backing) {
  if (auto s = session_.lock()) s->carrier_frames(carrier_, frames, backing);
}

void PathHandler::on_down(carrier::DownReason reason, error_code, wire::DecodeError) {
  if (auto s = session_.lock()) s->carrier_down(carrier_, reason);
}

void PathHandler::on_acknowledged() {
  if (auto s = session_.lock()) s->carrier_acknowledged(carrier_);
}

bool PathHandler::pull(wire::TransmitBatch& out) {
  auto s = session_.lock();
  return s && s->carrier_pull(carrier_, out);
}

void PathHandler::on_packets(std::span<const carrier::ReceivedPacket> packets) {
  if (auto s = session_.lock()) s->carrier_packets(carrier_, packets);
}

bool PathHandler::pull_datagrams(wire::TransmitBatch& out,
                                 std::optional<asio::ip::udp::endpoint>& to) {
  auto s = session_.lock();
  return s && s->carrier_pull_datagrams(carrier_, out, to);
}

bool PathHandler::pull_probe(wire::TransmitBatch& out, std::optional<asio::ip::udp::endpoint>& to) {
  auto s = session_.lock();
  return s && s->carrier_pull_probe(carrier_, out, to);
}

void PathHandler::on_local_address_moved() {
  if (auto s = session_.lock()) s->carrier_local_address_moved(carrier_);
}

void PathHandler::on_datagram_frames(const std::vector<wire::Frame>& frames,
                                     const wire::Slice& backing) {
  if (auto s = session_.lock()) s->carrier_datagram_frames(carrier_, frames, backing);
}

void PathHandler::on_datagram_fates(std::span<const std::uint64_t> acked,
                                    std::span<const std::uint64_t> lost) {
  if (auto s = session_.lock()) s->carrier_datagram_fates(carrier_, acked, lost);
}

// ---------------------------------------------------------------------------------------------
// Construction.

Session::Session(Private, asio::any_io_executor ex, std::unique_ptr<core::Flow> flow)
    : ex_(std::move(ex)),
      registry_(FlowRegistry::of(ex_)),
      flow_(std::move(flow)),
      role_(flow_->role()),
      id_(flow_->flow_id()),
      packet_(flow_->packet_options().has_value()),
      timer_(std::in_place, ex_),
      linger_(std::in_place, ex_) {}

Session::~Session() {
  if (!engine_gone_) KeepAlive::of(ex_).unwatch(this);
}

namespace {
// The KeepAlive registry tells every session, held or not, when the context shuts down.
void watch_engine(const std::shared_ptr<Session>& s, const asio::any_io_executor& ex) {
  KeepAlive::of(ex).watch(s.get(), [weak = std::weak_ptr<Session>(s)] {
    if (auto session = weak.lock()) session->on_engine_shutdown();
  });
}
}  // namespace

std::shared_ptr<Session> Session::make_client(asio::any_io_executor ex,
                                              const core::FlowConfig& config) {
  auto s = std::make_shared<Session>(Private{}, ex, core::Flow::make_client(config, now()));
  watch_engine(s, ex);
  KeepAlive::of(ex).hold(s);
  return s;
}

std::shared_ptr<Session> Session::make_server(asio::any_io_executor ex,
                                              std::unique_ptr<core::Flow> flow, ServerHooks hooks) {
  auto s = std::make_shared<Session>(Private{}, ex, std::move(flow));
  s->established_ = true;
  s->hooks_ = std::move(hooks);
  watch_engine(s, ex);
  KeepAlive::of(ex).hold(s);
  return s;
}

// ---------------------------------------------------------------------------------------------
// The pump: drain core events, serve waiters, schedule carrier work. Requires mu_.

void Session::pump(Actions& a, carrier::Carrier* pulling) {
  if (engine_gone_) return;  // nothing may touch the context any more
  for (int round = 0; round < 64; ++round) {
    bool progress = false;
    while (auto e = flow_->poll_event()) {
      progress = true;
      switch (e->kind) {
        case core::Event::Kind::dial_path: {
          auto it = paths_.find(e->path);
          if (it == paths_.end() || !it->second.spec) {
            flow_->on_dial_failed(e->path, now());
            break;
          }
          a.dials.push_back({e->path, ++it->second.dial_seq, *it->second.spec});
          break;
        }
        case core::Event::Kind::close_path:
          // A finished flow closes gracefully, so its last frames (ACK, CLOSE) are flushed; a
          // path the core declared dead, removed or misbehaving is aborted.
          retire(e->path,
                 flow_->state() == core::FlowState::closed ||
                     flow_->state() == core::FlowState::failed,
                 a);
          break;
        case core::Event::Kind::established:
          established_ = true;
          a.notify = true;
          settle_establishment(a);
          count_started(a);
          break;
        case core::Event::Kind::authenticated:
          count_started(a);
          if (hooks_.authenticated)
            a.callbacks.push_back(
                [cb = hooks_.authenticated, self = shared_from_this()] { cb(self); });
          break;
        case core::Event::Kind::authentication_failed:
          if (hooks_.authentication_failed) a.callbacks.push_back(hooks_.authentication_failed);
          break;
        case core::Event::Kind::path_joined:
          adopt_joined(e->path, e->old_path, a);
          break;
        case core::Event::Kind::migrated:
          if (migrate_cb_ && !detached_) {
            migrations_.push_back({e->old_path, e->path, from_core(e->cause)});
            if (!migrations_posted_) {
              migrations_posted_ = true;
              a.callbacks.push_back([self = shared_from_this()] {
                asio::post(self->ex_, [self] { self->deliver_migrations(); });
              });
            }
          }
          break;
        case core::Event::Kind::readable:
        case core::Event::Kind::writable:
        default:  // informational kinds the runtime does not act on
          break;
        case core::Event::Kind::finished:
          finished_ = true;
          count_ended(a);
          on_finished_locked(a);
          settle_establishment(a);
          break;
      }
    }
    if (detached_) {
      // Nobody will read: discard what arrives so the peer's window keeps opening.
      // (A packet flow's message may be empty: read's 0 would stop at it.)
      std::array<wire::Byte, 16 * 1024> sink;
      if (packet_) {
        while (flow_->receive_message(sink, now()).status == core::MessageReceiveResult::Status::ok)
          progress = true;
      } else {
        while (flow_->read(sink, now()) > 0)
          progress = true;
      }
    }
    if (serve_waiters(a, now())) progress = true;
    if (!progress) break;
  }
  give_packet_keys(a);
  for (auto& [c, att] : carriers_) {
    if (att.current && att.started && c != pulling &&
        (flow_->wants_transmit(att.path) || flow_->wants_probe(att.path)))
      a.kicks.push_back(att.carrier);
  }
  arm_timer();
  report(a);
  maybe_mark_closing();
  maybe_release(a);
}

// Engine::stats() counts the flow from its establishment (a client's OPEN_ACK, a server's
// PROOF) to its end.
void Session::count_started(Actions& a) {
  a.callbacks.push_back([self = shared_from_this()] { self->registry_.started(self); });
}

void Session::count_ended(Actions& a) {
  const bool failed = flow_->state() == core::FlowState::failed;
  a.callbacks.push_back([self = shared_from_this(), final = stats_locked(), failed] {
    self->registry_.ended(self.get(), final, failed);
  });
}

void Session::give_packet_keys(Actions& a) {
  std::optional<core::crypto::FlowKey> key;
  for (auto& [c, att] : carriers_) {
    if (att.key_given || !att.carrier->datagram()) continue;
    if (!key) key = flow_->flow_key();
    if (!key) return;
    att.key_given = true;
    a.keys.emplace_back(att.carrier, *key);
  }
}

// Tells the listener's endpoint when the number of attached paths, or whether the client has
// spoken since its OPEN, changed. Versions order reports that run on different threads.
void Session::report(Actions& a) {
  if (!hooks_.report || finished_) return;
  std::size_t paths = 0;
  for (const auto& [id, entry] : paths_) {
    if (entry.current != nullptr) ++paths;
  }
  const bool authenticated = flow_->authenticated();
  if (paths == reported_.paths && heard_after_open_ == reported_.heard &&
      authenticated == reported_.authenticated)
    return;
  reported_ = {reported_.version + 1, paths, heard_after_open_, authenticated};
  a.callbacks.push_back([cb = hooks_.report, r = reported_] { cb(r); });
}

// Completes the pending async operations that can complete; wakes blocked callers.
bool Session::serve_waiters(Actions& a, core::Time t) {
  bool progress = false;
  const bool failed = flow_->state() == core::FlowState::failed;
  if (pending_read_ && pending_read_->message) {
    std::size_t n = 0;
    error_code ec;
    if (try_receive_message(*pending_read_->message, t, n, ec)) {
      a.completions.push_back({std::move(pending_read_->done), ec, n});
      pending_read_.reset();
      progress = true;
    }
  } else if (pending_read_) {
    const std::size_t n = read_into(pending_read_->buffers, t);
    if (n > 0 || pending_read_->buffers.count == 0) {
      a.completions.push_back({std::move(pending_read_->done), {}, n});
      pending_read_.reset();
      progress = true;
    } else if (flow_->eof() || failed || finished_) {
      a.completions.push_back({std::move(pending_read_->done), read_error(), 0});
      pending_read_.reset();
      progress = true;
    }
  }
  if (pending_write_ && pending_write_->message) {
    std::size_t n = 0;
    error_code ec;
    if (try_send_message(*pending_write_->message, t, n, ec)) {
      a.completions.push_back({std::move(pending_write_->done), ec, n});
      pending_write_.reset();
      progress = true;
    }
  } else if (pending_write_) {
    const std::size_t n = write_from(pending_write_->buffers, t);
    if (n > 0 || pending_write_->buffers.count == 0) {
      a.completions.push_back({std::move(pending_write_->done), {}, n});
      pending_write_.reset();
      progress = true;
    } else if (failed || finished_ || flow_->send_closed()) {
      a.completions.push_back({std::move(pending_write_->done), write_error(), 0});
      pending_write_.reset();
      progress = true;
    }
  }
  // A packet flow's next message may be empty: its size says whether there is one.
  const bool readable = flow_->readable_bytes() > 0 || flow_->next_message_size().has_value() ||
                        flow_->eof() || finished_;
  const bool writable = flow_->write_capacity() > 0 || finished_ || flow_->send_closed();
  if ((read_waiters_ > 0 && readable) || (write_waiters_ > 0 && writable)) a.notify = true;
  return progress;
}

// Stops using the carrier of `path` (if any) and closes it.
void Session::retire(core::PathId path, bool graceful, Actions& a) {
  auto pit = paths_.find(path);
  if (pit == paths_.end() || pit->second.current == nullptr) return;
  auto it = carriers_.find(pit->second.current);
  pit->second.current = nullptr;
  if (path >= core::kFirstProvisionalPath) paths_.erase(pit);  // such an id is never reused
  if (it == carriers_.end()) return;
  it->second.current = false;
  (graceful ? a.closes : a.aborts).push_back(it->second.carrier);
  if (!it->second.started) carriers_.erase(it);  // never started: no on_down will follow
}

// Hands frames from carrier `c` to the flow. A PROOF may turn a provisional path into its JOIN's
// path: the frames behind it then belong to that path.
void Session::feed_locked(carrier::Carrier* c, std::span<const wire::Frame> frames,
                          const wire::Slice& backing, core::Time t, Actions& a) {
  for (const auto& f : frames) {
    auto it = carriers_.find(c);
    if (it == carriers_.end() || !it->second.current) return;
    flow_->on_frame(it->second.path, f, backing, t);
    if (std::holds_alternative<wire::Proof>(f.body)) pump(a);
  }
}

// The provisional path `provisional` proved itself: its carrier now serves `path`, replacing
// the older carrier of `path` (if any).
void Session::adopt_joined(core::PathId path, core::PathId provisional, Actions& a) {
  auto pit = paths_.find(provisional);
  if (pit == paths_.end()) return;
  carrier::Carrier* c = pit->second.current;
  paths_.erase(pit);
  auto it = carriers_.find(c);
  if (it == carriers_.end()) return;
  retire(path, false, a);
  it->second.path = path;
  auto& entry = paths_[path];
  entry.current = c;
  entry.peer = it->second.peer;
  entry.transport = it->second.carrier->transport();
}

void Session::attach_locked(std::shared_ptr<carrier::Carrier> carrier, core::PathId path,
                            std::span<const wire::Frame> rest, const wire::Slice& backing,
                            core::Time t, Actions& a) {
  retire(path, false, a);  // an older carrier of the same path id
  carrier::Carrier* key = carrier.get();
  Attached att;
  att.path = path;
  att.carrier = carrier;
  att.handler = std::make_shared<PathHandler>(weak_from_this(), key);
  att.peer = carrier->peer_address();
  att.current = true;
  att.started = true;
  auto& entry = paths_[path];
  entry.current = key;
  entry.peer = att.peer;
  entry.transport = carrier->transport();
  std::weak_ptr<PathHandler> handler = att.handler;
  carriers_[key] = std::move(att);
  if (role_ == core::Role::server) {
    // The listener calls us on the carrier's executor with the carrier already reading.
    carrier->set_handler(handler);
    if (speaks_beyond_handshake(rest)) heard_after_open_ = true;
    feed_locked(key, rest, backing, t, a);
    a.kicks.push_back(std::move(carrier));
  } else {
    a.starts.emplace_back(std::move(carrier), std::move(handler));
  }
}

void Session::arm_timer() {
  const auto deadline = flow_->next_deadline();
  if (!deadline) return;
  if (timer_armed_ && *deadline > timer_at_) {
    // The flow's next deadline moved later (a delayed ACK went out with data, a ping is no
    // longer due). Left armed, the timer would wake an idle engine thread for nothing, a
    // context switch; moving it costs a cancel and a new wait, so it is moved at most once per
    // kTimerPushInterval.
    const core::Time t = now();
    if (t - timer_pushed_at_ < kTimerPushInterval) return;
    timer_pushed_at_ = t;
    timer_armed_ = false;
  }
  arm_timer_at(*deadline);
}

void Session::arm_timer_at(core::Time at) {
  // Only moves the timer earlier (arm_timer moves it later); a timer that fires early re-arms.
  if (timer_armed_ && timer_at_ <= at) return;
  timer_armed_ = true;
  timer_at_ = at;
  const std::uint64_t generation = ++timer_gen_;
  timer_->expires_at(at);
  timer_->async_wait([weak = weak_from_this(), generation](error_code ec) {
    if (ec == asio::error::operation_aborted) return;
    if (auto s = weak.lock()) s->on_timer(generation);
  });
}

void Session::on_timer(std::uint64_t generation) {
  Actions a;
  {
    std::lock_guard lock(mu_);
    if (generation != timer_gen_) return;
    timer_armed_ = false;
    const core::Time t = now();
    if (t - timer_at_ > kLateTimer && !late_timer_deferred_) {
      // The engine thread was starved: frames that arrived meanwhile may still wait, unread,
      // behind this timer. Let them be read first, or a busy machine would see the silence
      // deadlines of live paths expire and declare them dead.
      late_timer_deferred_ = true;
      arm_timer_at(t + kLateTimer);
      return;
    }
    late_timer_deferred_ = false;
    flow_->on_timer(t);
    pump(a);
  }
  run(a);
}

void Session::on_finished_locked(Actions& a) {
  if (finish_handled_) return;
  finish_handled_ = true;
  a.notify = true;
  if (hooks_.finished)
    a.callbacks.push_back([cb = std::move(hooks_.finished), id = id_] { cb(id); });
  linger_->expires_after(kFinishLinger);
  linger_->async_wait([weak = weak_from_this()](error_code ec) {
    if (ec == asio::error::operation_aborted) return;
    if (auto s = weak.lock()) s->on_linger();
  });
}

void Session::on_linger() {
  Actions a;
  {
    std::lock_guard lock(mu_);
    for (auto& [c, att] : carriers_)
      a.aborts.push_back(att.carrier);
    carriers_.clear();
    for (auto& [id, p] : paths_)
      p.current = nullptr;
    maybe_release(a);
  }
  run(a);
}

// Both directions closed, or the flow has finished: what is left is the close handshake and
// the carriers' shutdown, which the peer needs (its last ACK, our CLOSE).
void Session::maybe_mark_closing() {
  if (closing_ || released_) return;
  if (!finished_ && !(flow_->send_closed() && flow_->eof())) return;
  closing_ = true;
  KeepAlive::of(ex_).mark_closing(this);
}

// Once finished and with no carrier left, the I/O side no longer needs the session.
void Session::maybe_release(Actions& a) {
  if (released_ || !finished_ || !carriers_.empty()) return;
  released_ = true;
  timer_->cancel();
  linger_->cancel();
  if (auto ref = KeepAlive::of(ex_).release(this)) a.releases.push_back(std::move(ref));
}

error_code Session::read_error() const {
  if (const auto ec = to_error_code(flow_->error())) return ec;
  if (flow_->eof()) return asio::error::eof;
  return errc::aborted;
}

error_code Session::write_error() const {
  if (const auto ec = to_error_code(flow_->error())) return ec;
  return asio::error::shut_down;  // close() was called, or the flow ended cleanly
}

std::size_t Session::read_into(const detail::MutableBuffers& buffers, core::Time t) {
  std::size_t total = 0;
  for (const auto& b : buffers) {
    const std::size_t n = flow_->read({static_cast<wire::Byte*>(b.data()), b.size()}, t);
    total += n;
    if (n < b.size()) break;
  }
  return total;
}

std::size_t Session::write_from(const detail::ConstBuffers& buffers, core::Time t) {
  std::size_t total = 0;
  for (const auto& b : buffers) {
    const std::size_t n = flow_->write({static_cast<const wire::Byte*>(b.data()), b.size()}, t);
    total += n;
    if (n < b.size()) break;
  }
  return total;
}

bool Session::try_send_message(asio::const_buffer message, core::Time t, std::size_t& n,
                               error_code& ec) {
  const auto result =
      flow_->send_message({static_cast<const wire::Byte*>(message.data()), message.size()}, t);
  switch (result) {
    case core::MessageSendResult::ok:
      n = message.size();
      return true;
    case core::MessageSendResult::too_large:
      ec = errc::message_too_large;
      return true;
    case core::MessageSendResult::closed:
      ec = write_error();
      return true;
    case core::MessageSendResult::full:
      break;
  }
  if (flow_->state() == core::FlowState::failed || finished_ || flow_->send_closed()) {
    ec = write_error();
    return true;
  }
  return false;
}

bool Session::try_receive_message(asio::mutable_buffer out, core::Time t, std::size_t& n,
                                  error_code& ec) {
  const auto r = flow_->receive_message({static_cast<wire::Byte*>(out.data()), out.size()}, t);
  switch (r.status) {
    case core::MessageReceiveResult::Status::ok:
      n = r.size;
      return true;
    case core::MessageReceiveResult::Status::buffer_too_small:
      n = r.size;
      ec = errc::message_buffer_too_small;
      return true;
    case core::MessageReceiveResult::Status::none:
      break;
  }
  if (flow_->eof() || flow_->state() == core::FlowState::failed || finished_) {
    ec = read_error();
    return true;
  }
  return false;
}

void Session::run(Actions& a) {
  // Keys first: a kick below may seal the first protected packet.
  for (auto& [carrier, key] : a.keys)
    carrier->set_flow_key(key);
  for (auto& [carrier, handler] : a.starts)
    carrier->start(std::move(handler));
  for (auto& c : a.kicks)
    c->kick();
  for (auto& c : a.closes)
    c->close();
  for (auto& c : a.aborts)
    c->abort();
  for (auto& d : a.dials)
    start_dial(d.path, d.seq, d.spec);
  for (auto& d : a.completions) {
    if (a.dispatch_completions) {
      d.completion.dispatch(d.ec, d.n);
    } else {
      d.completion(d.ec, d.n);
    }
  }
  if (a.notify) cv_.notify_all();
  for (auto& cb : a.callbacks)
    cb();
  a.releases.clear();
}

// ---------------------------------------------------------------------------------------------
// Client setup.

error_code Session::wait_established(core::Time deadline) {
  std::unique_lock lock(mu_);
  cv_.wait_until(lock, deadline, [&] { return established_ || finished_; });
  return establish_result_locked();
}

void Session::on_established(std::function<void(error_code)> done) {
  Actions a;
  {
    std::lock_guard lock(mu_);
    established_waiter_ = std::move(done);
    if (established_ || finished_) settle_establishment(a);
  }
  run(a);
}

error_code Session::establish_result() const {
  std::lock_guard lock(mu_);
  return establish_result_locked();
}

// Hands the outcome of the opening handshake to the async_dial waiting for it, if any.
void Session::settle_establishment(Actions& a) {
  if (!established_waiter_) return;
  a.callbacks.push_back(
      [done = std::move(established_waiter_), ec = establish_result_locked()] { done(ec); });
  established_waiter_ = nullptr;
}

error_code Session::establish_result_locked() const {
  if (established_ && !finished_) return {};
  // No path ever connected: the transport's reason (e.g. connection refused) says more.
  if (!any_dial_succeeded_ && last_dial_error_) return last_dial_error_;
  if (const auto ec = to_error_code(flow_->error())) return ec;
  return errc::handshake_failed;
}

void Session::start_dial(core::PathId path, std::uint64_t seq, const PathSpec& spec) {
  auto transport = carrier::Registry::instance().find(spec.transport);
  auto done = [weak = weak_from_this(), path, seq](error_code ec,
                                                   std::shared_ptr<carrier::Carrier> c) {
    if (auto s = weak.lock()) {
      s->on_dialed(path, seq, ec, std::move(c));
    } else if (c) {
      c->abort();
    }
  };
  if (!transport) {
    asio::post(ex_, [done] { done(errc::bad_path_spec, nullptr); });
    return;
  }
  transport->async_dial_to(
      ex_, carrier::DialTarget{spec.host, spec.port, spec.tls, spec.max_datagram_size},
      std::move(done));
}

void Session::on_dialed(core::PathId path, std::uint64_t seq, error_code ec,
                        std::shared_ptr<carrier::Carrier> carrier) {
  Actions a;
  {
    std::lock_guard lock(mu_);
    if (engine_gone_) return;
    auto it = paths_.find(path);
    const bool wanted = !finished_ && it != paths_.end() && it->second.dial_seq == seq &&
                        flow_->path_state(path) == core::PathState::dialing;
    if (!wanted) {
      if (carrier) a.aborts.push_back(std::move(carrier));
    } else if (ec || !carrier) {
      last_dial_error_ = ec ? ec : error_code(errc::handshake_failed);
      flow_->on_dial_failed(path, now());
    } else {
      const core::Time t = now();
      any_dial_succeeded_ = true;
      const std::size_t route_max_datagram = carrier->route_max_datagram();
      attach_locked(std::move(carrier), path, {}, {}, t, a);
      flow_->on_path_connected(path, t, route_max_datagram);
    }
    pump(a);
  }
  run(a);
}

// ---------------------------------------------------------------------------------------------
// Server setup.

void Session::attach_first(std::shared_ptr<carrier::Carrier> carrier, core::PathId path,
                           std::span<const wire::Frame> rest, const wire::Slice& backing) {
  Actions a;
  {
    std::lock_guard lock(mu_);
    attach_locked(std::move(carrier), path, rest, backing, now(), a);
    pump(a);
  }
  run(a);
}

wire::Status Session::attach_join(std::shared_ptr<carrier::Carrier> carrier, const wire::Join& join,
                                  std::span<const wire::Frame> rest, const wire::Slice& backing,
                                  std::size_t max_paths,
                                  const std::optional<core::PathOptions>& path) {
  Actions a;
  wire::Status status;
  {
    std::lock_guard lock(mu_);
    const core::Time t = now();
    const core::JoinVerdict verdict =
        core::admit_join(*flow_, join, max_paths, t, path ? *path : carrier_path_options(*carrier));
    status = verdict.status;
    if (status == wire::Status::ok) {
      heard_after_open_ = true;
      attach_locked(std::move(carrier), verdict.provisional, rest, backing, t, a);
    }
    pump(a);
  }
  run(a);
  return status;
}

std::optional<wire::OpenAck> Session::open_ack_for_repeated_open(const wire::Open& open) {
  Actions a;
  std::optional<wire::OpenAck> ack;
  {
    std::lock_guard lock(mu_);
    ack = flow_->open_ack_for_repeated_open(open, now());
    pump(a);  // the flow's deadline may have moved
  }
  run(a);
  return ack;
}

// ---------------------------------------------------------------------------------------------
// Application side.

template <class Attempt>
std::size_t Session::block_until_decided(Direction direction, error_code& ec, Attempt attempt) {
  ec.clear();
  if (!engine_gone_ && on_engine_thread(ex_)) {
    ec = errc::blocking_call_on_engine_thread;
    return 0;
  }
  const bool reading = direction == Direction::read;
  Actions a;
  std::size_t n = 0;
  {
    std::unique_lock lock(mu_);
    if (engine_gone_) {
      ec = errc::not_connected;
      return 0;
    }
    if (reading ? pending_read_.has_value() : pending_write_.has_value()) {
      ec = asio::error::in_progress;
      return 0;
    }
    int& waiters = reading ? read_waiters_ : write_waiters_;
    ++waiters;
    for (;;) {
      if (engine_gone_) {
        ec = errc::not_connected;
        --waiters;
        return 0;
      }
      if (attempt(n, ec)) break;
      cv_.wait(lock);
    }
    --waiters;
    pump(a);
  }
  run(a);
  return n;
}

std::size_t Session::read_some(const detail::MutableBuffers& buffers, error_code& ec) {
  if (buffers.count == 0) {
    ec = engine_gone_ ? error_code(errc::not_connected) : error_code();
    return 0;
  }
  return block_until_decided(Direction::read, ec, [&](std::size_t& n, error_code& error) {
    n = read_into(buffers, now());
    if (n > 0) return true;
    if (!flow_->eof() && !finished_) return false;
    error = read_error();
    return true;
  });
}

std::size_t Session::write_some(const detail::ConstBuffers& buffers, error_code& ec) {
  if (buffers.count == 0) {
    ec = engine_gone_ ? error_code(errc::not_connected) : error_code();
    return 0;
  }
  return block_until_decided(Direction::write, ec, [&](std::size_t& n, error_code& error) {
    n = write_from(buffers, now());
    if (n > 0) return true;
    if (!finished_ && !flow_->send_closed()) return false;
    error = write_error();
    return true;
  });
}

std::size_t Session::send_message(asio::const_buffer message, error_code& ec) {
  return block_until_decided(Direction::write, ec, [&](std::size_t& n, error_code& error) {
    return try_send_message(message, now(), n, error);
  });
}

std::size_t Session::receive_message(asio::mutable_buffer out, error_code& ec) {
  return block_until_decided(Direction::read, ec, [&](std::size_t& n, error_code& error) {
    return try_receive_message(out, now(), n, error);
  });
}

// Starts `op` as the direction's one pending operation (`slot`), unless the engine is gone or
// one is pending already: then it completes at once with that error.
template <class Pending>
void Session::start_async(std::optional<Pending>& slot, Pending op) {
  Actions a;
  {
    std::lock_guard lock(mu_);
    if (engine_gone_) {
      a.completions.push_back({std::move(op.done), errc::not_connected, 0});
    } else if (slot) {
      a.completions.push_back({std::move(op.done), asio::error::in_progress, 0});
    } else {
      slot = std::move(op);
      // An operation that cannot complete yet (a read with nothing to read) changed nothing
      // the flow acts on: park it without a pump. One that moved bytes pumps (an ACK, a
      // window update or DATA may be owed now).
      if (serve_waiters(a, now())) pump(a);
    }
  }
  run(a);
}

void Session::async_send_message(asio::const_buffer message, detail::Completion done,
                                 std::uint64_t op) {
  start_async(pending_write_, PendingWrite{{}, std::move(done), op, message});
}

void Session::async_receive_message(asio::mutable_buffer out, detail::Completion done,
                                    std::uint64_t op) {
  start_async(pending_read_, PendingRead{{}, std::move(done), op, out});
}

void Session::async_read_some(const detail::MutableBuffers& buffers, detail::Completion done,
                              std::uint64_t op) {
  start_async(pending_read_, PendingRead{buffers, std::move(done), op, std::nullopt});
}

void Session::async_write_some(const detail::ConstBuffers& buffers, detail::Completion done,
                               std::uint64_t op) {
  start_async(pending_write_, PendingWrite{buffers, std::move(done), op, std::nullopt});
}

// A pending operation has copied nothing yet (copies happen at completion, under mu_), so
// removing it here has no side effect; its buffers are forgotten with it.
void Session::cancel_op(std::uint64_t op) {
  Actions a;
  {
    std::lock_guard lock(mu_);
    if (pending_read_ && pending_read_->op == op) {
      a.completions.push_back({std::move(pending_read_->done), asio::error::operation_aborted, 0});
      pending_read_.reset();
    }
    if (pending_write_ && pending_write_->op == op) {
      a.completions.push_back({std::move(pending_write_->done), asio::error::operation_aborted, 0});
      pending_write_.reset();
    }
  }
  run(a);
}

void Session::cancel() {
  Actions a;
  {
    std::lock_guard lock(mu_);
    if (pending_read_) {
      a.completions.push_back({std::move(pending_read_->done), asio::error::operation_aborted, 0});
      pending_read_.reset();
    }
    if (pending_write_) {
      a.completions.push_back({std::move(pending_write_->done), asio::error::operation_aborted, 0});
      pending_write_.reset();
    }
  }
  run(a);
}

asio::any_io_executor Session::executor() const {
  if (engine_gone_) return asio::system_executor();
  return ex_;
}

bool Session::is_open() const {
  std::lock_guard lock(mu_);
  return !engine_gone_ && !finished_;
}

void Session::on_engine_shutdown() {
  std::vector<std::shared_ptr<carrier::Carrier>> carriers;
  std::vector<std::shared_ptr<PathHandler>> handlers;
  Actions a;
  {
    std::lock_guard lock(mu_);
    if (engine_gone_) return;
    engine_gone_ = true;
    for (auto& [c, att] : carriers_) {
      carriers.push_back(std::move(att.carrier));
      handlers.push_back(std::move(att.handler));
    }
    carriers_.clear();
    for (auto& [id, p] : paths_)
      p.current = nullptr;
    if (pending_read_) {
      a.completions.push_back({std::move(pending_read_->done), errc::not_connected, 0});
      pending_read_.reset();
    }
    if (pending_write_) {
      a.completions.push_back({std::move(pending_write_->done), errc::not_connected, 0});
      pending_write_.reset();
    }
    migrate_cb_.reset();
    timer_.reset();
    linger_.reset();
  }
  cv_.notify_all();  // blocked read_some / write_some fail with not_connected
  for (auto& d : a.completions)
    d.completion(d.ec, d.n);
  for (auto& c : carriers)
    c->abort();
}

void Session::close() {
  Actions a;
  {
    std::lock_guard lock(mu_);
    if (engine_gone_) return;
    flow_->close(now());
    pump(a);
  }
  run(a);
}

void Session::abort() {
  Actions a;
  {
    std::lock_guard lock(mu_);
    if (engine_gone_) return;
    flow_->abort(now());
    pump(a);
  }
  run(a);
}

// Runs the queued on_migrate callbacks in order, one at a time, on the session's executor. One
// delivery is posted at a time (migrations_posted_), so two never overlap.
void Session::deliver_migrations() {
  std::lock_guard running(callback_mu_);
  callback_thread_ = std::this_thread::get_id();
  for (;;) {
    std::shared_ptr<MigrateCallback> cb;
    Migration m;
    {
      std::lock_guard lock(mu_);
      if (migrations_.empty() || detached_ || !migrate_cb_) {
        migrations_.clear();
        migrations_posted_ = false;
        break;
      }
      m = migrations_.front();
      migrations_.pop_front();
      cb = migrate_cb_;
    }
    (*cb)(m.old_path, m.new_path, m.cause);
  }
  callback_thread_ = std::thread::id();
}

void Session::detach() {
  Actions a;
  {
    std::lock_guard lock(mu_);
    if (engine_gone_) return;
    detached_ = true;
    migrate_cb_.reset();  // the application let go: its callback must not run any more
    migrations_.clear();
  }
  // A callback already running on another thread finishes before the last handle is gone (from
  // inside the callback itself there is nothing to wait for).
  if (callback_thread_.load() != std::this_thread::get_id()) std::lock_guard wait(callback_mu_);
  {
    std::lock_guard lock(mu_);
    if (flow_->state() == core::FlowState::opening) {
      flow_->abort(now());  // dial() gave up on it
    } else {
      flow_->close(now());
    }
    pump(a);
  }
  run(a);
}

// ---------------------------------------------------------------------------------------------
// Admin.

FlowId Session::flow_id() const {
  return id_;
}

error_code Session::migrate(PathId id) {
  Actions a;
  error_code ec;
  {
    std::lock_guard lock(mu_);
    if (engine_gone_) return errc::not_connected;
    if (!flow_->migrate(id, now())) ec = errc::no_such_path;
    pump(a);
  }
  run(a);
  return ec;
}

error_code Session::migrate_local_address(PathId id, const std::string& local_host_port) {
  std::shared_ptr<carrier::Carrier> carrier;
  {
    std::lock_guard lock(mu_);
    if (engine_gone_) return errc::not_connected;
    auto it = paths_.find(id);
    if (it == paths_.end()) return errc::no_such_path;
    auto attached = carriers_.find(it->second.current);
    if (it->second.current == nullptr || attached == carriers_.end()) return errc::not_connected;
    carrier = attached->second.carrier;
  }
  // Outside the lock: the carrier binds a socket and hands the move to its own executor.
  return carrier->migrate_local_address(local_host_port);
}

PathId Session::active_path() const {
  std::lock_guard lock(mu_);
  return flow_->active_path();
}

PathId Session::add_path(const PathSpec& spec, error_code& ec) {
  ec.clear();
  if (role_ != core::Role::client) {
    ec = std::make_error_code(std::errc::operation_not_supported);
    return kNoPath;
  }
  if (!carrier::Registry::instance().find(spec.transport) || spec.host.empty() || spec.port == 0) {
    ec = errc::bad_path_spec;
    return kNoPath;
  }
  Actions a;
  PathId id = kNoPath;
  {
    std::lock_guard lock(mu_);
    if (engine_gone_) {
      ec = errc::not_connected;
      return kNoPath;
    }
    if (finished_) {
      ec = to_error_code(flow_->error());
      if (!ec) ec = errc::not_connected;
      return kNoPath;
    }
    // Register the spec before the core asks for the dial.
    const core::PathId next = flow_->add_path(now(), path_options(spec));
    if (next == core::kNoPath) {
      ec = errc::not_connected;
      return kNoPath;
    }
    paths_[next].spec = spec;
    id = next;
    pump(a);
  }
  run(a);
  return id;
}

error_code Session::remove_path(PathId id) {
  Actions a;
  error_code ec;
  {
    std::lock_guard lock(mu_);
    if (engine_gone_) return errc::not_connected;
    const bool known = flow_->path_state(id) != core::PathState::removed;
    if (!flow_->remove_path(id, now())) {
      ec = known ? errc::last_path : errc::no_such_path;
    } else if (role_ == core::Role::client) {
      paths_[id].spec.reset();
    }
    pump(a);
  }
  run(a);
  return ec;
}

std::string Session::state() const {
  std::lock_guard lock(mu_);
  return std::string(core::to_string(flow_->state()));
}

Mode Session::mode() const {
  std::lock_guard lock(mu_);
  return from_core(flow_->mode());
}

error_code Session::set_mode(Mode m) {
  Actions a;
  error_code ec;
  {
    std::lock_guard lock(mu_);
    if (engine_gone_) return errc::not_connected;
    if (finished_) {
      ec = to_error_code(flow_->error());
      if (!ec) ec = errc::not_connected;
      return ec;
    }
    if (flow_->set_mode(to_core(m), now()) == core::SetModeResult::illegal)
      ec = errc::illegal_mode_switch;
    pump(a);
  }
  run(a);
  return ec;
}

std::uint64_t Session::migration_count() const {
  std::lock_guard lock(mu_);
  return flow_->migration_count();
}

ConnStats Session::stats() const {
  std::lock_guard lock(mu_);
  return stats_locked();
}

ConnStats Session::stats_locked() const {
  ConnStats stats = to_conn_stats(flow_->stats(now()), [this](core::PathId id) -> std::string {
    auto it = paths_.find(id);
    if (it == paths_.end()) return {};
    if (it->second.spec) return it->second.spec->to_string();
    return it->second.peer;
  });
  for (PathInfo& info : stats.paths) {
    auto it = paths_.find(info.id);
    if (it == paths_.end()) continue;
    info.transport = it->second.spec ? it->second.spec->transport : it->second.transport;
    if (it->second.current == nullptr) continue;
    auto attached = carriers_.find(it->second.current);
    if (attached == carriers_.end()) continue;
    info.local_address = attached->second.carrier->local_address();
    info.peer_address = attached->second.carrier->peer_address();
    if (info.datagram) continue;  // the core's own recovery filled the congestion fields
    if (auto congestion = attached->second.carrier->transport_congestion())
      add_transport_congestion(info, *congestion);
  }
  return stats;
}

void Session::on_migrate(MigrateCallback callback) {
  std::lock_guard lock(mu_);
  migrate_cb_ = callback ? std::make_shared<MigrateCallback>(std::move(callback)) : nullptr;
}

bool Session::finished() const {
  std::lock_guard lock(mu_);
  return finished_;
}

// ---------------------------------------------------------------------------------------------
// Carrier glue.

void Session::carrier_frames(carrier::Carrier* c, const std::vector<wire::Frame>& frames,
                             const wire::Slice& backing) {
  Actions a;
  a.dispatch_completions = true;  // a carrier's read handler, never an application's call
  {
    std::lock_guard lock(mu_);
    if (speaks_beyond_handshake(frames)) heard_after_open_ = true;
    feed_locked(c, frames, backing, now(), a);
    pump(a);
  }
  run(a);
}

void Session::carrier_acknowledged(carrier::Carrier* c) {
  Actions a;
  {
    std::lock_guard lock(mu_);
    auto it = carriers_.find(c);
    if (it == carriers_.end() || !it->second.current) return;
    flow_->on_path_acknowledged(it->second.path, now());
    pump(a);
  }
  run(a);
}

void Session::carrier_down(carrier::Carrier* c, carrier::DownReason reason) {
  Actions a;
  {
    std::lock_guard lock(mu_);
    auto it = carriers_.find(c);
    if (it == carriers_.end()) return;
    const bool current = it->second.current;
    const core::PathId path = it->second.path;
    a.releases.push_back(it->second.handler);  // the handler may be the caller: drop it later
    a.releases.push_back(it->second.carrier);
    carriers_.erase(it);
    if (current) {
      if (path >= core::kFirstProvisionalPath) {
        paths_.erase(path);
      } else {
        paths_[path].current = nullptr;
      }
      if (reason != carrier::DownReason::closed)
        flow_->on_path_down(path, down_cause(static_cast<int>(reason)), now());
    }
    pump(a);
  }
  run(a);
}

void Session::carrier_packets(carrier::Carrier* c,
                              std::span<const carrier::ReceivedPacket> packets) {
  Actions a;
  {
    std::lock_guard lock(mu_);
    const core::Time t = now();
    for (const carrier::ReceivedPacket& p : packets) {
      auto it = carriers_.find(c);
      if (it == carriers_.end() || !it->second.current) break;
      if (speaks_beyond_handshake(p.frames)) heard_after_open_ = true;
      if (role_ == core::Role::server) {
        // A listener's path: where each packet came from is the core's to judge (a NAT
        // rebinding is followed once the new address answers a challenge, a spoofed one never).
        flow_->on_packet(it->second.path, p.number, p.frames, p.backing, t,
                         core::PacketSource{to_peer_address(p.source), p.datagram_size});
      } else {
        flow_->on_packet(it->second.path, p.number, p.frames, p.backing, t);
      }
      // A PROOF may turn a provisional path into its JOIN's path: adopt it before the next one.
      if (!p.frames.empty() && std::holds_alternative<wire::Proof>(p.frames.front().body)) pump(a);
    }
    pump(a);
  }
  run(a);
}

void Session::carrier_datagram_frames(carrier::Carrier* c, const std::vector<wire::Frame>& frames,
                                      const wire::Slice& backing) {
  Actions a;
  a.dispatch_completions = true;  // a carrier's read handler, never an application's call
  {
    std::lock_guard lock(mu_);
    auto it = carriers_.find(c);
    if (it == carriers_.end() || !it->second.current) return;
    flow_->on_datagram_frames(it->second.path, frames, backing, now());
    pump(a);
  }
  run(a);
}

void Session::carrier_datagram_fates(carrier::Carrier* c, std::span<const std::uint64_t> acked,
                                     std::span<const std::uint64_t> lost) {
  Actions a;
  a.dispatch_completions = true;
  {
    std::lock_guard lock(mu_);
    auto it = carriers_.find(c);
    if (it == carriers_.end() || !it->second.current) return;
    const core::Time t = now();
    for (const std::uint64_t id : acked)
      flow_->on_datagram_acked(it->second.path, id, t);
    for (const std::uint64_t id : lost)
      flow_->on_datagram_lost(it->second.path, id, t);
    pump(a);
  }
  run(a);
}

bool Session::carrier_pull(carrier::Carrier* c, wire::TransmitBatch& out) {
  Actions a;
  bool any = false;
  {
    std::lock_guard lock(mu_);
    auto it = carriers_.find(c);
    if (it == carriers_.end() || !it->second.current) return false;
    flow_->set_message_datagram_size(it->second.path, c->max_datagram_frame());
    const core::PathId path = it->second.path;
    any = flow_->poll_transmit(path, now(), out);
    pump(a, c);
    // The pump never kicks the carrier it was pulled by: the batch says whether to pull again.
    out.set_more_owed(flow_->wants_pull(path) || flow_->wants_probe(path));
  }
  run(a);
  return any;
}

namespace {
std::optional<asio::ip::udp::endpoint> to_udp_endpoint(
    const std::optional<core::PeerAddress>& address) {
  if (!address) return std::nullopt;
  return runtime::to_udp_endpoint(*address);
}
}  // namespace

bool Session::carrier_pull_datagrams(carrier::Carrier* c, wire::TransmitBatch& out,
                                     std::optional<asio::ip::udp::endpoint>& to) {
  Actions a;
  bool any = false;
  {
    std::lock_guard lock(mu_);
    auto it = carriers_.find(c);
    if (it == carriers_.end() || !it->second.current) return false;
    any = flow_->poll_transmit(it->second.path, now(), out);
    // Read for every batch: it changes when a new address of the peer has been validated.
    to = to_udp_endpoint(flow_->peer_address(it->second.path));
    pump(a, c);
  }
  run(a);
  return any;
}

bool Session::carrier_pull_probe(carrier::Carrier* c, wire::TransmitBatch& out,
                                 std::optional<asio::ip::udp::endpoint>& to) {
  Actions a;
  bool any = false;
  {
    std::lock_guard lock(mu_);
    auto it = carriers_.find(c);
    if (it == carriers_.end() || !it->second.current) return false;
    const core::PathId path = it->second.path;
    if (!flow_->wants_probe(path)) return false;
    if (const auto target = flow_->poll_probe(path, now(), out)) {
      any = true;
      to = to_udp_endpoint(target->to ? target->to : flow_->peer_address(path));
    }
    pump(a, c);
  }
  run(a);
  return any;
}

void Session::carrier_local_address_moved(carrier::Carrier* c) {
  Actions a;
  {
    std::lock_guard lock(mu_);
    auto it = carriers_.find(c);
    if (it == carriers_.end() || !it->second.current) return;
    flow_->on_local_address_moved(it->second.path);
    pump(a, c);  // the carrier writes right after this call
  }
  run(a);
}

// ---------------------------------------------------------------------------------------------
// The application handle.

namespace {

class ConnHandle final : public detail::ConnCore {
 public:
  explicit ConnHandle(std::shared_ptr<Session> s) : s_(std::move(s)) {}
  ~ConnHandle() override { s_->detach(); }

  asio::any_io_executor executor() override { return s_->executor(); }
  bool is_open() const override { return s_->is_open(); }
  std::size_t read_some(const detail::MutableBuffers& b, error_code& ec) override {
    return s_->read_some(b, ec);
  }
  std::size_t write_some(const detail::ConstBuffers& b, error_code& ec) override {
    return s_->write_some(b, ec);
  }
  std::size_t send_message(asio::const_buffer message, error_code& ec) override {
    return s_->send_message(message, ec);
  }
  std::size_t receive_message(asio::mutable_buffer out, error_code& ec) override {
    return s_->receive_message(out, ec);
  }
  void async_send_message(asio::const_buffer message, detail::Completion done,
                          std::uint64_t op) override {
    s_->async_send_message(message, std::move(done), op);
  }
  void async_receive_message(asio::mutable_buffer out, detail::Completion done,
                             std::uint64_t op) override {
    s_->async_receive_message(out, std::move(done), op);
  }
  void async_read_some(const detail::MutableBuffers& b, detail::Completion done,
                       std::uint64_t op) override {
    s_->async_read_some(b, std::move(done), op);
  }
  void async_write_some(const detail::ConstBuffers& b, detail::Completion done,
                        std::uint64_t op) override {
    s_->async_write_some(b, std::move(done), op);
  }
  void cancel_op(std::uint64_t op) override { s_->cancel_op(op); }
  void cancel() override { s_->cancel(); }
  void close() override { s_->close(); }
  void abort() override { s_->abort(); }
  FlowId flow_id() const override { return s_->flow_id(); }
  error_code migrate(PathId id) override { return s_->migrate(id); }
  error_code migrate_local_address(PathId id, const std::string& local_host_port) override {
    return s_->migrate_local_address(id, local_host_port);
  }
  PathId active_path() const override { return s_->active_path(); }
  PathId add_path(const PathSpec& spec, error_code& ec) override { return s_->add_path(spec, ec); }
  error_code remove_path(PathId id) override { return s_->remove_path(id); }
  std::string state() const override { return s_->state(); }
  Mode mode() const override { return s_->mode(); }
  error_code set_mode(Mode m) override { return s_->set_mode(m); }
  std::uint64_t migration_count() const override { return s_->migration_count(); }
  ConnStats stats() const override { return s_->stats(); }
  void on_migrate(std::function<void(PathId, PathId, MigrateCause)> cb) override {
    s_->on_migrate(std::move(cb));
  }

 private:
  std::shared_ptr<Session> s_;
};

}  // namespace

std::shared_ptr<detail::ConnCore> make_conn(std::shared_ptr<Session> session) {
  return std::make_shared<ConnHandle>(std::move(session));
}

}  // namespace rendr::runtime

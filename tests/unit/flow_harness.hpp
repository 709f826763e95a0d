#pragma once
// A tiny in-memory harness for core::Flow unit tests: two flows, N paths modelled as reliable
// ordered pipes (zero latency unless set_latency gives one, with optional jitter), virtual
// time, and switches to drop or kill a path.
#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "core/flow.hpp"

namespace rendr::test {

using namespace std::chrono_literals;

class FlowPair {
 public:
  explicit FlowPair(core::FlowConfig config = {}, int paths = 2) : config_(config) {
    client_ = core::Flow::make_client(config_, now_);
    for (int i = 0; i < paths; ++i)
      client_->add_path(now_);
    settle();
  }
  // Paths whose one-way latencies (and jitter) are known before the handshake.
  struct PathProfile {
    core::Duration latency{};
    core::Duration jitter{};
  };
  // `settle_for` 0: only what happens at once (the OPEN is still on its way).
  FlowPair(core::FlowConfig config, const std::vector<PathProfile>& paths,
           core::Duration settle_for = 500ms)
      : config_(config) {
    client_ = core::Flow::make_client(config_, now_);
    for (std::size_t i = 0; i < paths.size(); ++i) {
      profiles_[static_cast<core::PathId>(i + 1)] = paths[i];
      client_->add_path(now_);
    }
    settle(settle_for);
  }

  core::Flow& client() { return *client_; }
  core::Flow& server() { return *server_; }
  bool has_server() const { return server_ != nullptr; }
  core::Time now() const { return now_; }

  // Silently drop everything on a path (both directions) from now on.
  void blackhole(core::PathId id, bool on = true) { links_[id].blackholed = on; }
  // One-way latency of a path from now on (frames already in flight keep theirs).
  void set_latency(core::PathId id, core::Duration one_way, core::Duration jitter = {}) {
    profiles_[id] = PathProfile{one_way, jitter};
  }
  // How much one poll_transmit may return (a carrier's write size).
  void set_poll_bytes(std::size_t n) { poll_bytes_ = n; }
  // Refuse new connections on a path.
  void refuse(core::PathId id, bool on = true) { links_[id].refused = on; }
  // Both ends see the transport die.
  void kill(core::PathId id) {
    auto& l = links_[id];
    if (!l.connected) return;
    l.connected = false;
    l.to_server.clear();
    l.to_client.clear();
    client_->on_path_down(id, core::DownCause::reset, now_);
    if (server_ && l.server_attached)
      server_->on_path_down(l.server_path, core::DownCause::reset, now_);
    l.server_attached = false;
  }

  // The server process stops for `d` (no timers, nothing read or sent; frames to it wait).
  void stall_server(core::Duration d) { server_stalled_until_ = now_ + d; }

  // Moves frames and fires timers until nothing happens, or `limit` of virtual time passes.
  void settle(core::Duration limit = 0ms) {
    const core::Time stop = now_ + limit;
    for (int guard = 0; guard < 1'000'000; ++guard) {
      if (step()) continue;
      auto d = next_deadline();
      if (!d || *d > stop) {
        if (now_ < stop) now_ = stop;
        return;
      }
      now_ = std::max(now_, *d);
      client_->on_timer(now_);
      if (server_ && server_running()) server_->on_timer(now_);
    }
  }

  void advance(core::Duration d) { settle(d); }

  std::uint64_t client_dials = 0;
  std::uint64_t rejected_joins = 0;
  std::uint64_t server_authenticated = 0;            // Event::Kind::authenticated
  std::uint64_t server_authentication_failures = 0;  // Event::Kind::authentication_failed
  // OPENs for the existing server flow, as the listener judges them.
  std::uint64_t repeated_opens_answered = 0;
  std::uint64_t opens_refused = 0;
  // Informational events, as the runtime would see them.
  std::vector<core::Mode> client_mode_changes, server_mode_changes;
  std::vector<core::MigrateCause> client_migrations;
  std::vector<core::Time> client_migration_times;  // when each of client_migrations happened

 private:
  bool server_running() const { return now_ >= server_stalled_until_; }

  struct Packet {
    core::Time at;
    std::vector<wire::Byte> bytes;
  };
  struct Link {
    bool connected = false;
    bool server_attached = false;
    bool blackholed = false;
    bool refused = false;
    std::deque<Packet> to_server, to_client;
    bool close_when_drained = false;  // the listener answered a repeated OPEN on it
    // The server flow's id for this connection: a provisional id until a JOIN's PROOF.
    core::PathId server_path = core::kNoPath;
  };

  Link* link_of_server_path(core::PathId server_path) {
    for (auto& [id, l] : links_) {
      if (l.server_attached && l.server_path == server_path) return &l;
    }
    return nullptr;
  }

  std::optional<core::Time> next_deadline() const {
    std::optional<core::Time> t;
    auto consider = [&](std::optional<core::Time> x) {
      if (x && (!t || *x < *t)) t = x;
    };
    consider(client_->next_deadline());
    if (server_) {
      const auto d = server_->next_deadline();
      consider(server_running() || !d ? d : std::max(*d, server_stalled_until_));
    }
    for (const auto& [id, l] : links_) {
      if (!l.to_server.empty()) consider(std::max(l.to_server.front().at, server_stalled_until_));
      if (!l.to_client.empty()) consider(l.to_client.front().at);
    }
    return t;
  }

  // Frames arrive after the path's latency plus jitter, never overtaking each other.
  void encode_into(core::PathId id, const wire::TransmitBatch& frames, std::deque<Packet>& q) {
    const PathProfile& profile = profiles_[id];
    core::Duration jitter{};
    if (profile.jitter > core::Duration::zero()) {
      rng_ = rng_ * 6364136223846793005ull + 1442695040888963407ull;
      jitter = core::Duration(static_cast<core::Duration::rep>(
          (rng_ >> 33) % static_cast<std::uint64_t>(profile.jitter.count() + 1)));
    }
    core::Time at = now_ + profile.latency + jitter;
    if (!q.empty()) at = std::max(at, q.back().at);
    for (const auto& f : frames.frames()) {
      std::vector<wire::Byte> bytes(f.header_bytes().begin(), f.header_bytes().end());
      bytes.insert(bytes.end(), f.payload.bytes().begin(), f.payload.bytes().end());
      q.push_back(Packet{at, std::move(bytes)});
    }
  }

  void close_from_server(Link& l) {
    l.server_attached = false;
    l.connected = false;
    l.to_server.clear();
    l.to_client.clear();
    for (auto& [id, link] : links_) {
      if (&link == &l) client_->on_path_down(id, core::DownCause::eof, now_);
    }
  }

  // Server events, as the runtime would act on them.
  bool drain_server_events() {
    bool progress = false;
    while (auto e = server_->poll_event()) {
      progress = true;
      if (e->kind == core::Event::Kind::mode_changed) server_mode_changes.push_back(e->mode);
      if (e->kind == core::Event::Kind::authenticated) ++server_authenticated;
      if (e->kind == core::Event::Kind::authentication_failed) ++server_authentication_failures;
      if (e->kind == core::Event::Kind::path_joined) {
        // Like the runtime: the older carrier of the path closes, the proven one takes over.
        if (Link* old = link_of_server_path(e->path)) close_from_server(*old);
        if (Link* joined = link_of_server_path(e->old_path)) joined->server_path = e->path;
      }
      if (e->kind == core::Event::Kind::close_path) {
        if (Link* l = link_of_server_path(e->path)) close_from_server(*l);
      }
    }
    return progress;
  }

  bool step() {
    bool progress = false;
    while (auto e = client_->poll_event()) {
      progress = true;
      if (e->kind == core::Event::Kind::mode_changed) client_mode_changes.push_back(e->mode);
      if (e->kind == core::Event::Kind::migrated) {
        client_migrations.push_back(e->cause);
        client_migration_times.push_back(now_);
      }
      if (e->kind == core::Event::Kind::dial_path) {
        ++client_dials;
        auto& l = links_[e->path];
        if (l.refused) {
          client_->on_dial_failed(e->path, now_);
        } else {
          l = Link{false, false, l.blackholed, l.refused, {}, {}, false};
          l.connected = true;
          client_->on_path_connected(e->path, now_);
        }
      } else if (e->kind == core::Event::Kind::close_path) {
        auto& l = links_[e->path];
        l.connected = false;
        l.to_server.clear();
        l.to_client.clear();
        // The server's side of a closed TCP connection sees EOF.
        if (server_ && l.server_attached)
          server_->on_path_down(l.server_path, core::DownCause::eof, now_);
        l.server_attached = false;
      }
    }
    if (server_ && server_running()) progress |= drain_server_events();
    for (auto& [id, l] : links_) {
      if (!l.connected) continue;
      // Like a carrier whose socket is always writable: it pulls whenever it is idle, asked
      // or not (the core learns from an empty pull that the path's carrier is idle).
      out_.reset(poll_bytes_);
      if (client_->poll_transmit(id, now_, out_)) {
        progress = true;
        if (!l.blackholed) encode_into(id, out_, l.to_server);
      }
      out_.reset(poll_bytes_);
      if (server_ && server_running() && l.server_attached &&
          server_->wants_transmit(l.server_path) &&
          server_->poll_transmit(l.server_path, now_, out_)) {
        progress = true;
        if (!l.blackholed) encode_into(id, out_, l.to_client);
      }
      while (server_running() && !l.to_server.empty() && l.to_server.front().at <= now_ &&
             l.connected) {
        progress = true;
        auto bytes = std::move(l.to_server.front().bytes);
        l.to_server.pop_front();
        deliver_to_server(id, l, bytes);
      }
      while (!l.to_client.empty() && l.to_client.front().at <= now_ && l.connected) {
        progress = true;
        auto bytes = std::move(l.to_client.front().bytes);
        l.to_client.pop_front();
        wire::Slice backing = wire::Slice::copy_of(bytes);
        wire::Frame f;
        auto r = wire::decode(backing.bytes(), f);
        if (r.error == wire::DecodeError::none) client_->on_frame(id, f, backing, now_);
      }
      if (l.close_when_drained && l.connected && l.to_client.empty()) {
        progress = true;
        l.connected = false;
        l.to_server.clear();
        client_->on_path_down(id, core::DownCause::eof, now_);
      }
    }
    return progress;
  }

  void deliver_to_server(core::PathId id, Link& l, const std::vector<wire::Byte>& bytes) {
    wire::Slice backing = wire::Slice::copy_of(bytes);
    wire::Frame f;
    auto r = wire::decode(backing.bytes(), f);
    if (r.error != wire::DecodeError::none) return;
    if (l.close_when_drained) return;  // the listener only answers, then closes
    if (!l.server_attached) {
      if (auto* open = std::get_if<wire::Open>(&f.body); open != nullptr && server_) {
        // Like the listener: the flow's own OPEN_ACK for a repeat, a refusal for anything else;
        // then the connection closes, never attached.
        auto ack = server_->open_ack_for_repeated_open(*open, now_);
        if (ack) {
          ++repeated_opens_answered;
        } else {
          ++opens_refused;
          ack = wire::OpenAck{};
          ack->status = wire::Status::bad_request;
        }
        wire::OutFrame out;
        out.header_size = static_cast<std::uint8_t>(wire::encode(wire::Frame{0, *ack}, out.header));
        wire::TransmitBatch answer;
        answer.push(std::move(out));
        encode_into(id, answer, l.to_client);
        l.close_when_drained = true;
      } else if (open != nullptr) {
        wire::Status status;
        server_ = core::Flow::make_server(config_, *open, static_cast<core::PathId>(open->path_id),
                                          now_, status);
        l.server_attached = server_ != nullptr;
        l.server_path = id;
      } else if (auto* join = std::get_if<wire::Join>(&f.body)) {
        auto verdict = server_->on_join(*join, now_);
        if (verdict.status == wire::Status::ok) {
          l.server_attached = true;
          l.server_path = verdict.provisional;
        } else {
          ++rejected_joins;
          l.connected = false;
          client_->on_path_down(id, core::DownCause::eof, now_);
        }
      }
      return;
    }
    server_->on_frame(l.server_path, f, backing, now_);
    // A proven JOIN path takes its id before the frames behind it arrive (as in the runtime).
    if (std::holds_alternative<wire::Proof>(f.body)) drain_server_events();
  }

  core::FlowConfig config_;
  core::Time now_{std::chrono::seconds(1000)};
  std::unique_ptr<core::Flow> client_, server_;
  std::map<core::PathId, Link> links_;
  std::map<core::PathId, PathProfile> profiles_;
  wire::TransmitBatch out_;  // reused for every pull, as a carrier does
  std::size_t poll_bytes_ = 1 << 20;
  core::Time server_stalled_until_{};
  std::uint64_t rng_ = 42;
};

}  // namespace rendr::test

#pragma once
// An in-memory harness for core::Flow over datagram paths (and stream paths beside them):
// two flows, paths of either kind with a one-way latency, virtual time, and hooks that see,
// drop or duplicate each packet. Packets keep no order beyond their send time.
#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "core/flow.hpp"

namespace rendr::test {

using namespace std::chrono_literals;

class DatagramPair {
 public:
  enum class Dir { to_server, to_client };
  // One packet (a datagram path's) or one stream write's frames (a reliable path's).
  struct Wire {
    core::Time at;
    core::PathId path;  // the client's id
    Dir dir;
    bool datagram = true;
    std::uint64_t number = 0;
    std::vector<wire::Byte> bytes;
  };
  // Sees every packet as it is sent; returns false to drop it.
  using Filter = std::function<bool(const Wire&, const std::vector<wire::Frame>&)>;

  // `max_datagram_size`: what both ends' carriers could send (PathOptions; 0: no MTU probing).
  DatagramPair(core::FlowConfig config, const std::vector<core::TransportKind>& kinds,
               core::Duration latency = 5ms, std::size_t max_datagram_size = 0)
      : config_(config), latency_(latency), max_datagram_size_(max_datagram_size) {
    client_ = core::Flow::make_client(config_, now_);
    for (core::TransportKind kind : kinds) {
      core::PathOptions options;
      options.transport = kind;
      options.max_datagram_size = max_datagram_size_;
      const core::PathId id = client_->add_path(now_, options);
      links_[id].kind = kind;
    }
  }

  core::Flow& client() { return *client_; }
  core::Flow& server() { return *server_; }
  bool has_server() const { return server_ != nullptr; }
  core::Time now() const { return now_; }

  void set_filter(Filter f) { filter_ = std::move(f); }
  void blackhole(core::PathId id, bool on = true) { links_[id].blackholed = on; }
  // Delivers the next packet sent on `id` towards `dir` twice.
  void duplicate_next(core::PathId id, Dir dir) { duplicate_next_ = {id, dir}; }
  // Batches returned by poll_transmit on the client, for inspection.
  std::vector<wire::TransmitBatch::Packet> client_packets;
  std::size_t max_packet_frame_bytes = 0;
  std::size_t client_poll_bytes = 1 << 20;

  // Moves packets and fires timers until nothing happens, or `limit` passes.
  void settle(core::Duration limit) {
    const core::Time stop = now_ + limit;
    for (int guard = 0; guard < 2'000'000; ++guard) {
      if (step()) continue;
      auto d = next_deadline();
      if (!d || *d > stop) {
        if (now_ < stop) now_ = stop;
        return;
      }
      now_ = std::max(now_, *d);
      client_->on_timer(now_);
      if (server_) server_->on_timer(now_);
    }
  }

  // Writes `bytes` of a pattern on the client, reads them on the server, until done or `limit`.
  // Returns how many the server read (checked against the pattern).
  std::uint64_t transfer(std::uint64_t bytes, core::Duration limit, bool close = true) {
    std::vector<wire::Byte> chunk(64 * 1024), got(64 * 1024);
    const core::Time stop = now_ + limit;
    while (now_ < stop && (received_ < bytes || (close && !server_eof_))) {
      while (written_ < bytes && client_->write_capacity() > 0) {
        const std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), bytes - written_));
        for (std::size_t i = 0; i < n; ++i)
          chunk[i] = pattern(written_ + i);
        const std::size_t w = client_->write(std::span(chunk.data(), n), now_);
        if (w == 0) break;
        written_ += w;
      }
      if (close && written_ == bytes && !client_->send_closed()) client_->close(now_);
      if (server_) {
        while (const std::size_t n = server_->read(std::span(got.data(), got.size()), now_)) {
          for (std::size_t i = 0; i < n; ++i) {
            if (got[i] != pattern(received_ + i)) {
              corrupt_ = true;
              return received_;
            }
          }
          received_ += n;
        }
        if (server_->eof() && !server_eof_) {
          server_eof_ = true;
          server_->close(now_);  // both directions end: the flows close
        }
      }
      settle(1ms);
    }
    if (close) settle(1s);  // the close handshake
    return received_;
  }
  bool corrupt() const { return corrupt_; }

  std::uint64_t client_dials = 0;

 private:
  static wire::Byte pattern(std::uint64_t at) { return static_cast<wire::Byte>(at * 131 + 7); }

  struct Link {
    core::TransportKind kind = core::TransportKind::datagram;
    bool connected = false;
    bool server_attached = false;
    bool blackholed = false;
    core::PathId server_path = core::kNoPath;
  };

  std::optional<core::Time> next_deadline() const {
    std::optional<core::Time> t;
    auto consider = [&](std::optional<core::Time> x) {
      if (x && (!t || *x < *t)) t = x;
    };
    consider(client_->next_deadline());
    if (server_) consider(server_->next_deadline());
    if (!in_flight_.empty()) consider(in_flight_.front().at);
    return t;
  }

  static std::vector<wire::Frame> decode_all(const wire::Slice& backing) {
    std::vector<wire::Frame> frames;
    std::size_t offset = 0;
    while (offset < backing.size()) {
      wire::Frame f;
      const auto r = wire::decode(backing.bytes().subspan(offset), f);
      if (r.error != wire::DecodeError::none) break;
      offset += r.consumed;
      frames.push_back(std::move(f));
    }
    return frames;
  }

  void send(core::PathId id, Dir dir, const wire::TransmitBatch& out) {
    Link& l = links_[id];
    auto emit = [&](bool datagram, std::uint64_t number, std::span<const wire::OutFrame> frames) {
      Wire w{now_ + latency_, id, dir, datagram, number, {}};
      for (const auto& f : frames) {
        w.bytes.insert(w.bytes.end(), f.header_bytes().begin(), f.header_bytes().end());
        w.bytes.insert(w.bytes.end(), f.payload.bytes().begin(), f.payload.bytes().end());
      }
      if (l.blackholed) return;
      if (filter_ && !filter_(w, decode_all(wire::Slice::copy_of(w.bytes)))) return;
      if (duplicate_next_ && duplicate_next_->first == id && duplicate_next_->second == dir) {
        duplicate_next_.reset();
        insert(w);
      }
      insert(std::move(w));
    };
    if (l.kind == core::TransportKind::datagram) {
      for (const auto& p : out.packets()) {
        if (dir == Dir::to_server) {
          client_packets.push_back(p);
          max_packet_frame_bytes = std::max(max_packet_frame_bytes, p.bytes);
        }
        emit(true, p.number, out.frames_of(p));
      }
    } else {
      emit(false, 0, out.frames());
    }
  }

  void insert(Wire w) {
    // Ordered by arrival; equal times keep their sending order.
    auto it = std::upper_bound(in_flight_.begin(), in_flight_.end(), w.at,
                               [](core::Time t, const Wire& x) { return t < x.at; });
    in_flight_.insert(it, std::move(w));
  }

  void deliver(const Wire& w) {
    Link& l = links_[w.path];
    if (!l.connected) return;
    const wire::Slice backing = wire::Slice::copy_of(w.bytes);
    const std::vector<wire::Frame> frames = decode_all(backing);
    if (frames.empty()) return;
    if (w.dir == Dir::to_client) {
      if (w.datagram) {
        client_->on_packet(w.path, w.number, frames, backing, now_);
      } else {
        for (const auto& f : frames)
          client_->on_frame(w.path, f, backing, now_);
      }
      return;
    }
    core::PathOptions carrier;
    carrier.transport = l.kind;
    carrier.max_datagram_size = max_datagram_size_;
    if (!l.server_attached) {
      // The listener: a handshake packet's one frame (its number is not acknowledged).
      if (const auto* open = std::get_if<wire::Open>(&frames.front().body)) {
        if (server_) return;  // a repeat: not modelled
        wire::Status status;
        server_ = core::Flow::make_server(config_, *open, static_cast<core::PathId>(open->path_id),
                                          now_, status, carrier);
        l.server_attached = server_ != nullptr;
        l.server_path = w.path;
      } else if (const auto* join = std::get_if<wire::Join>(&frames.front().body)) {
        if (!server_) return;
        const auto verdict = server_->on_join(*join, now_, carrier);
        if (verdict.status == wire::Status::ok) {
          l.server_attached = true;
          l.server_path = verdict.provisional;
        }
      }
      return;
    }
    if (w.datagram) {
      server_->on_packet(l.server_path, w.number, frames, backing, now_);
      drain_server_events();
    } else {
      for (const auto& f : frames) {
        server_->on_frame(l.server_path, f, backing, now_);
        if (std::holds_alternative<wire::Proof>(f.body)) drain_server_events();
      }
    }
  }

  Link* link_of_server_path(core::PathId server_path) {
    for (auto& [id, l] : links_) {
      if (l.server_attached && l.server_path == server_path) return &l;
    }
    return nullptr;
  }

  bool drain_server_events() {
    bool progress = false;
    while (auto e = server_->poll_event()) {
      progress = true;
      if (e->kind == core::Event::Kind::path_joined) {
        if (Link* old = link_of_server_path(e->path)) old->server_attached = false;
        if (Link* joined = link_of_server_path(e->old_path)) joined->server_path = e->path;
      }
      if (e->kind == core::Event::Kind::close_path) {
        if (Link* l = link_of_server_path(e->path)) l->server_attached = false;
      }
    }
    return progress;
  }

  bool step() {
    bool progress = false;
    while (auto e = client_->poll_event()) {
      progress = true;
      if (e->kind == core::Event::Kind::dial_path) {
        ++client_dials;
        Link& l = links_[e->path];
        l.connected = true;
        l.server_attached = false;
        client_->on_path_connected(e->path, now_);
      } else if (e->kind == core::Event::Kind::close_path) {
        Link& l = links_[e->path];
        l.connected = false;
        if (server_ && l.server_attached)
          server_->on_path_down(l.server_path, core::DownCause::eof, now_);
        l.server_attached = false;
      }
    }
    if (server_) progress |= drain_server_events();
    for (auto& [id, l] : links_) {
      if (!l.connected) continue;
      if (client_->wants_transmit(id)) {
        out_.reset(client_poll_bytes);
        if (client_->poll_transmit(id, now_, out_)) {
          progress = true;
          send(id, Dir::to_server, out_);
        }
      }
      if (server_ && l.server_attached && server_->wants_transmit(l.server_path)) {
        out_.reset(1 << 20);
        if (server_->poll_transmit(l.server_path, now_, out_)) {
          progress = true;
          send(id, Dir::to_client, out_);
        }
      }
    }
    while (!in_flight_.empty() && in_flight_.front().at <= now_) {
      progress = true;
      Wire w = std::move(in_flight_.front());
      in_flight_.pop_front();
      deliver(w);
    }
    return progress;
  }

  core::FlowConfig config_;
  core::Duration latency_;
  std::size_t max_datagram_size_ = 0;
  core::Time now_{std::chrono::seconds(1000)};
  std::unique_ptr<core::Flow> client_, server_;
  std::map<core::PathId, Link> links_;
  std::deque<Wire> in_flight_;
  Filter filter_;
  std::optional<std::pair<core::PathId, Dir>> duplicate_next_;
  wire::TransmitBatch out_;
  std::uint64_t written_ = 0, received_ = 0;
  bool server_eof_ = false, corrupt_ = false;
};

}  // namespace rendr::test

#include "carrier/udp/udpflow_carrier.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "carrier/udp/endpoint_text.hpp"
#include "carrier/udp/route_mtu.hpp"
#include "core/crypto.hpp"

namespace rendr::carrier::udp {

namespace dg = wire::datagram;

namespace {

// Packets handed to the session in one call: a whole receive batch (GRO buffers of 64 KiB) can be
// thousands, and the ACK for the first of them waits until the session has taken them all.
constexpr std::size_t kPacketsPerDelivery = 32;

std::string format_endpoint(const asio::ip::udp::endpoint& ep) {
  const auto address = ep.address();
  std::string host = address.to_string();
  if (address.is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}

// Frames that make a packet a handshake packet: the peer may not hold the keys yet.
bool needs_clear(const wire::OutFrame& f) {
  if (f.header_size == 0) return false;
  switch (static_cast<wire::FrameType>(f.header[0])) {
    case wire::FrameType::open:
    case wire::FrameType::open_ack:
    case wire::FrameType::join:
    case wire::FrameType::join_ack:
      return true;
    default:
      return false;
  }
}

// Frames a handshake packet may carry (docs/protocol.md §10.1).
bool allowed_in_clear(const wire::Frame& f) {
  return std::holds_alternative<wire::Open>(f.body) ||
         std::holds_alternative<wire::OpenAck>(f.body) ||
         std::holds_alternative<wire::Join>(f.body) ||
         std::holds_alternative<wire::JoinAck>(f.body) ||
         std::holds_alternative<wire::Proof>(f.body) ||
         std::holds_alternative<wire::Ping>(f.body) || std::holds_alternative<wire::Pong>(f.body) ||
         std::holds_alternative<wire::AckRanges>(f.body) ||
         std::holds_alternative<wire::Retry>(f.body);
}

bool is_retry(const wire::Frame& f) {
  return std::holds_alternative<wire::Retry>(f.body);
}

// A destination in the socket's family: an IPv6 socket reaches an IPv4 peer at its mapped
// address (the core's addresses come back as plain IPv4).
asio::ip::udp::endpoint for_socket(const asio::ip::udp::endpoint& to, bool socket_is_v6) {
  if (socket_is_v6 && to.address().is_v4())
    return {asio::ip::make_address_v6(asio::ip::v4_mapped, to.address().to_v4()), to.port()};
  return to;
}

}  // namespace

dg::ConnectionId random_connection_id() {
  dg::ConnectionId id = 0;
  while (id == 0) {
    std::array<wire::Byte, 8> bytes{};
    core::crypto::random_bytes(bytes);
    std::memcpy(&id, bytes.data(), sizeof id);
  }
  return id;
}

struct UdpflowCarrier::Keys {
  dg::PacketProtector send;
  dg::PacketProtector receive;
};

std::shared_ptr<UdpflowCarrier> UdpflowCarrier::make_client(asio::any_io_executor strand,
                                                            std::shared_ptr<UdpSocket> socket,
                                                            const asio::ip::udp::endpoint& remote,
                                                            const UdpflowOptions& options) {
  return std::make_shared<UdpflowCarrier>(Private{}, Side::client, std::move(strand),
                                          std::move(socket), nullptr, random_connection_id(),
                                          random_connection_id(), std::nullopt, remote, options);
}

std::shared_ptr<UdpflowCarrier> UdpflowCarrier::make_server(std::shared_ptr<UdpDemux> demux,
                                                            dg::ConnectionId local_cid,
                                                            dg::ConnectionId peer_cid,
                                                            asio::ip::udp::endpoint peer,
                                                            const UdpflowOptions& options) {
  auto executor = demux->socket().executor();
  std::shared_ptr<UdpSocket> socket(demux, &demux->socket());  // aliases the demux's lifetime
  return std::make_shared<UdpflowCarrier>(Private{}, Side::server, std::move(executor),
                                          std::move(socket), std::move(demux), local_cid, peer_cid,
                                          peer, peer, options);
}

UdpflowCarrier::UdpflowCarrier(Private, Side side, asio::any_io_executor executor,
                               std::shared_ptr<UdpSocket> socket, std::shared_ptr<UdpDemux> demux,
                               dg::ConnectionId local_cid, dg::ConnectionId peer_cid,
                               std::optional<asio::ip::udp::endpoint> peer,
                               const asio::ip::udp::endpoint& remote, const UdpflowOptions& options)
    : side_(side),
      options_(options),
      executor_(std::move(executor)),
      socket_(std::move(socket)),
      demux_(std::move(demux)),
      local_cid_(local_cid),
      remote_(remote),
      route_max_datagram_(side == Side::client ? route_max_udp_payload(remote).value_or(0) : 0),
      peer_address_(format_endpoint(remote)),
      local_address_(format_endpoint(socket_->local_endpoint())),
      peer_(std::move(peer)),
      peer_cid_(peer_cid),
      peer_cid_known_(side == Side::server) {
  // A server path is open from the start: the demux may deliver to it before start() runs.
  if (side_ == Side::server) state_ = State::open;
}

UdpflowCarrier::~UdpflowCarrier() {
  if (side_ == Side::server) {
    if (routed_) demux_->remove_route(local_cid_);
    if (initial_dcid_) demux_->remove_route(*initial_dcid_);
  } else {
    socket_->close();
    if (previous_socket_) previous_socket_->close();
    for (const auto& old : retiring_)
      old->close();
  }
}

std::string UdpflowCarrier::peer_address() const {
  std::lock_guard lock(address_mutex_);
  return peer_address_;
}

std::string UdpflowCarrier::local_address() const {
  std::lock_guard lock(address_mutex_);
  return local_address_;
}

void UdpflowCarrier::set_local_address(const asio::ip::udp::endpoint& local) {
  std::lock_guard lock(address_mutex_);
  local_address_ = format_endpoint(local);
}

void UdpflowCarrier::start(std::weak_ptr<CarrierHandler> handler) {
  set_handler(std::move(handler));
  asio::post(executor_, [self = shared_from_this()] { self->do_start(); });
}

void UdpflowCarrier::set_handler(std::weak_ptr<CarrierHandler> handler) {
  handler_.set(std::move(handler));
}

void UdpflowCarrier::set_flow_key(const FlowKeyBytes& key) {
  if (key_set_.load(std::memory_order_acquire)) return;
  {
    std::lock_guard lock(keys_mutex_);
    flow_key_ = key;
  }
  key_set_.store(true, std::memory_order_release);
}

void UdpflowCarrier::kick() {
  if (kick_pending_.exchange(true, std::memory_order_acq_rel)) return;
  asio::post(executor_, [self = shared_from_this()] {
    self->kick_pending_.store(false, std::memory_order_release);
    self->do_write();
  });
}

void UdpflowCarrier::close() {
  asio::post(executor_, [self = shared_from_this()] { self->do_close(true); });
}

void UdpflowCarrier::abort() {
  asio::post(executor_, [self = shared_from_this()] { self->do_close(false); });
}

bool UdpflowCarrier::route_to_carrier() {
  routed_ = demux_->add_route(
      local_cid_, [weak = weak_from_this()](const ReceivedDatagram& d, const dg::PacketHeader& h) {
        if (auto self = weak.lock()) self->receive(d, h);
      });
  return routed_;
}

bool UdpflowCarrier::route_initial_dcid(dg::ConnectionId initial_dcid) {
  if (initial_dcid == local_cid_ ||
      !demux_->add_route(initial_dcid, [weak = weak_from_this()](const ReceivedDatagram& d,
                                                                 const dg::PacketHeader& h) {
        if (auto self = weak.lock()) self->receive(d, h);
      }))
    return false;
  initial_dcid_ = initial_dcid;
  return true;
}

void UdpflowCarrier::do_start() {
  if (side_ == Side::server) {
    do_write();
    return;
  }
  if (state_ != State::idle) return;
  state_ = State::open;
  read_from(socket_);
  do_write();
}

void UdpflowCarrier::read_from(const std::shared_ptr<UdpSocket>& socket) {
  // The socket is named by address only while it is open: a closed one calls back no more.
  socket->start_reading(
      [weak = weak_from_this(), from = socket.get()](std::span<const ReceivedDatagram> batch) {
        if (auto self = weak.lock()) self->on_batch(batch, from);
      },
      [weak = weak_from_this(), from = socket.get()](error_code ec) {
        if (auto self = weak.lock()) self->on_socket_error(from, ec);
      });
}

void UdpflowCarrier::on_socket_error(const UdpSocket* socket, error_code ec) {
  if (socket == socket_.get()) {
    finish(DownReason::error, ec);
    return;
  }
  // An old socket still read after a move: only what was on its way there is lost.
  if (previous_socket_.get() == socket) {
    previous_socket_->close();
    previous_socket_.reset();
  }
  const auto it = std::find_if(retiring_.begin(), retiring_.end(),
                               [&](const auto& old) { return old.get() == socket; });
  if (it != retiring_.end()) {
    (*it)->close();
    retiring_.erase(it);
  }
}

// ---- moving to a new local address (client) -----------------------------------------------

error_code UdpflowCarrier::migrate_local_address(const std::string& local_host_port) {
  if (side_ == Side::server) return std::make_error_code(std::errc::operation_not_supported);
  const auto local = parse_endpoint(local_host_port);
  if (!local) return std::make_error_code(std::errc::invalid_argument);
  if (local->protocol() != remote_.protocol())
    return std::make_error_code(std::errc::address_family_not_supported);
  if (!can_move_.load(std::memory_order_acquire))
    return std::make_error_code(std::errc::not_connected);
  if (moving_.exchange(true, std::memory_order_acq_rel))
    return std::make_error_code(std::errc::operation_in_progress);
  error_code ec;
  const auto udp_socket = UdpSocket::connect_from(executor_, *local, remote_, options_.socket, ec);
  if (!udp_socket) {
    moving_.store(false, std::memory_order_release);
    return ec;
  }
  const asio::ip::udp::endpoint bound = udp_socket->local_endpoint();
  asio::post(executor_, [self = shared_from_this(), udp_socket, bound] {
    self->start_move(udp_socket, bound);
  });
  return {};
}

void UdpflowCarrier::start_move(std::shared_ptr<UdpSocket> socket,
                                const asio::ip::udp::endpoint& bound) {
  if (state_ != State::open) {
    socket->close();
    moving_.store(false, std::memory_order_release);
    return;
  }
  counters_.local_moves_started.fetch_add(1, std::memory_order_relaxed);
  previous_socket_ = std::exchange(socket_, std::move(socket));
  const std::uint64_t move = ++move_number_;
  set_local_address(bound);
  read_from(socket_);
  if (auto handler = handler_.lock()) handler->on_local_address_moved();
  do_write();
  auto timer = std::make_shared<asio::steady_timer>(executor_, options_.move_timeout);
  timer->async_wait([weak = weak_from_this(), timer, move](error_code) {
    if (auto self = weak.lock()) self->move_timed_out(move);
  });
}

void UdpflowCarrier::complete_move() {
  counters_.local_moves_completed.fetch_add(1, std::memory_order_relaxed);
  if (previous_socket_) retire(std::exchange(previous_socket_, nullptr));
  moving_.store(false, std::memory_order_release);
}

void UdpflowCarrier::move_timed_out(std::uint64_t move) {
  if (move != move_number_ || !moving_.load(std::memory_order_acquire) || state_ != State::open)
    return;
  // The server never answered at the new address: send from the old one again.
  counters_.local_moves_failed.fetch_add(1, std::memory_order_relaxed);
  if (previous_socket_) {
    socket_->close();
    socket_ = std::exchange(previous_socket_, nullptr);
    set_local_address(socket_->local_endpoint());
  }
  moving_.store(false, std::memory_order_release);
}

void UdpflowCarrier::retire(std::shared_ptr<UdpSocket> socket) {
  retiring_.push_back(socket);
  auto linger = std::make_shared<asio::steady_timer>(executor_, options_.move_linger);
  linger->async_wait(
      [weak = weak_from_this(), linger, old = std::weak_ptr<UdpSocket>(socket)](error_code) {
        auto self = weak.lock();
        auto socket = old.lock();
        if (!self || !socket) return;
        const auto it = std::find(self->retiring_.begin(), self->retiring_.end(), socket);
        if (it == self->retiring_.end()) return;
        socket->close();
        self->retiring_.erase(it);
      });
}

// ---- keys ---------------------------------------------------------------------------------

// Derives the path's packet keys once both the flow key and the peer's connection id are known:
// each direction is keyed with the dcid its packets carry (docs/protocol.md §10.4).
bool UdpflowCarrier::derive_keys_locked() {
  if (keys_) return true;
  if (!peer_cid_known_ || !key_set_.load(std::memory_order_acquire)) return false;
  core::crypto::FlowKey key;
  {
    std::lock_guard lock(keys_mutex_);
    key = *flow_key_;
  }
  using core::crypto::PacketDirection;
  const PacketDirection out =
      side_ == Side::client ? PacketDirection::client_to_server : PacketDirection::server_to_client;
  const PacketDirection in =
      side_ == Side::client ? PacketDirection::server_to_client : PacketDirection::client_to_server;
  keys_ = std::make_unique<Keys>(
      Keys{dg::PacketProtector(core::crypto::derive_packet_keys(key, out, peer_cid_)),
           dg::PacketProtector(core::crypto::derive_packet_keys(key, in, local_cid_))});
  return true;
}

// ---- receiving ----------------------------------------------------------------------------

void UdpflowCarrier::on_batch(std::span<const ReceivedDatagram> batch, const UdpSocket* from) {
  // The first datagram on a new socket: the server sends there (a challenge first); the old
  // socket is read a little longer for what was already on its way to it.
  if (previous_socket_ && from == socket_.get()) complete_move();
  for (const ReceivedDatagram& d : batch) {
    dg::PacketHeader header;
    if (dg::parse_header(d.bytes, header) != dg::PacketError::none) {
      counters_.dropped_malformed.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    accept_datagram(d, header);
    if (packet_refs_.size() >= kPacketsPerDelivery) deliver_packets();
  }
  deliver_packets();
}

void UdpflowCarrier::receive(const ReceivedDatagram& datagram, const dg::PacketHeader& header) {
  accept_datagram(datagram, header);
  if (packet_refs_.size() >= kPacketsPerDelivery) {
    deliver_packets();
    return;
  }
  // The demux hands over one datagram at a time; the session gets them as one batch once the
  // demux's receive batch is done (the post runs after it on the same strand), so a burst costs
  // one session round, not one per packet. The packets hold their blocks (Slices) meanwhile.
  if (packet_refs_.empty() || delivery_posted_) return;
  delivery_posted_ = true;
  asio::post(executor_, [self = shared_from_this()] {
    self->delivery_posted_ = false;
    self->deliver_packets();
  });
}

void UdpflowCarrier::accept_datagram(const ReceivedDatagram& d, const dg::PacketHeader& h) {
  if (state_ != State::open) return;
  const bool initial =
      initial_dcid_ && h.dcid == *initial_dcid_ && h.kind == dg::PacketKind::handshake;
  if (h.dcid != local_cid_ && !initial) {
    counters_.dropped_wrong_dcid.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const std::uint64_t pn = dg::reconstruct_pn(largest_received_, h.truncated_pn);
  wire::MutableBytes payload;
  if (h.kind == dg::PacketKind::protected_) {
    if (!derive_keys_locked()) {
      counters_.dropped_no_keys.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (keys_->receive.open(h, pn, d.bytes, payload) != dg::PacketError::none) {
      counters_.dropped_auth_failed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (!peer_protected_seen_) {
      peer_protected_seen_ = true;
      if (side_ == Side::client) can_move_.store(true, std::memory_order_release);
    }
  } else {
    if (peer_protected_seen_) {
      // The handshake is over: frames in clear now could come from anyone who saw the id.
      counters_.dropped_clear_frames.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    payload = d.bytes.subspan(h.size);
  }

  const std::size_t first = frames_.size();
  bool ok = !payload.empty();
  for (std::size_t offset = 0; ok && offset < payload.size();) {
    wire::Frame& frame = frames_.emplace_back();
    const wire::DecodeResult r =
        wire::decode(wire::ConstBytes(payload.data() + offset, payload.size() - offset), frame);
    if (r.error != wire::DecodeError::none) {
      counters_.dropped_malformed.fetch_add(1, std::memory_order_relaxed);
      ok = false;
    } else if (h.kind == dg::PacketKind::handshake && !allowed_in_clear(frame)) {
      counters_.dropped_clear_frames.fetch_add(1, std::memory_order_relaxed);
      ok = false;
    }
    offset += r.consumed;
  }
  if (!ok) {
    frames_.resize(first);
    return;
  }
  const bool retry =
      std::any_of(frames_.begin() + static_cast<std::ptrdiff_t>(first), frames_.end(), is_retry);
  if (h.kind == dg::PacketKind::handshake && side_ == Side::client && !peer_cid_known_ && !retry) {
    // The server's first answer names its id for the path: our packets carry it from now on.
    // Not a RETRY's: the listener keeps no state for it, and the path it then opens has its own.
    peer_cid_ = h.scid;
    peer_cid_known_ = true;
  }
  largest_received_ = std::max(largest_received_.value_or(0), pn);
  counters_.packets_received.fetch_add(1, std::memory_order_relaxed);
  const std::size_t offset = d.offset + static_cast<std::size_t>(payload.data() - d.bytes.data());
  packet_refs_.push_back({pn, first, frames_.size() - first,
                          wire::Slice(d.block, offset, payload.size()), d.source, d.bytes.size()});
}

void UdpflowCarrier::deliver_packets() {
  if (packet_refs_.empty()) return;
  auto handler = handler_.lock();
  if (handler) {
    packets_.clear();
    for (const PacketRef& r : packet_refs_) {
      packets_.push_back(
          ReceivedPacket{r.number, std::span<const wire::Frame>(frames_).subspan(r.first, r.count),
                         r.backing, r.source, r.size});
    }
    handler->on_packets(packets_);
    packets_.clear();
  }
  packet_refs_.clear();
  frames_.clear();
  if (!handler && state_ == State::open) do_close(false);  // nobody wants this path any more
}

// ---- sending ------------------------------------------------------------------------------

void UdpflowCarrier::do_write() {
  if (state_ != State::open || waiting_writable_) return;
  flush_unsent();
  if (waiting_writable_) return;
  if (!send_probes()) return;
  for (int round = 0; round < options_.pulls_per_turn; ++round) {
    auto handler = handler_.lock();
    if (!handler) return;  // a server path before set_handler, or a path nobody wants
    out_.reset(options_.packets_per_pull * options_.max_packet_payload);
    std::optional<asio::ip::udp::endpoint> to;
    (void)handler->pull_datagrams(out_, to);
    handler.reset();
    set_destination(to);
    if (out_.packets().empty()) {
      out_.clear();
      return;
    }
    send_to_ = peer_;
    seal_batch();
    out_.clear();  // releases the payload slices
    flush_unsent();
    if (waiting_writable_ || state_ != State::open) return;
  }
  // More may be waiting: let reads run first.
  kick();
}

bool UdpflowCarrier::send_probes() {
  // Bounded per turn: the core owes a few at most (capped candidates and responses).
  for (int i = 0; i < 8; ++i) {
    auto handler = handler_.lock();
    if (!handler) return true;
    out_.reset(options_.max_packet_payload);
    std::optional<asio::ip::udp::endpoint> to;
    const bool any = handler->pull_probe(out_, to);
    handler.reset();
    if (!any || out_.packets().empty()) {
      out_.clear();
      return true;
    }
    // A probe goes where the core says: a candidate address of the peer (challenge), the source
    // of a challenge (response), or the path's peer.
    if (to) {
      send_to_ = for_socket(*to, socket_->is_v6());
    } else {
      send_to_ = peer_;
    }
    seal_batch();
    out_.clear();
    counters_.probes_sent.fetch_add(1, std::memory_order_relaxed);
    flush_unsent();
    if (waiting_writable_ || state_ != State::open) return false;
  }
  return true;
}

void UdpflowCarrier::set_destination(const std::optional<asio::ip::udp::endpoint>& to) {
  if (side_ != Side::server || !to) return;
  const asio::ip::udp::endpoint destination = for_socket(*to, socket_->is_v6());
  if (peer_ && *peer_ == destination) return;
  peer_ = destination;
  counters_.peer_moves.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(address_mutex_);
  peer_address_ = format_endpoint(*to);
}

void UdpflowCarrier::seal_batch() {
  derive_keys_locked();
  const auto packets = out_.packets();
  // Sized for the batch once and kept: sealing writes every byte it sends, so nothing is cleared.
  std::size_t need = 0;
  for (const auto& packet : packets)
    need += packet.bytes + dg::kHandshakeHeaderSize + dg::kTagSize;
  if (send_capacity_ < need) {
    send_buffer_ = std::make_unique_for_overwrite<wire::Byte[]>(need);
    send_capacity_ = need;
  }
  send_sizes_.clear();
  send_used_ = 0;
  unsent_offset_ = 0;
  unsent_index_ = 0;
  for (const auto& packet : packets) {
    const std::size_t n = seal_packet(
        packet, wire::MutableBytes(send_buffer_.get() + send_used_, send_capacity_ - send_used_));
    if (n == 0) continue;
    send_used_ += n;
    send_sizes_.push_back(n);
  }
}

std::size_t UdpflowCarrier::seal_packet(const wire::TransmitBatch::Packet& packet,
                                        wire::MutableBytes room) {
  const auto frames = out_.frames_of(packet);
  const bool clear = !keys_ || std::any_of(frames.begin(), frames.end(),
                                           [](const auto& f) { return needs_clear(f); });
  counters_.packets_sent.fetch_add(1, std::memory_order_relaxed);
  if (clear) {
    counters_.handshake_packets_sent.fetch_add(1, std::memory_order_relaxed);
    return write_clear_packet(frames, packet.number, room);
  }
  // Encrypted straight from where the frames are (the DATA payloads in the sender's buffer) into
  // the datagram: each payload byte is read once and written once, never copied first.
  plaintext_.clear();
  for (const wire::OutFrame& f : frames) {
    plaintext_.push_back(f.header_bytes());
    if (!f.payload.empty()) plaintext_.push_back(f.payload.bytes());
  }
  return keys_->send.seal_gathered(peer_cid_, packet.number, plaintext_, room);
}

std::size_t UdpflowCarrier::write_clear_packet(std::span<const wire::OutFrame> frames,
                                               std::uint64_t number, wire::MutableBytes room) {
  const std::size_t header = dg::encode_handshake_header(peer_cid_, local_cid_, number, room);
  if (header == 0) return 0;
  wire::Byte* p = room.data() + header;
  for (const wire::OutFrame& f : frames) {
    if (static_cast<std::size_t>(room.data() + room.size() - p) < f.size()) return 0;
    std::memcpy(p, f.header.data(), f.header_size);
    p += f.header_size;
    if (!f.payload.empty()) {
      std::memcpy(p, f.payload.data(), f.payload.size());
      p += f.payload.size();
    }
  }
  return static_cast<std::size_t>(p - room.data());
}

void UdpflowCarrier::flush_unsent() {
  const asio::ip::udp::endpoint* destination = send_to_ ? &*send_to_ : nullptr;
  while (unsent_index_ < send_sizes_.size()) {
    const auto sizes = std::span<const std::size_t>(send_sizes_).subspan(unsent_index_);
    const SendResult r = socket_->send(
        wire::ConstBytes(send_buffer_.get() + unsent_offset_, send_used_ - unsent_offset_), sizes,
        destination);
    for (std::size_t i = 0; i < r.datagrams; ++i)
      unsent_offset_ += send_sizes_[unsent_index_++];
    if (!r.error) continue;
    if (r.error == asio::error::would_block ||
        r.error == std::errc::resource_unavailable_try_again) {
      waiting_writable_ = true;
      socket_->async_wait_writable([self = shared_from_this()](error_code ec) {
        self->waiting_writable_ = false;
        if (!ec) self->do_write();
      });
      return;
    }
    // UDP is lossy anyway: a datagram the kernel refused (an ICMP error queued on a connected
    // socket, no route) is lost, and the core's loss recovery sends its frames again. One larger
    // than the route's MTU (DF is set) is a path-MTU probe too big for the path: lost too.
    if (r.error == std::errc::message_size) {
      counters_.dropped_too_big.fetch_add(1, std::memory_order_relaxed);
    } else {
      counters_.send_errors.fetch_add(1, std::memory_order_relaxed);
    }
    if (unsent_index_ < send_sizes_.size()) unsent_offset_ += send_sizes_[unsent_index_++];
  }
  send_used_ = 0;
  send_sizes_.clear();
  unsent_offset_ = 0;
  unsent_index_ = 0;
}

void UdpflowCarrier::send_handshake_frames(std::span<const wire::OutFrame> frames) {
  std::vector<wire::Byte> buffer(dg::kHandshakeHeaderSize);
  for (const wire::OutFrame& f : frames) {
    buffer.insert(buffer.end(), f.header.begin(), f.header.begin() + f.header_size);
    buffer.insert(buffer.end(), f.payload.data(), f.payload.data() + f.payload.size());
  }
  dg::encode_handshake_header(peer_cid_, local_cid_, next_handshake_pn_++,
                              wire::MutableBytes(buffer.data(), dg::kHandshakeHeaderSize));
  const std::size_t size = buffer.size();
  (void)socket_->send(wire::ConstBytes(buffer.data(), size), std::span<const std::size_t>(&size, 1),
                      peer_ ? &*peer_ : nullptr);
  counters_.handshake_packets_sent.fetch_add(1, std::memory_order_relaxed);
}

// ---- closing ------------------------------------------------------------------------------

void UdpflowCarrier::do_close(bool graceful) {
  if (state_ == State::closed) return;
  if (graceful && state_ == State::open && !waiting_writable_) flush_unsent();
  finish(DownReason::closed, {});
}

void UdpflowCarrier::finish(DownReason reason, error_code ec) {
  if (state_ == State::closed) return;
  const bool started = state_ == State::open;
  state_ = State::closed;
  if (side_ == Side::server) {
    if (routed_) demux_->remove_route(local_cid_);
    if (initial_dcid_) demux_->remove_route(*initial_dcid_);
    routed_ = false;
    initial_dcid_.reset();
  } else {
    socket_->close();
    if (previous_socket_) previous_socket_->close();
    previous_socket_.reset();
    for (const auto& old : retiring_)
      old->close();
    retiring_.clear();
    can_move_.store(false, std::memory_order_release);
  }
  const auto handler = handler_.take();
  if (handler && started) handler->on_down(reason, ec, wire::DecodeError::none);
}

// ---- dialing ------------------------------------------------------------------------------

void UdpflowTransport::async_dial(asio::any_io_executor executor, const std::string& host,
                                  std::uint16_t port, DialCallback done) {
  auto strand = asio::make_strand(executor);
  auto resolver = std::make_shared<asio::ip::udp::resolver>(strand);
  resolver->async_resolve(
      host, std::to_string(port), asio::ip::resolver_base::numeric_service,
      [resolver, strand, options = options_, done = std::move(done)](
          error_code ec, asio::ip::udp::resolver::results_type results) {
        if (!ec && results.empty()) ec = asio::error::host_not_found;
        if (ec) {
          done(ec, nullptr);
          return;
        }
        std::shared_ptr<UdpSocket> socket;
        try {
          socket = UdpSocket::connect(strand, results.begin()->endpoint(), options.socket);
        } catch (const system_error& e) {
          done(e.code(), nullptr);
          return;
        }
        done({}, UdpflowCarrier::make_client(strand, std::move(socket), results.begin()->endpoint(),
                                             options));
      });
}

}  // namespace rendr::carrier::udp

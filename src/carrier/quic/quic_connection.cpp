#include "carrier/quic/quic_connection.hpp"

#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include <asio/post.hpp>

#include "carrier/quic/quic_error.hpp"
#include "carrier/quic/quic_server.hpp"
#include "carrier/udp/endpoint_text.hpp"
#include "carrier/udp/route_mtu.hpp"

namespace rendr::carrier {

namespace {

constexpr std::size_t kCidLength = 16;
constexpr std::size_t kMaxPacketsPerFlush = 64;
constexpr int kBatchesPerRead = 8;  // recvmmsg batches before answering
constexpr std::size_t kMaxUdpPayload = 65527;
// A whole DATA frame (the core's default max_data_payload), and the congestion window from
// which a pull's budget is at least one (four of them: a whole frame then needs a quarter of
// the window, never several round trips; see pull_frames).
constexpr std::size_t kWholeFrameBytes = 64 * 1024;
constexpr std::uint64_t kWholeFrameWindow = 4 * kWholeFrameBytes;
// DATAGRAM frames we accept (RFC 9221 max_datagram_frame_size): any that fits a packet.
constexpr std::uint64_t kMaxDatagramFrameSize = 65535;
// What a 1-RTT packet with one DATAGRAM frame adds to its data, at most: the short header (1),
// a destination connection id (up to 20), the packet number (up to 4), the AEAD tag (16), and
// the frame's type (1) and length (2: any size up to 16383).
constexpr std::size_t kShortHeaderMax = 1 + 20 + 4 + 16;
constexpr std::size_t kDatagramFrameHeader = 1 + 2;
// Received datagrams' frames are kept in blocks of this size (a block handed to the flow is
// never written again; a small one bounds what one held message pins).
constexpr std::size_t kDatagramBlockSize = 16 * 1024;
// How often a read that brought only acknowledgements tells the flow (report_acknowledged).
constexpr ngtcp2_duration kAcknowledgedReportInterval = NGTCP2_MILLISECONDS;

ngtcp2_tstamp timestamp() {
  return static_cast<ngtcp2_tstamp>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

std::uint64_t to_ns(std::chrono::milliseconds ms) {
  return static_cast<std::uint64_t>(ms.count()) * NGTCP2_MILLISECONDS;
}

std::string format_endpoint(const asio::ip::udp::endpoint& ep) {
  const auto address = ep.address();
  std::string host = address.to_string();
  if (address.is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}

ngtcp2_addr to_addr(const asio::ip::udp::endpoint& ep) {
  return {const_cast<ngtcp2_sockaddr*>(reinterpret_cast<const ngtcp2_sockaddr*>(ep.data())),
          static_cast<ngtcp2_socklen>(ep.size())};
}

asio::ip::udp::endpoint from_addr(const ngtcp2_addr& addr) {
  asio::ip::udp::endpoint ep;
  std::memcpy(ep.data(), addr.addr, std::min<std::size_t>(addr.addrlen, sizeof(sockaddr_in6)));
  ep.resize(addr.addrlen);
  return ep;
}

void fill_random(std::uint8_t* dest, std::size_t size) {
  (void)gnutls_rnd(GNUTLS_RND_RANDOM, dest, size);
}

std::string cid_key(const std::uint8_t* data, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

bool sole_owner(const wire::BlockPtr& block) {
#if defined(__SANITIZE_THREAD__)
  (void)block;
  return false;
#else
  if (block.use_count() != 1) return false;
  std::atomic_thread_fence(std::memory_order_acquire);
  return true;
#endif
}

QuicConnection* self_of(void* user_data) {
  return static_cast<QuicConnection*>(user_data);
}

// ---- ngtcp2 callbacks -------------------------------------------------------------------------

int cb_recv_stream_data(ngtcp2_conn*, uint32_t, int64_t stream_id, uint64_t, const uint8_t* data,
                        size_t datalen, void* user_data, void*) {
  return self_of(user_data)->on_stream_data(stream_id, data, datalen);
}

int cb_acked_stream_data_offset(ngtcp2_conn*, int64_t stream_id, uint64_t offset, uint64_t datalen,
                                void* user_data, void*) {
  return self_of(user_data)->on_acked(stream_id, offset, datalen);
}

int cb_handshake_completed(ngtcp2_conn*, void* user_data) {
  self_of(user_data)->on_handshake_completed();
  return 0;
}

int cb_stream_close(ngtcp2_conn*, uint32_t, int64_t stream_id, uint64_t, void* user_data, void*) {
  self_of(user_data)->on_stream_gone(stream_id);
  return 0;
}

int cb_stream_reset(ngtcp2_conn*, int64_t stream_id, uint64_t, uint64_t, void* user_data, void*) {
  self_of(user_data)->on_stream_gone(stream_id);
  return 0;
}

int cb_stream_stop_sending(ngtcp2_conn*, int64_t stream_id, uint64_t, void* user_data, void*) {
  self_of(user_data)->on_stream_gone(stream_id);
  return 0;
}

int cb_extend_max_stream_data(ngtcp2_conn*, int64_t, uint64_t, void* user_data, void*) {
  self_of(user_data)->on_stream_window();
  return 0;
}

void cb_rand(uint8_t* dest, size_t destlen, const ngtcp2_rand_ctx*) {
  fill_random(dest, destlen);
}

int cb_get_new_connection_id(ngtcp2_conn*, ngtcp2_cid* cid, uint8_t* token, size_t cidlen,
                             void* user_data) {
  return self_of(user_data)->on_new_connection_id(cid, token, cidlen);
}

int cb_remove_connection_id(ngtcp2_conn*, const ngtcp2_cid* cid, void* user_data) {
  return self_of(user_data)->on_remove_connection_id(cid);
}

int cb_path_validation(ngtcp2_conn*, uint32_t, const ngtcp2_path* path,
                       ngtcp2_path_validation_result result, void* user_data) {
  self_of(user_data)->on_path_validation(*path, result);
  return 0;
}

int cb_recv_datagram(ngtcp2_conn*, uint32_t, const uint8_t* data, size_t datalen, void* user_data) {
  return self_of(user_data)->on_datagram(data, datalen);
}

int cb_ack_datagram(ngtcp2_conn*, uint64_t dgram_id, void* user_data) {
  self_of(user_data)->on_datagram_fate(dgram_id, QuicConnection::DatagramFate::acked);
  return 0;
}

int cb_lost_datagram(ngtcp2_conn*, uint64_t dgram_id, void* user_data) {
  self_of(user_data)->on_datagram_fate(dgram_id, QuicConnection::DatagramFate::lost);
  return 0;
}

ngtcp2_conn* get_conn(ngtcp2_crypto_conn_ref* ref) {
  return static_cast<QuicConnection*>(ref->user_data)->native();
}

ngtcp2_callbacks make_callbacks(bool server) {
  ngtcp2_callbacks cb{};
  if (server) {
    cb.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
  } else {
    cb.client_initial = ngtcp2_crypto_client_initial_cb;
    cb.recv_retry = ngtcp2_crypto_recv_retry_cb;
  }
  cb.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  cb.handshake_completed = cb_handshake_completed;
  cb.encrypt = ngtcp2_crypto_encrypt_cb;
  cb.decrypt = ngtcp2_crypto_decrypt_cb;
  cb.hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb.recv_stream_data = cb_recv_stream_data;
  cb.acked_stream_data_offset = cb_acked_stream_data_offset;
  cb.stream_close = cb_stream_close;
  cb.stream_reset = cb_stream_reset;
  cb.stream_stop_sending = cb_stream_stop_sending;
  cb.extend_max_stream_data = cb_extend_max_stream_data;
  cb.rand = cb_rand;
  cb.get_new_connection_id = cb_get_new_connection_id;
  cb.remove_connection_id = cb_remove_connection_id;
  cb.update_key = ngtcp2_crypto_update_key_cb;
  cb.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
  cb.path_validation = cb_path_validation;
  cb.version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  cb.recv_datagram = cb_recv_datagram;
  cb.ack_datagram = cb_ack_datagram;
  cb.lost_datagram = cb_lost_datagram;
  return cb;
}

}  // namespace

udp::UdpSocketOptions quic_socket_options(const QuicOptions& options) {
  udp::UdpSocketOptions o;
  o.receive_buffer = static_cast<int>(options.socket_buffer);
  o.send_buffer = static_cast<int>(options.socket_buffer);
  o.max_datagram = kMaxUdpPayload;  // without GRO; any QUIC packet fits
  o.max_gso_segments = kMaxPacketsPerFlush;
  return o;
}

// ---- construction -----------------------------------------------------------------------------

QuicConnection::QuicConnection(QuicStrand strand, const QuicOptions& options,
                               std::string peer_address)
    : options_(options),
      strand_(std::move(strand)),
      timer_(strand_),
      peer_address_(std::move(peer_address)) {
  conn_ref_.get_conn = get_conn;
  conn_ref_.user_data = this;
}

QuicConnection::~QuicConnection() {
  if (conn_ != nullptr) ngtcp2_conn_del(conn_);
}

void QuicConnection::fill_settings(ngtcp2_settings& settings,
                                   ngtcp2_transport_params& params) const {
  ngtcp2_settings_default(&settings);
  settings.initial_ts = timestamp();
  settings.cc_algo = NGTCP2_CC_ALGO_CUBIC;
  settings.max_window = options_.max_window;
  settings.max_stream_window = options_.max_window;
  settings.handshake_timeout = to_ns(options_.handshake_timeout);
  ngtcp2_transport_params_default(&params);
  params.initial_max_stream_data_bidi_local = options_.stream_window;
  params.initial_max_stream_data_bidi_remote = options_.stream_window;
  params.initial_max_data = options_.connection_window;
  // One stream: the rendr stream, opened by the client. A peer cannot open more.
  params.initial_max_streams_bidi = is_server_ ? 1 : 0;
  params.initial_max_streams_uni = 0;
  params.max_idle_timeout = to_ns(options_.idle_timeout);
  params.max_ack_delay = to_ns(options_.max_ack_delay);
  params.active_connection_id_limit = std::max<std::size_t>(options_.connection_ids, 2);
  // A packet flow's messages travel one per DATAGRAM (a stream flow sends none).
  params.max_datagram_frame_size = kMaxDatagramFrameSize;
  if (udp::is_same_host(local_, remote_)) {
    const std::size_t size =
        std::max<std::size_t>(std::min(udp::route_max_udp_payload(remote_).value_or(0),
                                       options_.same_host_max_udp_payload),
                              NGTCP2_MAX_UDP_PAYLOAD_SIZE);
    // The peer sends no larger either: a client's limit is the whole path's.
    params.max_udp_payload_size = size;
    if (size > NGTCP2_MAX_UDP_PAYLOAD_SIZE) {
      settings.max_tx_udp_payload_size = size;
      settings.no_tx_udp_payload_size_shaping = 1;
    }
  }
}

std::shared_ptr<QuicConnection> QuicConnection::make_client(
    QuicStrand strand, asio::ip::udp::socket socket, std::shared_ptr<TlsCredentials> credentials,
    const TlsClientConfig& tls, const std::string& host, const QuicOptions& options,
    Established done, error_code& ec) {
  error_code ignored;
  const auto remote = socket.remote_endpoint(ignored);
  std::shared_ptr<QuicConnection> c(
      new QuicConnection(std::move(strand), options, format_endpoint(remote)));
  c->established_ = std::move(done);
  ec = c->init_client(std::move(socket), std::move(credentials), tls, host);
  if (ec) return nullptr;
  c->start_receive(c->socket_, c->local_);
  c->flush();  // the first Initial
  return c;
}

error_code QuicConnection::init_client(asio::ip::udp::socket socket,
                                       std::shared_ptr<TlsCredentials> credentials,
                                       const TlsClientConfig& tls, const std::string& host) {
  error_code ec;
  local_ = socket.local_endpoint(ec);
  if (!ec) remote_ = socket.remote_endpoint(ec);
  if (ec) return ec;
  try {
    socket_ = std::make_shared<udp::UdpSocket>(std::move(socket), quic_socket_options(options_));
  } catch (const system_error& e) {
    return e.code();
  }

  ngtcp2_cid scid, dcid;
  scid.datalen = kCidLength;
  fill_random(scid.data, scid.datalen);
  dcid.datalen = kCidLength;
  fill_random(dcid.data, dcid.datalen);
  ngtcp2_settings settings;
  ngtcp2_transport_params params;
  fill_settings(settings, params);
  const ngtcp2_callbacks callbacks = make_callbacks(false);
  const ngtcp2_path path{to_addr(local_), to_addr(remote_), nullptr};
  if (ngtcp2_conn_client_new(&conn_, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &callbacks,
                             &settings, &params, memory_.mem(), this) != 0) {
    return quic_errc::transport_error;
  }
  if (auto e = tls_.init_client(*credentials, tls, host, options_.alpn, &conn_ref_)) return e;
  ngtcp2_conn_set_tls_native_handle(conn_, tls_.native());
  return {};
}

std::shared_ptr<QuicConnection> QuicConnection::make_server(
    QuicStrand strand, std::shared_ptr<QuicServerSocket> server, const ngtcp2_pkt_hd& hd,
    const asio::ip::udp::endpoint& local, const asio::ip::udp::endpoint& remote,
    std::shared_ptr<TlsCredentials> credentials, const QuicOptions& options, Established done,
    error_code& ec) {
  std::shared_ptr<QuicConnection> c(
      new QuicConnection(std::move(strand), options, format_endpoint(remote)));
  c->established_ = std::move(done);
  ec = c->init_server(std::move(server), hd, local, remote, std::move(credentials));
  if (ec) return nullptr;
  return c;
}

error_code QuicConnection::init_server(std::shared_ptr<QuicServerSocket> server,
                                       const ngtcp2_pkt_hd& hd,
                                       const asio::ip::udp::endpoint& local,
                                       const asio::ip::udp::endpoint& remote,
                                       std::shared_ptr<TlsCredentials> credentials) {
  is_server_ = true;
  socket_ = server->socket();
  server_ = std::move(server);
  local_ = local;
  remote_ = remote;
  ngtcp2_cid scid;
  scid.datalen = kCidLength;
  fill_random(scid.data, scid.datalen);
  ngtcp2_settings settings;
  ngtcp2_transport_params params;
  fill_settings(settings, params);
  settings.token = hd.token;
  params.original_dcid = hd.dcid;
  params.stateless_reset_token_present = 1;
  fill_random(params.stateless_reset_token, sizeof params.stateless_reset_token);
  const ngtcp2_callbacks callbacks = make_callbacks(true);
  const ngtcp2_path path{to_addr(local_), to_addr(remote_), nullptr};
  if (ngtcp2_conn_server_new(&conn_, &hd.scid, &scid, &path, hd.version, &callbacks, &settings,
                             &params, memory_.mem(), this) != 0) {
    return quic_errc::transport_error;
  }
  if (auto e = tls_.init_server(*credentials, &conn_ref_)) return e;
  ngtcp2_conn_set_tls_native_handle(conn_, tls_.native());
  // The client keeps using the destination id it chose until it hears from us.
  cids_.push_back(cid_key(hd.dcid.data, hd.dcid.datalen));
  cids_.push_back(cid_key(scid.data, scid.datalen));
  return {};
}

std::vector<std::string> QuicConnection::connection_ids() const {
  return cids_;
}

int QuicConnection::on_new_connection_id(ngtcp2_cid* cid, std::uint8_t* token, std::size_t cidlen) {
  cid->datalen = cidlen;
  fill_random(cid->data, cidlen);
  fill_random(token, NGTCP2_STATELESS_RESET_TOKENLEN);
  if (is_server_) {
    cids_.push_back(cid_key(cid->data, cid->datalen));
    if (auto server = server_.lock()) server->route(cids_.back(), shared_from_this());
  }
  return 0;
}

int QuicConnection::on_remove_connection_id(const ngtcp2_cid* cid) {
  if (!is_server_) return 0;
  const std::string key = cid_key(cid->data, cid->datalen);
  std::erase(cids_, key);
  if (auto server = server_.lock()) server->unroute(key);
  return 0;
}

// ---- public entry points ----------------------------------------------------------------------

void QuicConnection::start(std::weak_ptr<CarrierHandler> handler) {
  handler_.set(std::move(handler));
  asio::post(strand_, [self = shared_from_this()] { self->do_start(); });
}

void QuicConnection::set_handler(std::weak_ptr<CarrierHandler> handler) {
  handler_.set(std::move(handler));
}

void QuicConnection::kick() {
  if (kick_pending_.exchange(true, std::memory_order_acq_rel)) return;
  asio::post(strand_, [self = shared_from_this()] {
    self->kick_pending_.store(false, std::memory_order_release);
    self->flush();
  });
}

void QuicConnection::close() {
  asio::post(strand_, [self = shared_from_this()] { self->do_close(); });
}

void QuicConnection::abort() {
  asio::post(strand_, [self = shared_from_this()] { self->do_abort(); });
}

void QuicConnection::do_start() {
  if (started_ || state_ == State::finished) return;
  started_ = true;
  if (state_ == State::ready) state_ = State::open;
  deliver_frames();  // what arrived before start()
  deliver_datagrams();
  flush();
}

// ---- input ------------------------------------------------------------------------------------

void QuicConnection::start_receive(const std::shared_ptr<udp::UdpSocket>& socket,
                                   const asio::ip::udp::endpoint& local) {
  socket->async_wait_readable([self = shared_from_this(), socket, local](error_code ec) {
    self->on_readable(socket, local, ec);
  });
}

void QuicConnection::on_readable(const std::shared_ptr<udp::UdpSocket>& socket,
                                 const asio::ip::udp::endpoint& local, error_code ec) {
  if (state_ == State::finished || ec == asio::error::operation_aborted) return;
  // Drain what is queued (a few batches) before answering, then wait again; a socket still
  // busy after that is read again after the other handlers on the strand had their turn.
  enum class Next { wait, read_again, stop } next = Next::read_again;
  for (int i = 0; i < kBatchesPerRead && next == Next::read_again; ++i) {
    error_code rec;
    const auto batch = socket->receive(rec);
    for (const udp::ReceivedDatagram& d : batch) {
      read_packet(d.bytes.data(), d.bytes.size(), local, d.source);
      if (state_ == State::finished) return;
    }
    // ICMP errors (connection refused) surface here on a connected UDP socket: QUIC's timers
    // decide when the path is dead, so only a closed (retired) or failed socket stops reading.
    if (batch.empty() && rec != std::errc::connection_refused)
      next = rec == asio::error::would_block ? Next::wait : Next::stop;
  }
  after_datagrams();
  if (state_ == State::finished) return;
  if (next == Next::wait) {
    start_receive(socket, local);
  } else if (next == Next::read_again) {
    asio::post(strand_, [self = shared_from_this(), socket, local] {
      self->on_readable(socket, local, {});
    });
  }
}

void QuicConnection::on_datagram(const std::uint8_t* data, std::size_t size,
                                 const asio::ip::udp::endpoint& from) {
  read_packet(data, size, local_, from);
}

void QuicConnection::after_datagrams() {
  if (state_ == State::finished) return;
  check_established();
  if (is_server_) follow_peer();
  try_migration();  // one waiting for a confirmed handshake or a spare connection id
  report_acknowledged(deliver_frames());
  if (state_ == State::finished) return;
  deliver_datagrams();
  flush();
}

void QuicConnection::read_packet(const std::uint8_t* data, std::size_t size,
                                 const asio::ip::udp::endpoint& local,
                                 const asio::ip::udp::endpoint& from) {
  if (state_ == State::finished || conn_ == nullptr) return;
  counters_.packets_received.fetch_add(1, std::memory_order_relaxed);
  const ngtcp2_path path{to_addr(local), to_addr(from), nullptr};
  ngtcp2_pkt_info pi{};
  ngtcp2_conn_stat before;
  ngtcp2_conn_get_conn_stat(conn_, &before);
  const int rv = ngtcp2_conn_read_pkt(conn_, &path, &pi, data, size, timestamp());
  if (rv == 0) {
    // Only an ACK takes bytes out of flight during a read (acknowledged, or declared lost below
    // an acknowledged packet): the peer has packets of ours that it had not acknowledged.
    ngtcp2_conn_stat after;
    ngtcp2_conn_get_conn_stat(conn_, &after);
    if (after.bytes_in_flight < before.bytes_in_flight) acknowledged_ = true;
    if (stream_error_) fail(DownReason::reset, stream_error_, wire::DecodeError::none, true);
    return;
  }
  switch (rv) {
    case NGTCP2_ERR_DRAINING:
      peer_closed();
      return;
    case NGTCP2_ERR_DROP_CONN:
      fail(DownReason::error, quic_errc::transport_error, wire::DecodeError::none, false);
      return;
    case NGTCP2_ERR_CRYPTO:
      fail(DownReason::error, tls_.failure_reason(), wire::DecodeError::none, true);
      return;
    default:
      fail_with_liberr(rv);
      return;
  }
}

void QuicConnection::check_established() {
  if (state_ != State::handshake || !handshake_completed_) return;
  if (!is_server_) {
    if (ngtcp2_conn_open_bidi_stream(conn_, &stream_id_, nullptr) != 0) {
      fail(DownReason::error, quic_errc::transport_error, wire::DecodeError::none, true);
      return;
    }
  }
  state_ = started_ ? State::open : State::ready;
  if (!is_server_) can_migrate_.store(true, std::memory_order_release);
  update_datagram_room();
  set_addresses();
  if (auto done = std::move(established_)) {
    established_ = nullptr;
    done({}, shared_from_this());
  }
}

int QuicConnection::on_stream_data(std::int64_t stream_id, const std::uint8_t* data,
                                   std::size_t size) {
  // The server adopts the client's (only possible) stream.
  if (stream_id_ < 0 && is_server_) stream_id_ = stream_id;
  if (stream_id != stream_id_) return 0;
  counters_.stream_bytes_received.fetch_add(size, std::memory_order_relaxed);
  const std::size_t used = block_ ? block_->used : 0;
  if (!block_ || block_->capacity - used < size) {
    // Undelivered bytes move into a block large enough for them and this data, at least twice
    // the old one: frames are decoded only after a batch of datagrams (hundreds under GRO), and
    // growing by one datagram at a time copied the undelivered bytes once per datagram
    // (quadratic: a client stalled for seconds behind a burst and its path was declared dead).
    const std::size_t capacity = block_ ? 2 * block_->capacity : options_.read_block_size;
    auto fresh = wire::make_block(std::max(capacity, used + size));
    if (used > 0) std::memcpy(fresh->data.get(), block_->data.get(), used);
    fresh->used = used;
    block_ = std::move(fresh);
  }
  std::memcpy(block_->data.get() + block_->used, data, size);
  block_->used += size;
  return 0;
}

void QuicConnection::on_stream_gone(std::int64_t stream_id) {
  if (stream_id == stream_id_ && state_ != State::closing && state_ != State::finished)
    stream_error_ = quic_errc::stream_reset;
}

// While QUIC repairs a loss, the stream holds the peer's frames back (for a whole window when
// a NAT rebinding lost the packets sent to the old address), and the path would look silent to
// the flow although both directions work; this says they do. At most once a millisecond: a
// sender whose reads bring only ACKs (a bulk upload, 100k DATAGRAMs a second) would otherwise
// pay a locked section of the flow per read, for a 40 ms deadline.
void QuicConnection::report_acknowledged(bool frames_delivered) {
  const bool acknowledged = std::exchange(acknowledged_, false);
  if (!acknowledged || frames_delivered || state_ != State::open) return;
  const ngtcp2_tstamp now = timestamp();
  if (now - acknowledged_reported_at_ < kAcknowledgedReportInterval) return;
  acknowledged_reported_at_ = now;
  if (auto handler = handler_.lock()) handler->on_acknowledged();
}

bool QuicConnection::deliver_frames() {
  if (state_ != State::open || !block_ || block_->used == 0) return false;
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
  const bool delivered = !frames_.empty();
  if (delivered) {
    auto handler = handler_.lock();
    if (!handler) {
      frames_.clear();
      do_close();
      return false;
    }
    {
      const wire::Slice backing(block_, 0, pos);
      handler->on_frames(frames_, backing);
    }
    frames_.clear();
  }
  if (error != wire::DecodeError::none) {
    fail(DownReason::protocol_error, {}, error, true);
    return delivered;
  }
  if (pos > 0 && conn_ != nullptr && state_ != State::finished) {
    // Decoded bytes are rendr's now (its own window bounds them): reopen QUIC's windows.
    ngtcp2_conn_extend_max_stream_offset(conn_, stream_id_, pos);
    ngtcp2_conn_extend_max_offset(conn_, pos);
  }
  compact_block(pos);
  return delivered;
}

// Keeps the partial frame [consumed, used): at the front of the same block if no handler holds
// part of it, else in a fresh one (a block handed out is never written again).
void QuicConnection::compact_block(std::size_t consumed) {
  if (!block_ || consumed == 0) return;
  const std::size_t leftover = block_->used - consumed;
  if (leftover == 0 && !sole_owner(block_)) {
    block_.reset();
    return;
  }
  if (!sole_owner(block_)) {
    auto fresh = wire::make_block(std::max(options_.read_block_size, leftover));
    std::memcpy(fresh->data.get(), block_->data.get() + consumed, leftover);
    fresh->used = leftover;
    block_ = std::move(fresh);
    return;
  }
  if (leftover > 0) std::memmove(block_->data.get(), block_->data.get() + consumed, leftover);
  block_->used = leftover;
}

// ---- output -----------------------------------------------------------------------------------

void QuicConnection::pull_frames() {
  if (state_ != State::open || stream_id_ < 0 || stream_blocked_) return;
  // Pull only what the congestion window lets out soon (at most max_write_bytes): a frame
  // pulled is "sent" for rendr's liveness clock, so frames must not wait here for a fresh
  // path's slow start (the TCP carrier bounds unsent bytes with TCP_NOTSENT_LOWAT likewise).
  const std::size_t sendable =
      std::clamp<std::size_t>(static_cast<std::size_t>(std::min<std::uint64_t>(
                                  ngtcp2_conn_get_cwnd_left(conn_), options_.max_write_bytes)),
                              1, options_.max_write_bytes);
  if (unsent_bytes_ + datagram_bytes_ >= sendable) return;
  auto handler = handler_.lock();
  if (!handler) {
    do_close();
    return;
  }
  // The core cuts a DATA frame to this budget (so a frame never outsizes a small window). Once
  // the window holds several whole frames, the budget is rounded up to whole frames: pulled as
  // each acknowledgement opens a few KB, the stream was cut into 4 KiB frames (~16x the frames,
  // and more CPU per byte at both ends). The extra unsent bytes (under one frame) are a small
  // part of the window and leave within its round trip.
  std::size_t budget = sendable - unsent_bytes_ - datagram_bytes_;
  ngtcp2_conn_stat stat;
  ngtcp2_conn_get_conn_stat(conn_, &stat);
  if (stat.cwnd >= kWholeFrameWindow)
    budget = (budget + kWholeFrameBytes - 1) / kWholeFrameBytes * kWholeFrameBytes;
  batch_.reset(budget);
  (void)handler->pull(batch_);
  for (const wire::OutFrame& f : batch_.frames()) {
    if (f.size() == 0) continue;
    if (f.datagram_id) {
      datagramq_.push_back(f);
      datagram_bytes_ += f.size();
      continue;
    }
    sendq_.push_back(f);
    unsent_bytes_ += f.size();
  }
  batch_.clear();
}

// The unsent bytes from (next_frame_, next_pos_), as at most vecs.size() pieces.
std::size_t QuicConnection::gather(std::array<ngtcp2_vec, 16>& vecs) const {
  std::size_t n = 0;
  std::size_t pos = next_pos_;
  for (std::size_t i = next_frame_; i < sendq_.size() && n < vecs.size(); ++i) {
    const wire::OutFrame& f = sendq_[i];
    if (pos < f.header_size) {
      vecs[n++] = {const_cast<std::uint8_t*>(f.header.data() + pos), f.header_size - pos};
      pos = f.header_size;
    }
    if (n < vecs.size() && pos < f.size()) {
      const std::size_t from = pos - f.header_size;
      vecs[n++] = {const_cast<std::uint8_t*>(f.payload.data() + from), f.payload.size() - from};
    }
    pos = 0;
  }
  return n;
}

void QuicConnection::advance(std::size_t n) {
  counters_.stream_bytes_sent.fetch_add(n, std::memory_order_relaxed);
  unsent_bytes_ -= n;
  while (n > 0) {
    const std::size_t rest = sendq_[next_frame_].size() - next_pos_;
    if (n < rest) {
      next_pos_ += n;
      return;
    }
    n -= rest;
    ++next_frame_;
    next_pos_ = 0;
  }
}

int QuicConnection::on_acked(std::int64_t stream_id, std::uint64_t offset, std::uint64_t size) {
  if (stream_id != stream_id_) return 0;
  acked_offset_ = std::max(acked_offset_, offset + size);
  while (!sendq_.empty() && next_frame_ > 0 &&
         queue_base_ + sendq_.front().size() <= acked_offset_) {
    queue_base_ += sendq_.front().size();
    sendq_.pop_front();  // releases its payload
    --next_frame_;
  }
  return 0;
}

void QuicConnection::flush() {
  flush_posted_ = false;
  if (state_ == State::finished || conn_ == nullptr) return;
  const ngtcp2_tstamp ts = timestamp();
  const std::size_t max_payload = ngtcp2_conn_get_max_tx_udp_payload_size(conn_);
  const std::size_t quantum = std::clamp<std::size_t>(
      ngtcp2_conn_get_send_quantum(conn_) / std::max<std::size_t>(max_payload, 1), 1,
      kMaxPacketsPerFlush);
  // One buffer for the whole round: its packets leave in one sendmmsg, runs of one size as GSO
  // messages (as ngtcp2's own server example does).
  if (tx_.size() < quantum * max_payload) tx_.resize(quantum * max_payload);
  tx_sizes_.clear();
  std::size_t tx_bytes = 0;
  ngtcp2_path_storage batch_path;  // where the packets in tx_ go
  ngtcp2_path_storage_zero(&batch_path);
  std::array<ngtcp2_vec, 16> vecs;
  bool skip_stream = false;  // blocked for this round
  // Stream bytes and DATAGRAMs share packets, taking turns: neither starves the other (the
  // stream carries the flow's ACKs).
  bool stream_turn = false;
  update_datagram_room();
  while (tx_sizes_.size() < quantum) {
    pull_frames();
    if (state_ == State::finished) return;
    const bool with_stream = !skip_stream && stream_id_ >= 0 && unsent_bytes_ > 0;
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi{};
    if (!datagramq_.empty() && !(stream_turn && with_stream)) {
      stream_turn = true;
      const wire::OutFrame& f = datagramq_.front();
      if (f.size() > max_datagram_frame_.load(std::memory_order_relaxed)) {
        datagram_to_stream();  // the path's packets shrank (a migration) or DATAGRAM is off
        continue;
      }
      const std::array<ngtcp2_vec, 2> parts{
          ngtcp2_vec{const_cast<std::uint8_t*>(f.header.data()), f.header_size},
          ngtcp2_vec{const_cast<std::uint8_t*>(f.payload.data()), f.payload.size()}};
      // The packet stays open for more (WRITE_MORE) only if stream bytes or the next DATAGRAM
      // could join this one: else ngtcp2 would only find that out in a second call per packet.
      const bool more = with_stream || datagramq_.size() < 2 ||
                        f.size() + kDatagramFrameHeader + datagramq_[1].size() <=
                            max_datagram_frame_.load(std::memory_order_relaxed);
      int taken = 0;
      const ngtcp2_ssize n = ngtcp2_conn_writev_datagram(
          conn_, &ps.path, &pi, tx_.data() + tx_bytes, max_payload, &taken,
          more ? NGTCP2_WRITE_DATAGRAM_FLAG_MORE : NGTCP2_WRITE_DATAGRAM_FLAG_NONE, *f.datagram_id,
          parts.data(), f.payload.empty() ? 1 : 2, ts);
      if (taken != 0) {
        counters_.datagrams_sent.fetch_add(1, std::memory_order_relaxed);
        datagram_bytes_ -= f.size();
        datagramq_.pop_front();  // QUIC copied it; the core sends it again if it is lost
        datagram_refusals_ = 0;
      }
      if (n == NGTCP2_ERR_WRITE_MORE) continue;
      if (n == NGTCP2_ERR_INVALID_ARGUMENT || n == NGTCP2_ERR_INVALID_STATE) {
        datagram_to_stream();  // larger than the peer takes, or the peer takes none
        continue;
      }
      if (n < 0) {
        fail_with_liberr(static_cast<int>(n));
        return;
      }
      if (n == 0) break;  // congestion or pacing limited
      // A whole packet without it (other frames first): a second one that cannot take it
      // means it never fits one.
      if (taken == 0 && ++datagram_refusals_ >= 2) datagram_to_stream();
      const auto size = static_cast<std::size_t>(n);
      if (!tx_sizes_.empty() && !ngtcp2_path_eq(&batch_path.path, &ps.path)) {
        send_packets(tx_bytes, tx_sizes_, batch_path.path);
        std::memmove(tx_.data(), tx_.data() + tx_bytes, size);
        tx_bytes = 0;
        tx_sizes_.clear();
      }
      if (tx_sizes_.empty()) ngtcp2_path_copy(&batch_path.path, &ps.path);
      tx_bytes += size;
      tx_sizes_.push_back(size);
      continue;
    }
    stream_turn = false;
    const std::size_t nvecs = with_stream ? gather(vecs) : 0;
    ngtcp2_ssize accepted = -1;
    const ngtcp2_ssize n = ngtcp2_conn_writev_stream(
        conn_, &ps.path, &pi, tx_.data() + tx_bytes, max_payload, &accepted,
        with_stream ? NGTCP2_WRITE_STREAM_FLAG_MORE : NGTCP2_WRITE_STREAM_FLAG_NONE,
        with_stream ? stream_id_ : -1, vecs.data(), nvecs, ts);
    if (n < 0) {
      if (n == NGTCP2_ERR_WRITE_MORE) {
        advance(static_cast<std::size_t>(accepted));
        continue;
      }
      if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED || n == NGTCP2_ERR_STREAM_SHUT_WR) {
        stream_blocked_ = n == NGTCP2_ERR_STREAM_DATA_BLOCKED;
        skip_stream = true;
        continue;
      }
      fail_with_liberr(static_cast<int>(n));
      return;
    }
    if (accepted > 0) advance(static_cast<std::size_t>(accepted));
    if (n == 0) break;  // nothing to send, or congestion / pacing limited
    const auto size = static_cast<std::size_t>(n);
    if (!tx_sizes_.empty() && !ngtcp2_path_eq(&batch_path.path, &ps.path)) {
      // A packet for another path (a migration's probe): what went before leaves first.
      send_packets(tx_bytes, tx_sizes_, batch_path.path);
      std::memmove(tx_.data(), tx_.data() + tx_bytes, size);
      tx_bytes = 0;
      tx_sizes_.clear();
    }
    if (tx_sizes_.empty()) ngtcp2_path_copy(&batch_path.path, &ps.path);
    tx_bytes += size;
    tx_sizes_.push_back(size);
  }
  const bool full_round = tx_sizes_.size() == quantum;
  if (!tx_sizes_.empty()) send_packets(tx_bytes, tx_sizes_, batch_path.path);
  // Pacing needs an RTT. ngtcp2 0.12 paces a path without an RTT sample at its initial RTT
  // (333 ms), and a migration to a new address restarts the congestion controller and the RTT
  // estimate: the new path's first window would be spread over ~300 ms and the flow above
  // would find the path silent and declare it dead. Until the path's first sample, packets
  // leave as the (initial) congestion window allows, unpaced, as RFC 9002 permits for it.
  ngtcp2_conn_stat stat;
  ngtcp2_conn_get_conn_stat(conn_, &stat);
  if (stat.first_rtt_sample_ts != UINT64_MAX) ngtcp2_conn_update_pkt_tx_time(conn_, ts);
  sample_congestion(stat);
  if (full_round && !flush_posted_) {
    // More may be due: let reads (acknowledgements) in first.
    flush_posted_ = true;
    asio::post(strand_, [self = shared_from_this()] { self->flush(); });
  }
  deliver_datagrams();  // fates of frames moved to the stream
  if (state_ == State::finished) return;
  if (state_ == State::closing && sendq_.empty() && datagramq_.empty()) {
    finish_close();
    return;
  }
  arm_timer();
}

void QuicConnection::sample_congestion(const ngtcp2_conn_stat& stat) {
  // The rate ngtcp2 paces at, in bytes/s: the controller's (bytes per ns), else 1.25 cwnd / srtt
  // (ngtcp2_conn_update_pkt_tx_time); nothing is paced before the first RTT sample (flush()).
  double pacing = 0;
  if (stat.first_rtt_sample_ts != UINT64_MAX) {
    pacing = stat.pacing_rate > 0
                 ? stat.pacing_rate * 1e9
                 : 1.25 * static_cast<double>(stat.cwnd) * 1e9 /
                       static_cast<double>(std::max<ngtcp2_duration>(stat.smoothed_rtt, 1));
  }
  std::lock_guard lock(congestion_mutex_);
  if (!congestion_) congestion_.emplace().controller = "cubic";  // fill_settings' cc_algo
  TransportCongestion& c = *congestion_;
  c.congestion_window = stat.cwnd;
  c.bytes_in_flight = stat.bytes_in_flight;
  c.slow_start_threshold = stat.ssthresh == UINT64_MAX ? 0 : stat.ssthresh;
  c.pacing_rate = static_cast<std::uint64_t>(pacing);
  c.packets_sent = counters_.packets_sent.load(std::memory_order_relaxed);
  c.packets_lost = 0;  // ngtcp2 0.12 does not count them
  c.mtu = sendable_udp_payload();
}

std::size_t QuicConnection::sendable_udp_payload() const {
  std::size_t size = ngtcp2_conn_get_path_max_tx_udp_payload_size(conn_);
  // Without ngtcp2's shaping the path's figure is this end's setting; the peer's transport
  // parameter bounds what is sent too.
  if (const ngtcp2_transport_params* remote = ngtcp2_conn_get_remote_transport_params(conn_);
      remote != nullptr && remote->max_udp_payload_size != 0)
    size = static_cast<std::size_t>(std::min<std::uint64_t>(size, remote->max_udp_payload_size));
  return size;
}

void QuicConnection::datagram_to_stream() {
  wire::OutFrame f = std::move(datagramq_.front());
  datagramq_.pop_front();
  datagram_bytes_ -= f.size();
  datagram_refusals_ = 0;
  counters_.datagrams_on_stream.fetch_add(1, std::memory_order_relaxed);
  // The stream delivers it or the path dies (then the flow recovers it): for the core's
  // purposes it arrived.
  datagrams_acked_.push_back(*f.datagram_id);
  f.datagram_id.reset();
  unsent_bytes_ += f.size();
  sendq_.push_back(std::move(f));
}

void QuicConnection::update_datagram_room() {
  std::size_t room = 0;
  const ngtcp2_transport_params* remote =
      conn_ != nullptr && state_ != State::handshake && state_ != State::finished
          ? ngtcp2_conn_get_remote_transport_params(conn_)
          : nullptr;
  if (remote != nullptr && remote->max_datagram_frame_size > kDatagramFrameHeader) {
    const std::size_t udp = sendable_udp_payload();
    if (udp > kShortHeaderMax + kDatagramFrameHeader) {
      room = std::min<std::uint64_t>(udp - kShortHeaderMax - kDatagramFrameHeader,
                                     remote->max_datagram_frame_size - kDatagramFrameHeader);
    }
  }
  max_datagram_frame_.store(room, std::memory_order_relaxed);
}

int QuicConnection::on_datagram(const std::uint8_t* data, std::size_t size) {
  counters_.datagrams_received.fetch_add(1, std::memory_order_relaxed);
  // Only a started connection's: the flow sends messages on a path once its handshake over
  // the stream went through us, and what waited here before start() would be unbounded.
  if (state_ != State::open && state_ != State::closing) return 0;
  // One frame, the whole datagram; anything else is dropped (the sender's loss recovery, or
  // the flow's, covers it). What the frame may be is the flow's to judge.
  wire::Frame frame;
  const wire::DecodeResult r =
      wire::decode(wire::ConstBytes(data, size), frame, options_.max_frame_body);
  if (r.error != wire::DecodeError::none || r.consumed != size) {
    counters_.datagrams_undecodable.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  if (!datagram_block_ || datagram_block_->capacity - datagram_block_->used < size) {
    if (!datagram_frames_.empty()) {
      // The full block's frames wait for delivery: keep them apart (delivered block by block).
      datagram_blocks_.push_back({std::move(datagram_block_), datagram_frames_.size()});
    }
    datagram_block_ = wire::make_block(std::max(kDatagramBlockSize, size));
  }
  wire::Byte* copy = datagram_block_->data.get() + datagram_block_->used;
  std::memcpy(copy, data, size);
  datagram_block_->used += size;
  // Decoded again from the copy, so DATA points into the block.
  datagram_frames_.emplace_back();
  (void)wire::decode(wire::ConstBytes(copy, size), datagram_frames_.back(),
                     options_.max_frame_body);
  return 0;
}

void QuicConnection::on_datagram_fate(std::uint64_t id, DatagramFate fate) {
  const bool acked = fate == DatagramFate::acked;
  (acked ? counters_.datagrams_acked : counters_.datagrams_lost)
      .fetch_add(1, std::memory_order_relaxed);
  (acked ? datagrams_acked_ : datagrams_lost_).push_back(id);
}

void QuicConnection::deliver_datagrams() {
  if (state_ != State::open && state_ != State::closing) return;
  if (datagram_frames_.empty() && datagrams_acked_.empty() && datagrams_lost_.empty()) return;
  auto handler = handler_.lock();
  if (!handler) return;
  if (!datagram_frames_.empty()) {
    // Block by block: each call's frames point into its backing.
    std::size_t first = 0;
    const auto deliver = [&](const wire::BlockPtr& block, std::size_t end) {
      datagram_part_.assign(datagram_frames_.begin() + static_cast<std::ptrdiff_t>(first),
                            datagram_frames_.begin() + static_cast<std::ptrdiff_t>(end));
      first = end;
      if (!datagram_part_.empty())
        handler->on_datagram_frames(datagram_part_, wire::Slice(block, 0, block->used));
      datagram_part_.clear();  // keeps its storage; drops the frames' references
    };
    for (const auto& [block, end] : datagram_blocks_)
      deliver(block, end);
    deliver(datagram_block_, datagram_frames_.size());
    datagram_blocks_.clear();
    datagram_frames_.clear();
    // A block the flow holds part of is never written again.
    if (datagram_block_ && sole_owner(datagram_block_)) {
      datagram_block_->used = 0;
    } else {
      datagram_block_.reset();
    }
  }
  if (!datagrams_acked_.empty() || !datagrams_lost_.empty()) {
    // Swapped out first: the handler may run long, and callbacks add to fresh vectors.
    std::vector<std::uint64_t> acked, lost;
    acked.swap(datagrams_acked_);
    lost.swap(datagrams_lost_);
    handler->on_datagram_fates(acked, lost);
    if (datagrams_acked_.empty()) {
      acked.clear();
      datagrams_acked_.swap(acked);  // keep the storage
    }
    if (datagrams_lost_.empty()) {
      lost.clear();
      datagrams_lost_.swap(lost);
    }
  }
}

std::shared_ptr<udp::UdpSocket> QuicConnection::socket_for(const ngtcp2_addr& local) const {
  if (is_server_ || other_sockets_.empty()) return socket_;
  const asio::ip::udp::endpoint from = from_addr(local);
  if (from == local_) return socket_;
  for (const LocalSocket& other : other_sockets_)
    if (other.local == from) return other.socket;
  return nullptr;
}

void QuicConnection::send_packets(std::size_t bytes, std::span<const std::size_t> sizes,
                                  const ngtcp2_path& path) {
  counters_.packets_sent.fetch_add(sizes.size(), std::memory_order_relaxed);
  std::size_t sent = 0;
  if (auto socket = socket_for(path.local)) {
    const wire::ConstBytes buffer(tx_.data(), bytes);
    if (is_server_) {
      const asio::ip::udp::endpoint to = from_addr(path.remote);
      sent = socket->send(buffer, sizes, &to).datagrams;
    } else {
      sent = socket->send(buffer, sizes).datagrams;  // connected
    }
  }
  // A datagram the socket refused is a lost packet: QUIC's recovery resends its contents.
  if (sent < sizes.size())
    counters_.send_drops.fetch_add(sizes.size() - sent, std::memory_order_relaxed);
}

// Re-arming an asio timer costs a timerfd_settime syscall (it was the top item of a QUIC bulk
// profile when done after every read and write), so the timer only moves earlier: firing
// before ngtcp2's expiry is harmless (on_timer handles nothing and re-arms).
void QuicConnection::arm_timer() {
  const ngtcp2_tstamp expiry = ngtcp2_conn_get_expiry(conn_);
  if (expiry == UINT64_MAX || (timer_armed_ && armed_expiry_ <= expiry)) return;
  const ngtcp2_tstamp now = timestamp();
  timer_armed_ = true;
  armed_expiry_ = expiry;
  timer_.expires_after(std::chrono::nanoseconds(expiry > now ? expiry - now : 0));
  timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (ec) return;
    self->timer_armed_ = false;
    self->on_timer();
  });
}

void QuicConnection::on_timer() {
  if (state_ == State::finished || conn_ == nullptr) return;
  const int rv = ngtcp2_conn_handle_expiry(conn_, timestamp());
  if (rv == NGTCP2_ERR_IDLE_CLOSE) {
    fail(DownReason::error, quic_errc::idle_timeout, wire::DecodeError::none, false);
    return;
  }
  if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
    fail(DownReason::error, quic_errc::handshake_timeout, wire::DecodeError::none, false);
    return;
  }
  if (rv != 0) {
    fail_with_liberr(rv);
    return;
  }
  deliver_datagrams();  // losses its loss detection declared
  if (state_ == State::finished) return;
  if (state_ == State::closing && sendq_.empty() && datagramq_.empty()) {
    finish_close();
    return;
  }
  flush();  // re-arms the timer
}

std::string QuicConnection::peer_address() const {
  std::lock_guard lock(address_mutex_);
  return peer_address_;
}

std::string QuicConnection::local_address() const {
  std::lock_guard lock(address_mutex_);
  return local_address_;
}

void QuicConnection::set_addresses() {
  std::lock_guard lock(address_mutex_);
  peer_address_ = format_endpoint(remote_);
  local_address_ = format_endpoint(local_);
}

void QuicConnection::follow_peer() {
  if (conn_ == nullptr || state_ == State::handshake) return;
  const asio::ip::udp::endpoint now = from_addr(ngtcp2_conn_get_path(conn_)->remote);
  if (now == remote_) return;
  remote_ = now;  // ngtcp2 sends there from now on (send_packets follows each packet's path)
  set_addresses();
}

// ---- migration (client) ------------------------------------------------------------------------

error_code QuicConnection::migrate_local_address(const std::string& local_host_port) {
  if (is_server_) return std::make_error_code(std::errc::operation_not_supported);
  if (!can_migrate_.load(std::memory_order_acquire))
    return std::make_error_code(std::errc::not_connected);
  const auto local = udp::parse_endpoint(local_host_port);
  if (!local) return std::make_error_code(std::errc::invalid_argument);
  if (local->protocol() != remote_.protocol())
    return std::make_error_code(std::errc::address_family_not_supported);
  if (migrating_.exchange(true, std::memory_order_acq_rel))
    return std::make_error_code(std::errc::operation_in_progress);
  error_code ec;
  const auto udp_socket =
      udp::UdpSocket::connect_from(strand_, *local, remote_, quic_socket_options(options_), ec);
  if (!udp_socket) {
    migrating_.store(false, std::memory_order_release);
    return ec;
  }
  const asio::ip::udp::endpoint bound = udp_socket->local_endpoint();
  counters_.migrations_started.fetch_add(1, std::memory_order_relaxed);
  asio::post(strand_, [self = shared_from_this(), bound, udp_socket] {
    if (self->state_ == State::finished) {
      udp_socket->close();
      self->counters_.migrations_failed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    self->other_sockets_.push_back({bound, udp_socket});
    self->migration_ = bound;
    self->migration_started_ = false;
    self->start_receive(udp_socket, bound);
    self->try_migration();
    self->flush();
  });
  return {};
}

void QuicConnection::try_migration() {
  if (!migration_ || migration_started_ || state_ == State::finished || conn_ == nullptr) return;
  const ngtcp2_path path{to_addr(*migration_), to_addr(remote_), nullptr};
  const int rv = ngtcp2_conn_initiate_migration(conn_, &path, timestamp());
  // Not before the handshake is confirmed, nor without a spare connection id from the peer
  // (it offers connection_ids of them): tried again after the next datagrams.
  if (rv == NGTCP2_ERR_INVALID_STATE || rv == NGTCP2_ERR_CONN_ID_BLOCKED) return;
  if (rv != 0) {
    end_migration(false);
    return;
  }
  migration_started_ = true;
}

void QuicConnection::on_path_validation(const ngtcp2_path& path,
                                        ngtcp2_path_validation_result result) {
  if (is_server_ || !migration_ || !migration_started_ || from_addr(path.local) != *migration_)
    return;
  end_migration(result == NGTCP2_PATH_VALIDATION_RESULT_SUCCESS);
}

void QuicConnection::end_migration(bool moved) {
  const asio::ip::udp::endpoint local = *migration_;
  migration_.reset();
  migration_started_ = false;
  const auto it = std::find_if(other_sockets_.begin(), other_sockets_.end(),
                               [&](const LocalSocket& s) { return s.local == local; });
  if (moved && it != other_sockets_.end()) {
    // ngtcp2 sends on the new path from now on; the old socket becomes the retiring one.
    std::swap(it->socket, socket_);
    std::swap(it->local, local_);
    retire_socket(it->local);
    set_addresses();
    counters_.migrations_completed.fetch_add(1, std::memory_order_relaxed);
  } else {
    if (it != other_sockets_.end()) {
      it->socket->close();
      other_sockets_.erase(it);
    }
    counters_.migrations_failed.fetch_add(1, std::memory_order_relaxed);
  }
  migrating_.store(false, std::memory_order_release);
}

void QuicConnection::retire_socket(const asio::ip::udp::endpoint& local) {
  auto linger = std::make_shared<asio::steady_timer>(strand_);
  linger->expires_after(options_.migration_linger);
  linger->async_wait([weak = weak_from_this(), linger, local](error_code) {
    auto self = weak.lock();
    if (!self) return;
    auto& others = self->other_sockets_;
    const auto it = std::find_if(others.begin(), others.end(),
                                 [&](const LocalSocket& s) { return s.local == local; });
    if (it == others.end()) return;
    it->socket->close();
    others.erase(it);
  });
}

// ---- ending -----------------------------------------------------------------------------------

void QuicConnection::do_close() {
  if (state_ == State::finished) return;
  if (!started_ || state_ != State::open) {
    do_abort();
    return;
  }
  state_ = State::closing;
  if (sendq_.empty() && datagramq_.empty()) {
    finish_close();
    return;
  }
  // What was pulled goes out and is acknowledged first (flush/on_timer finish the close); the
  // linger deadline bounds it.
  auto linger = std::make_shared<asio::steady_timer>(strand_);
  linger->expires_after(options_.close_linger);
  linger->async_wait([self = shared_from_this(), linger](error_code) {
    if (self->state_ == State::closing) self->finish_close();
  });
  flush();
}

void QuicConnection::finish_close() {
  ngtcp2_connection_close_error error;
  ngtcp2_connection_close_error_default(&error);
  send_connection_close(error);
  const bool owed = started_;
  teardown();
  if (owed) report_down(DownReason::closed, {}, wire::DecodeError::none);
}

void QuicConnection::do_abort() {
  if (state_ == State::finished) return;
  finish_close();
  if (auto done = std::move(established_)) {
    established_ = nullptr;
    done(asio::error::operation_aborted, nullptr);
  }
}

void QuicConnection::send_connection_close(const ngtcp2_connection_close_error& error) {
  if (conn_ == nullptr || ngtcp2_conn_is_in_closing_period(conn_) ||
      ngtcp2_conn_is_in_draining_period(conn_)) {
    return;
  }
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info pi{};
  const std::size_t max_payload = ngtcp2_conn_get_max_tx_udp_payload_size(conn_);
  if (tx_.size() < max_payload) tx_.resize(max_payload);
  const ngtcp2_ssize n = ngtcp2_conn_write_connection_close(conn_, &ps.path, &pi, tx_.data(),
                                                            max_payload, &error, timestamp());
  if (n <= 0) return;
  const std::size_t size = static_cast<std::size_t>(n);
  send_packets(size, std::span<const std::size_t>(&size, 1), ps.path);
}

void QuicConnection::fail_with_liberr(int liberr) {
  if (state_ == State::finished) return;
  ngtcp2_connection_close_error error;
  ngtcp2_connection_close_error_set_transport_error_liberr(&error, liberr, nullptr, 0);
  send_connection_close(error);
  fail(DownReason::error, quic_errc::transport_error, wire::DecodeError::none, false);
}

void QuicConnection::peer_closed() {
  ngtcp2_connection_close_error error;
  ngtcp2_conn_get_connection_close_error(conn_, &error);
  if (state_ == State::handshake) {
    fail(DownReason::error, quic_errc::handshake_refused, wire::DecodeError::none, false);
    return;
  }
  const bool clean = error.error_code == 0;  // NO_ERROR, transport or application
  fail(clean ? DownReason::eof : DownReason::reset,
       clean ? error_code{} : error_code(quic_errc::peer_closed_with_error),
       wire::DecodeError::none, false);
}

void QuicConnection::fail(DownReason reason, error_code ec, wire::DecodeError decode_error,
                          bool send_close) {
  if (state_ == State::finished) return;
  if (state_ == State::closing) {  // a local close is in progress: it wins
    finish_close();
    return;
  }
  if (send_close) {
    ngtcp2_connection_close_error error;
    if (reason == DownReason::protocol_error || ec == quic_errc::stream_reset) {
      ngtcp2_connection_close_error_set_application_error(&error, 1, nullptr, 0);
    } else {
      ngtcp2_connection_close_error_set_transport_error_tls_alert(
          &error, ngtcp2_conn_get_tls_alert(conn_), nullptr, 0);
    }
    send_connection_close(error);
  }
  const bool owed = started_;
  teardown();
  if (auto done = std::move(established_)) {
    established_ = nullptr;
    done(ec ? ec : error_code(quic_errc::transport_error), nullptr);
    return;
  }
  if (owed) report_down(reason, ec, decode_error);
}

void QuicConnection::teardown() {
  state_ = State::finished;
  timer_.cancel();
  sendq_.clear();
  block_.reset();
  datagramq_.clear();
  datagram_bytes_ = 0;
  max_datagram_frame_.store(0, std::memory_order_relaxed);
  datagram_blocks_.clear();
  datagram_frames_.clear();
  datagram_block_.reset();
  can_migrate_.store(false, std::memory_order_release);
  if (socket_ && !is_server_) socket_->close();
  for (auto& other : other_sockets_)
    other.socket->close();
  other_sockets_.clear();
  migration_.reset();
  if (auto server = server_.lock()) {
    server_.reset();
    server->forget(cids_, this);
  }
}

void QuicConnection::report_down(DownReason reason, error_code ec, wire::DecodeError decode_error) {
  if (auto handler = handler_.take()) handler->on_down(reason, ec, decode_error);
}

}  // namespace rendr::carrier

#include "carrier/quic/quic_server.hpp"

#include <algorithm>

#include <asio/post.hpp>

#include "carrier/quic/quic_connection.hpp"

namespace rendr::carrier {

namespace {
constexpr std::size_t kDatagramBuffer = 65536;
constexpr std::size_t kMaxDatagramsPerRead = 64;
constexpr std::size_t kShortHeaderCidLength = 16;  // every id this side issues has this length
}  // namespace

QuicServerSocket::QuicServerSocket(QuicStrand strand, std::shared_ptr<TlsCredentials> credentials,
                                   const QuicOptions& options, Accept accept, Limits limits)
    : strand_(std::move(strand)),
      socket_(strand_),
      credentials_(std::move(credentials)),
      options_(options),
      accept_(std::move(accept)),
      limits_(limits),
      rx_(kDatagramBuffer) {}

std::shared_ptr<QuicServerSocket> QuicServerSocket::open(
    asio::any_io_executor executor, const asio::ip::udp::endpoint& at,
    std::shared_ptr<TlsCredentials> credentials, const QuicOptions& options, Accept accept,
    std::error_code& ec, Limits limits) {
  std::shared_ptr<QuicServerSocket> s(new QuicServerSocket(
      asio::make_strand(executor), std::move(credentials), options, std::move(accept), limits));
  s->socket_.open(at.protocol(), ec);
  if (!ec) s->socket_.bind(at, ec);
  if (!ec) s->local_ = s->socket_.local_endpoint(ec);
  if (!ec) s->socket_.non_blocking(true, ec);
  if (ec) return nullptr;
  std::error_code ignored;
  const int buffer = static_cast<int>(options.socket_buffer);
  s->socket_.set_option(asio::socket_base::receive_buffer_size(buffer), ignored);
  s->socket_.set_option(asio::socket_base::send_buffer_size(buffer), ignored);
  asio::post(s->strand_, [s] { s->start_receive(); });
  return s;
}

void QuicServerSocket::stop() {
  asio::post(strand_, [self = shared_from_this()] { self->do_stop(); });
}

void QuicServerSocket::do_stop() {
  if (!accepting_) return;
  accepting_ = false;
  // Handshakes in progress are dropped: nobody will accept them.
  std::vector<std::shared_ptr<QuicConnection>> handshaking;
  for (const auto& [raw, connection] : owned_)
    if (connection->handshaking()) handshaking.push_back(connection);
  for (auto& connection : handshaking)
    connection->abort();
  close_if_unused();
}

void QuicServerSocket::close_if_unused() {
  if (accepting_ || !owned_.empty()) return;
  std::error_code ec;
  socket_.close(ec);
}

void QuicServerSocket::start_receive() {
  if (!socket_.is_open()) return;
  socket_.async_receive_from(
      asio::buffer(rx_), rx_from_,
      [self = shared_from_this()](std::error_code ec, std::size_t n) { self->on_receive(ec, n); });
}

void QuicServerSocket::on_receive(std::error_code ec, std::size_t n) {
  if (ec) {
    if (ec == asio::error::operation_aborted || !socket_.is_open()) return;
    start_receive();  // e.g. an ICMP error for a datagram sent earlier
    return;
  }
  dispatch(rx_.data(), n, rx_from_);
  for (std::size_t i = 0; i < kMaxDatagramsPerRead; ++i) {
    std::error_code rec;
    const std::size_t m = socket_.receive_from(asio::buffer(rx_), rx_from_, 0, rec);
    if (rec) break;
    dispatch(rx_.data(), m, rx_from_);
  }
  // Answer once per batch: each connection delivers its frames and writes (acks, data).
  auto touched = std::move(touched_);
  touched_.clear();
  for (auto& c : touched)
    c->after_datagrams();
  start_receive();
}

void QuicServerSocket::dispatch(const std::uint8_t* data, std::size_t size,
                                const asio::ip::udp::endpoint& from) {
  ngtcp2_version_cid vc;
  if (ngtcp2_pkt_decode_version_cid(&vc, data, size, kShortHeaderCidLength) != 0) return;
  const auto it = routes_.find(std::string(reinterpret_cast<const char*>(vc.dcid), vc.dcidlen));
  if (it == routes_.end()) {
    accept_initial(data, size, from);
    return;
  }
  auto owner = owned_.find(it->second);
  if (owner == owned_.end()) return;
  std::shared_ptr<QuicConnection> connection = owner->second;
  connection->on_datagram(data, size, from);
  if (std::find(touched_.begin(), touched_.end(), connection) == touched_.end())
    touched_.push_back(std::move(connection));
}

void QuicServerSocket::accept_initial(const std::uint8_t* data, std::size_t size,
                                      const asio::ip::udp::endpoint& from) {
  if (!accepting_ || owned_.size() >= limits_.max_connections ||
      handshakes_ >= limits_.max_handshakes) {
    return;
  }
  ngtcp2_pkt_hd hd;
  if (ngtcp2_accept(&hd, data, size) != 0) return;  // not a usable client Initial
  std::error_code ec;
  auto connection = QuicConnection::make_server(
      strand_, shared_from_this(), hd, local_, from, credentials_, options_,
      [weak = weak_from_this()](std::error_code ec, std::shared_ptr<QuicConnection> c) {
        if (auto self = weak.lock()) self->on_established(ec, std::move(c));
      },
      ec);
  if (!connection) return;
  ++handshakes_;
  owned_.emplace(connection.get(), connection);
  for (const auto& cid : connection->connection_ids())
    routes_[cid] = connection.get();
  connection->on_datagram(data, size, from);
  touched_.push_back(std::move(connection));
}

void QuicServerSocket::on_established(std::error_code ec,
                                      std::shared_ptr<QuicConnection> connection) {
  handshakes_ -= std::min<std::size_t>(handshakes_, 1);
  if (ec || !connection) return;  // the failed connection forgets itself
  if (!accepting_) {
    connection->abort();
    return;
  }
  accept_(std::move(connection));
}

bool QuicServerSocket::send(const std::uint8_t* data, std::size_t size,
                            const asio::ip::udp::endpoint& to) {
  std::error_code ec;
  socket_.send_to(asio::buffer(data, size), to, 0, ec);
  return !ec;
}

void QuicServerSocket::route(const std::string& cid,
                             const std::shared_ptr<QuicConnection>& connection) {
  if (owned_.count(connection.get()) != 0) routes_[cid] = connection.get();
}

void QuicServerSocket::unroute(const std::string& cid) {
  routes_.erase(cid);
}

void QuicServerSocket::forget(const std::vector<std::string>& cids, QuicConnection* connection) {
  for (const auto& cid : cids) {
    auto it = routes_.find(cid);
    if (it != routes_.end() && it->second == connection) routes_.erase(it);
  }
  auto it = owned_.find(connection);
  if (it == owned_.end()) return;
  // The connection is inside one of its own calls: release it after that returns.
  asio::post(strand_, [doomed = std::move(it->second)] {});
  owned_.erase(it);
  close_if_unused();
}

}  // namespace rendr::carrier

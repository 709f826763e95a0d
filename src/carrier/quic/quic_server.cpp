#include "carrier/quic/quic_server.hpp"

#include <algorithm>

#include <asio/post.hpp>

#include "carrier/quic/quic_connection.hpp"

namespace rendr::carrier {

namespace {
constexpr int kBatchesPerRead = 8;                 // recvmmsg batches before the connections answer
constexpr std::size_t kShortHeaderCidLength = 16;  // every id this side issues has this length
}  // namespace

QuicServerSocket::QuicServerSocket(QuicStrand strand, std::shared_ptr<TlsCredentials> credentials,
                                   const QuicOptions& options, Accept accept, Limits limits)
    : strand_(std::move(strand)),
      credentials_(std::move(credentials)),
      options_(options),
      accept_(std::move(accept)),
      limits_(limits) {}

std::shared_ptr<QuicServerSocket> QuicServerSocket::open(
    asio::any_io_executor executor, const asio::ip::udp::endpoint& at,
    std::shared_ptr<TlsCredentials> credentials, const QuicOptions& options, Accept accept,
    error_code& ec, Limits limits) {
  std::shared_ptr<QuicServerSocket> s(new QuicServerSocket(
      asio::make_strand(executor), std::move(credentials), options, std::move(accept), limits));
  asio::ip::udp::socket socket(s->strand_);
  socket.open(at.protocol(), ec);
  if (!ec) socket.bind(at, ec);
  if (!ec) s->local_ = socket.local_endpoint(ec);
  if (ec) return nullptr;
  try {
    s->socket_ = std::make_shared<udp::UdpSocket>(std::move(socket), quic_socket_options(options));
  } catch (const system_error& e) {
    ec = e.code();
    return nullptr;
  }
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
  socket_->close();
}

void QuicServerSocket::start_receive() {
  socket_->async_wait_readable(
      [self = shared_from_this()](error_code ec) { self->on_readable(ec); });
}

void QuicServerSocket::on_readable(error_code ec) {
  if (ec == asio::error::operation_aborted) return;
  // Drain a few batches, then let each connection answer once (deliver frames, write acks and
  // data); a socket still busy after that is read again after the strand's other handlers.
  bool drained = false;
  for (int i = 0; i < kBatchesPerRead; ++i) {
    error_code rec;
    const auto batch = socket_->receive(rec);
    for (const udp::ReceivedDatagram& d : batch)
      dispatch(d.bytes.data(), d.bytes.size(), d.source);
    if (batch.empty()) {
      // An ICMP error for a datagram sent earlier is no socket failure.
      if (rec == std::errc::connection_refused) continue;
      if (rec != asio::error::would_block) return;  // closed
      drained = true;
      break;
    }
  }
  auto touched = std::move(touched_);
  touched_.clear();
  for (auto& c : touched)
    c->after_datagrams();
  if (drained) {
    start_receive();
  } else {
    asio::post(strand_, [self = shared_from_this()] { self->on_readable({}); });
  }
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
  error_code ec;
  auto connection = QuicConnection::make_server(
      strand_, shared_from_this(), hd, local_, from, credentials_, options_,
      [weak = weak_from_this()](error_code ec, std::shared_ptr<QuicConnection> c) {
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

void QuicServerSocket::on_established(error_code ec, std::shared_ptr<QuicConnection> connection) {
  handshakes_ -= std::min<std::size_t>(handshakes_, 1);
  if (ec || !connection) return;  // the failed connection forgets itself
  if (!accepting_) {
    connection->abort();
    return;
  }
  accept_(std::move(connection));
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

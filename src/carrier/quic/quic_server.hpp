#pragma once
// The server side of QUIC paths: one UDP socket per listen address, shared by all its
// connections. A datagram goes to the connection that owns its destination connection id; a
// client Initial that ngtcp2 accepts starts a new connection, which is handed to `accept` once
// its handshake completes (a failed or timed-out handshake is dropped silently). Garbage,
// short-header packets for unknown ids and unsupported versions are dropped.
//
// Threading: the socket and all its connections run on one strand. Lifetime: the socket lives
// while it accepts or any connection uses it; stop() stops accepting (and drops handshakes in
// progress); established connections carry on until they end.
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <asio/ip/udp.hpp>
#include <asio/strand.hpp>

#include "carrier/quic/quic_carrier.hpp"
#include "carrier/quic/quic_tls.hpp"
#include "carrier/udp/udp_socket.hpp"

namespace rendr::carrier {

class QuicConnection;

struct QuicServerLimits {
  std::size_t max_connections = 4096;  // handshaking and established; Initials beyond are dropped
  std::size_t max_handshakes = 256;    // handshakes in progress
};

class QuicServerSocket final : public std::enable_shared_from_this<QuicServerSocket> {
 public:
  using Accept = std::function<void(std::shared_ptr<Carrier>)>;
  using Limits = QuicServerLimits;

  static std::shared_ptr<QuicServerSocket> open(asio::any_io_executor executor,
                                                const asio::ip::udp::endpoint& at,
                                                std::shared_ptr<TlsCredentials> credentials,
                                                const QuicOptions& options, Accept accept,
                                                error_code& ec, Limits limits = {});
  asio::ip::udp::endpoint local_endpoint() const { return local_; }
  // The socket its connections send through (GSO, sendmmsg).
  const std::shared_ptr<udp::UdpSocket>& socket() const { return socket_; }
  void stop();  // any thread

  // Connection side, on the strand.
  void route(const std::string& cid, const std::shared_ptr<QuicConnection>& connection);
  void unroute(const std::string& cid);
  void forget(const std::vector<std::string>& cids, QuicConnection* connection);

  std::size_t connections() const { return owned_.size(); }  // on the strand

 private:
  QuicServerSocket(QuicStrand strand, std::shared_ptr<TlsCredentials> credentials,
                   const QuicOptions& options, Accept accept, Limits limits);
  void start_receive();
  void on_readable(error_code ec);
  void dispatch(const std::uint8_t* data, std::size_t size, const asio::ip::udp::endpoint& from);
  void accept_initial(const std::uint8_t* data, std::size_t size,
                      const asio::ip::udp::endpoint& from);
  void on_established(error_code ec, std::shared_ptr<QuicConnection> connection);
  void do_stop();
  void close_if_unused();

  QuicStrand strand_;
  std::shared_ptr<udp::UdpSocket> socket_;
  asio::ip::udp::endpoint local_;
  const std::shared_ptr<TlsCredentials> credentials_;
  const QuicOptions options_;
  const Accept accept_;
  const Limits limits_;

  // Strand-only state.
  bool accepting_ = true;
  std::unordered_map<QuicConnection*, std::shared_ptr<QuicConnection>> owned_;
  std::unordered_map<std::string, QuicConnection*> routes_;
  std::size_t handshakes_ = 0;
  std::vector<std::shared_ptr<QuicConnection>> touched_;
};

}  // namespace rendr::carrier

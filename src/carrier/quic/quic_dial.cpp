// QuicTransport: resolve, open a UDP socket towards the server, run the QUIC handshake.
#include "carrier/quic/quic_carrier.hpp"

#include <asio/ip/udp.hpp>
#include <asio/post.hpp>

#include "carrier/quic/quic_connection.hpp"
#include "carrier/quic/quic_error.hpp"

namespace rendr::carrier {

namespace {

QuicOptions with_payload_limit(QuicOptions options, std::size_t max_datagram_size) {
  if (max_datagram_size != 0) options.same_host_max_udp_payload = max_datagram_size;
  return options;
}

class QuicDialOp : public std::enable_shared_from_this<QuicDialOp> {
 public:
  QuicDialOp(asio::any_io_executor executor, const QuicOptions& options, DialTarget target,
             DialCallback done)
      : strand_(asio::make_strand(executor)),
        resolver_(strand_),
        options_(with_payload_limit(options, target.max_datagram_size)),
        target_(std::move(target)),
        done_(std::move(done)) {}

  void run() {
    error_code ec;
    credentials_ = TlsCredentials::for_client(target_.tls, ec);
    if (ec) {
      asio::post(strand_, [self = shared_from_this(), ec] { self->finish(ec, nullptr); });
      return;
    }
    asio::post(strand_, [self = shared_from_this()] {
      self->resolver_.async_resolve(
          self->target_.host, std::to_string(self->target_.port),
          asio::ip::resolver_base::numeric_service,
          [self](error_code ec, asio::ip::udp::resolver::results_type results) {
            self->on_resolved(ec, std::move(results));
          });
    });
  }

 private:
  void on_resolved(error_code ec, asio::ip::udp::resolver::results_type results) {
    if (!ec && results.empty()) ec = asio::error::host_not_found;
    if (ec) {
      finish(ec, nullptr);
      return;
    }
    const auto remote = results.begin()->endpoint();
    asio::ip::udp::socket socket(strand_);
    socket.open(remote.protocol(), ec);
    if (!ec) socket.connect(remote, ec);
    if (ec) {
      finish(ec, nullptr);
      return;
    }
    error_code ignored;
    const int buffer = static_cast<int>(options_.socket_buffer);
    socket.set_option(asio::socket_base::receive_buffer_size(buffer), ignored);
    socket.set_option(asio::socket_base::send_buffer_size(buffer), ignored);
    // The handshaking connection keeps this op alive (through its callback), never the reverse:
    // a dial nobody waits for any more (its path died meanwhile, the engine stops) must not hold
    // itself up in a cycle. The connection lives while its socket read or timer is pending.
    QuicConnection::make_client(
        strand_, std::move(socket), credentials_, target_.tls, target_.host, options_,
        [self = shared_from_this()](error_code ec, std::shared_ptr<QuicConnection> c) {
          self->finish(ec, std::move(c));
        },
        ec);
    if (ec) finish(ec, nullptr);
  }

  void finish(error_code ec, std::shared_ptr<Carrier> carrier) {
    DialCallback done = std::move(done_);
    done_ = nullptr;
    if (done) done(ec, std::move(carrier));
  }

  QuicStrand strand_;
  asio::ip::udp::resolver resolver_;
  const QuicOptions options_;
  const DialTarget target_;
  DialCallback done_;
  std::shared_ptr<TlsCredentials> credentials_;
};

}  // namespace

void QuicTransport::async_dial(asio::any_io_executor executor, const std::string& host,
                               std::uint16_t port, DialCallback done) {
  async_dial_to(std::move(executor), DialTarget{host, port, {}}, std::move(done));
}

void QuicTransport::async_dial_to(asio::any_io_executor executor, const DialTarget& target,
                                  DialCallback done) {
  std::make_shared<QuicDialOp>(std::move(executor), options_, target, std::move(done))->run();
}

}  // namespace rendr::carrier

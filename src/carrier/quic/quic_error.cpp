#include "carrier/quic/quic_error.hpp"

#include <string>

namespace rendr::carrier {

namespace {

class QuicCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "rendr.quic"; }
  std::string message(int value) const override {
    switch (static_cast<quic_errc>(value)) {
      case quic_errc::tls_credentials:
        return "QUIC: TLS certificate, key or CA file could not be loaded";
      case quic_errc::certificate_untrusted:
        return "QUIC: the server's certificate is not trusted (unknown issuer)";
      case quic_errc::certificate_name_mismatch:
        return "QUIC: the server's certificate does not match the server name";
      case quic_errc::certificate_expired:
        return "QUIC: the server's certificate is expired or not yet valid";
      case quic_errc::tls_handshake_failed:
        return "QUIC: TLS handshake failed";
      case quic_errc::handshake_refused:
        return "QUIC: the peer refused the handshake";
      case quic_errc::handshake_timeout:
        return "QUIC: handshake timed out";
      case quic_errc::idle_timeout:
        return "QUIC: idle timeout";
      case quic_errc::peer_closed_with_error:
        return "QUIC: the peer closed the connection with an error";
      case quic_errc::stream_reset:
        return "QUIC: the peer reset the stream";
      case quic_errc::transport_error:
        return "QUIC: transport error";
    }
    return "QUIC: unknown error";
  }
};

}  // namespace

const std::error_category& quic_category() noexcept {
  static const QuicCategory category;
  return category;
}

}  // namespace rendr::carrier

#pragma once
// Why a QUIC path failed: std::error_code values in the "rendr.quic" category, so a failed dial
// says what went wrong (an untrusted certificate, a wrong name, an idle timeout).
#include <system_error>

namespace rendr::carrier {

enum class quic_errc {
  tls_credentials = 1,        // the certificate, key or CA file could not be loaded
  certificate_untrusted,      // the server's chain does not lead to a trusted CA
  certificate_name_mismatch,  // the certificate does not name the server
  certificate_expired,        // the certificate is expired or not yet valid
  tls_handshake_failed,       // another TLS failure on this side (e.g. no common ALPN)
  handshake_refused,          // the peer closed the connection during the handshake
  handshake_timeout,          // no handshake within QuicOptions::handshake_timeout
  idle_timeout,               // nothing heard for QuicOptions::idle_timeout
  peer_closed_with_error,     // the peer sent CONNECTION_CLOSE with an error code
  stream_reset,               // the peer reset or stopped the rendr stream
  transport_error,            // ngtcp2 reported another error
};

const std::error_category& quic_category() noexcept;

inline std::error_code make_error_code(quic_errc e) noexcept {
  return {static_cast<int>(e), quic_category()};
}

}  // namespace rendr::carrier

template <>
struct std::is_error_code_enum<rendr::carrier::quic_errc> : std::true_type {};

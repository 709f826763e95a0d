#pragma once
// GnuTLS glue of QUIC paths: credentials (loaded once per listener or dial) and the TLS 1.3
// session of one connection, configured for ngtcp2 with ALPN "rendr/1".
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include <memory>
#include <string>
#include <system_error>

#include "rendr/tls.hpp"

namespace rendr::carrier {

inline constexpr char kQuicAlpn[] = "rendr/1";

// gnutls certificate credentials, freed with the last owner.
class TlsCredentials {
 public:
  // The server's certificate and key; errors are quic_errc::tls_credentials.
  static std::shared_ptr<TlsCredentials> for_server(const TlsServerConfig& config,
                                                    std::error_code& ec);
  // The client's trust anchors: config.ca_file, else the system store (unused if !verify).
  static std::shared_ptr<TlsCredentials> for_client(const TlsClientConfig& config,
                                                    std::error_code& ec);
  ~TlsCredentials();
  TlsCredentials(const TlsCredentials&) = delete;
  TlsCredentials& operator=(const TlsCredentials&) = delete;
  gnutls_certificate_credentials_t native() const { return cred_; }

 private:
  TlsCredentials() = default;
  gnutls_certificate_credentials_t cred_ = nullptr;
};

// One connection's TLS session. `conn_ref` is how ngtcp2's crypto helpers find the connection.
class TlsSession {
 public:
  TlsSession() = default;
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // `verify_name` empty with verify on: the chain is checked but no name (never the case for a
  // dial: the path's host is the default). `sni` is sent unless it is an IP literal.
  // `alpn`: the protocol offered (kQuicAlpn but in tests).
  std::error_code init_client(const TlsCredentials& credentials, const TlsClientConfig& config,
                              const std::string& host, const std::string& alpn,
                              ngtcp2_crypto_conn_ref* conn_ref);
  std::error_code init_server(const TlsCredentials& credentials, ngtcp2_crypto_conn_ref* conn_ref);
  gnutls_session_t native() const { return session_; }
  // After a local TLS failure: why (certificate_untrusted, name mismatch, ...).
  std::error_code failure_reason() const;

 private:
  gnutls_session_t session_ = nullptr;
  bool verifying_ = false;
};

}  // namespace rendr::carrier

#include "carrier/quic/quic_tls.hpp"

#include <arpa/inet.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include "carrier/quic/quic_error.hpp"

namespace rendr::carrier {

namespace {

// TLS 1.3 only (QUIC requires it); the middlebox compatibility mode is meaningless in QUIC.
constexpr char kPriority[] = "%DISABLE_TLS13_COMPAT_MODE:NORMAL:-VERS-ALL:+VERS-TLS1.3";

bool is_ip_literal(const std::string& host) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

gnutls_datum_t alpn_datum(const std::string& alpn) {
  return {reinterpret_cast<unsigned char*>(const_cast<char*>(alpn.data())),
          static_cast<unsigned>(alpn.size())};
}

}  // namespace

TlsCredentials::~TlsCredentials() {
  if (cred_ != nullptr) gnutls_certificate_free_credentials(cred_);
}

std::shared_ptr<TlsCredentials> TlsCredentials::for_server(const TlsServerConfig& config,
                                                           std::error_code& ec) {
  std::shared_ptr<TlsCredentials> c(new TlsCredentials());
  if (gnutls_certificate_allocate_credentials(&c->cred_) != 0 ||
      gnutls_certificate_set_x509_key_file(c->cred_, config.cert_file.c_str(),
                                           config.key_file.c_str(), GNUTLS_X509_FMT_PEM) != 0) {
    ec = quic_errc::tls_credentials;
    return nullptr;
  }
  ec.clear();
  return c;
}

std::shared_ptr<TlsCredentials> TlsCredentials::for_client(const TlsClientConfig& config,
                                                           std::error_code& ec) {
  std::shared_ptr<TlsCredentials> c(new TlsCredentials());
  if (gnutls_certificate_allocate_credentials(&c->cred_) != 0) {
    ec = quic_errc::tls_credentials;
    return nullptr;
  }
  if (config.verify) {
    // Returns the number of certificates loaded; an empty or unreadable file is an error.
    const int n = config.ca_file.empty()
                      ? gnutls_certificate_set_x509_system_trust(c->cred_)
                      : gnutls_certificate_set_x509_trust_file(c->cred_, config.ca_file.c_str(),
                                                               GNUTLS_X509_FMT_PEM);
    if (n <= 0) {
      ec = quic_errc::tls_credentials;
      return nullptr;
    }
  }
  ec.clear();
  return c;
}

TlsSession::~TlsSession() {
  if (session_ != nullptr) gnutls_deinit(session_);
}

std::error_code TlsSession::init_client(const TlsCredentials& credentials,
                                        const TlsClientConfig& config, const std::string& host,
                                        const std::string& alpn_offered,
                                        ngtcp2_crypto_conn_ref* conn_ref) {
  if (gnutls_init(&session_, GNUTLS_CLIENT | GNUTLS_NO_END_OF_EARLY_DATA) != 0 ||
      gnutls_priority_set_direct(session_, kPriority, nullptr) != 0 ||
      ngtcp2_crypto_gnutls_configure_client_session(session_) != 0 ||
      gnutls_credentials_set(session_, GNUTLS_CRD_CERTIFICATE, credentials.native()) != 0) {
    return quic_errc::tls_handshake_failed;
  }
  gnutls_session_set_ptr(session_, conn_ref);
  const gnutls_datum_t alpn = alpn_datum(alpn_offered);
  gnutls_alpn_set_protocols(session_, &alpn, 1, GNUTLS_ALPN_MANDATORY);
  const std::string& name = config.server_name.empty() ? host : config.server_name;
  if (!is_ip_literal(name))
    gnutls_server_name_set(session_, GNUTLS_NAME_DNS, name.data(), name.size());
  if (config.verify) {
    // The handshake itself fails unless the chain is trusted and names `name` (an IP literal
    // is matched against the certificate's IP addresses).
    gnutls_session_set_verify_cert(session_, name.c_str(), 0);
    verifying_ = true;
  }
  return {};
}

std::error_code TlsSession::init_server(const TlsCredentials& credentials,
                                        ngtcp2_crypto_conn_ref* conn_ref) {
  if (gnutls_init(&session_,
                  GNUTLS_SERVER | GNUTLS_NO_AUTO_SEND_TICKET | GNUTLS_NO_END_OF_EARLY_DATA) != 0 ||
      gnutls_priority_set_direct(session_, kPriority, nullptr) != 0 ||
      ngtcp2_crypto_gnutls_configure_server_session(session_) != 0 ||
      gnutls_credentials_set(session_, GNUTLS_CRD_CERTIFICATE, credentials.native()) != 0) {
    return quic_errc::tls_handshake_failed;
  }
  gnutls_session_set_ptr(session_, conn_ref);
  // A client that does not offer "rendr/1" fails the handshake.
  const std::string required = kQuicAlpn;
  const gnutls_datum_t alpn = alpn_datum(required);
  gnutls_alpn_set_protocols(session_, &alpn, 1,
                            GNUTLS_ALPN_MANDATORY | GNUTLS_ALPN_SERVER_PRECEDENCE);
  return {};
}

std::error_code TlsSession::failure_reason() const {
  if (!verifying_ || session_ == nullptr) return quic_errc::tls_handshake_failed;
  const unsigned status = gnutls_session_get_verify_cert_status(session_);
  if (status & (GNUTLS_CERT_EXPIRED | GNUTLS_CERT_NOT_ACTIVATED))
    return quic_errc::certificate_expired;
  if (status & GNUTLS_CERT_UNEXPECTED_OWNER) return quic_errc::certificate_name_mismatch;
  if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA | GNUTLS_CERT_INVALID))
    return quic_errc::certificate_untrusted;
  return quic_errc::tls_handshake_failed;
}

}  // namespace rendr::carrier

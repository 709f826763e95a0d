#pragma once
// A throw-away TLS identity for the tests that run TLS over a Conn (OpenSSL, made at run time).
#include <memory>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace rendr::itest {

struct FreeKey {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct FreeCert {
  void operator()(X509* c) const { X509_free(c); }
};

// A fresh P-256 key and a one-hour self-signed CA certificate for it (never written to disk).
struct SelfSigned {
  std::unique_ptr<EVP_PKEY, FreeKey> key{EVP_EC_gen("P-256")};
  std::unique_ptr<X509, FreeCert> cert{X509_new()};

  SelfSigned() {
    X509* x = cert.get();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key.get());
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("rendr-test"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_EXTENSION* ca =
        X509V3_EXT_conf_nid(nullptr, nullptr, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(x, ca, -1);
    X509_EXTENSION_free(ca);
    X509_sign(x, key.get(), EVP_sha256());
  }

  // Makes `server` present this certificate and `client` trust it and verify its peer; false if
  // OpenSSL refused any of it.
  bool install(SSL_CTX* server, SSL_CTX* client) const {
    if (SSL_CTX_use_certificate(server, cert.get()) != 1 ||
        SSL_CTX_use_PrivateKey(server, key.get()) != 1 ||
        X509_STORE_add_cert(SSL_CTX_get_cert_store(client), cert.get()) != 1)
      return false;
    SSL_CTX_set_verify(client, SSL_VERIFY_PEER, nullptr);
    return true;
  }
};

}  // namespace rendr::itest

#include "support/test_cert.hpp"

#include <arpa/inet.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace rendr::testing {

namespace {

void check(int rv, const char* what) {
  if (rv < 0) throw std::runtime_error(std::string(what) + ": " + gnutls_strerror(rv));
}

void write_file(const std::string& path, const gnutls_datum_t& data) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(data.data), data.size);
  if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace

TestCertificate::TestCertificate(const Spec& spec) {
  char templ[] = "/tmp/rendr-cert-XXXXXX";
  if (mkdtemp(templ) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = templ;
  cert_file_ = dir_ + "/cert.pem";
  key_file_ = dir_ + "/key.pem";

  gnutls_x509_privkey_t key = nullptr;
  gnutls_x509_crt_t crt = nullptr;
  check(gnutls_x509_privkey_init(&key), "privkey_init");
  check(gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
        "privkey_generate");
  check(gnutls_x509_crt_init(&crt), "crt_init");
  const std::time_t now = std::time(nullptr);
  unsigned char serial[8];
  check(gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial), "rnd");
  serial[0] &= 0x7f;  // positive
  check(gnutls_x509_crt_set_version(crt, 3), "set_version");
  check(gnutls_x509_crt_set_serial(crt, serial, sizeof serial), "set_serial");
  check(gnutls_x509_crt_set_activation_time(crt, spec.expired ? now - 2 * 86400 : now - 3600),
        "activation");
  check(gnutls_x509_crt_set_expiration_time(crt, spec.expired ? now - 86400 : now + 86400),
        "expiration");
  check(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, spec.common_name.data(),
                                      spec.common_name.size()),
        "set_dn");
  check(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, "localhost", 9,
                                             GNUTLS_FSAN_APPEND),
        "san dns");
  unsigned char ip[4];
  inet_pton(AF_INET, "127.0.0.1", ip);
  check(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, sizeof ip,
                                             GNUTLS_FSAN_APPEND),
        "san ip");
  // Its own CA: the tests trust it directly through the CA file.
  check(gnutls_x509_crt_set_basic_constraints(crt, 1, -1), "basic_constraints");
  check(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_CERT_SIGN),
        "key_usage");
  check(gnutls_x509_crt_set_key(crt, key), "set_key");
  check(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), "sign");

  gnutls_datum_t pem{};
  check(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem), "crt_export");
  write_file(cert_file_, pem);
  gnutls_free(pem.data);
  check(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &pem), "key_export");
  write_file(key_file_, pem);
  gnutls_free(pem.data);
  gnutls_x509_crt_deinit(crt);
  gnutls_x509_privkey_deinit(key);
}

TestCertificate::~TestCertificate() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

}  // namespace rendr::testing

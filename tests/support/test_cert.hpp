#pragma once
// Throw-away TLS certificates for QUIC tests, made at run time with GnuTLS (no key is ever
// committed): a self-signed ECDSA certificate naming "localhost" and 127.0.0.1, its key and
// itself as the CA file, in a temporary directory removed with the object.
#include <string>

namespace rendr::testing {

class TestCertificate {
 public:
  struct Spec {
    std::string common_name = "rendr test";
    bool expired = false;  // valid from 2 days ago until yesterday
  };
  TestCertificate() : TestCertificate(Spec{}) {}
  explicit TestCertificate(const Spec& spec);  // throws std::runtime_error
  ~TestCertificate();
  TestCertificate(const TestCertificate&) = delete;
  TestCertificate& operator=(const TestCertificate&) = delete;

  const std::string& cert_file() const { return cert_file_; }  // also the CA file
  const std::string& key_file() const { return key_file_; }

 private:
  std::string dir_;
  std::string cert_file_;
  std::string key_file_;
};

}  // namespace rendr::testing

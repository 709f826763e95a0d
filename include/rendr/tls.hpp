#pragma once
// TLS 1.3 settings of QUIC paths (docs/design.md "QUIC paths").
#include <string>

namespace rendr {

// The server's certificate chain and private key, PEM files.
struct TlsServerConfig {
  std::string cert_file = {};  // PEM certificate chain, leaf first
  std::string key_file = {};   // PEM private key of the leaf certificate
};

// How a client checks the server of a quic:// path. Verification is on by default: the
// certificate chain must lead to `ca_file` (PEM; empty: the system trust store) and name
// `server_name` (empty: the path's host). `verify = false` accepts any certificate (the CLI's
// explicit --insecure): the path is still encrypted, but not authenticated.
struct TlsClientConfig {
  std::string ca_file = {};      // PEM trust anchors; empty: the system trust store
  std::string server_name = {};  // name the certificate must carry; empty: the path's host
  bool verify = true;            // false: accept any certificate (encrypted, not authenticated)
};

}  // namespace rendr

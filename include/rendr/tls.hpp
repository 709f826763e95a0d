#pragma once
// TLS 1.3 settings of QUIC paths (docs/design.md "QUIC paths").
#include <string>

namespace rendr {

// The server's certificate chain and private key, PEM files.
struct TlsServerConfig {
  std::string cert_file = {};
  std::string key_file = {};
};

// How a client checks the server of a quic:// path. Verification is on by default: the
// certificate chain must lead to `ca_file` (PEM; empty: the system trust store) and name
// `server_name` (empty: the path's host). `verify = false` accepts any certificate (the CLI's
// explicit --insecure): the path is still encrypted, but not authenticated.
struct TlsClientConfig {
  std::string ca_file = {};
  std::string server_name = {};
  bool verify = true;
};

}  // namespace rendr

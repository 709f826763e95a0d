#pragma once
// TLS flags of quic:// paths: --cert/--key on `listen`, --ca/--server-name/--insecure on `dial`.
#include <vector>

#include "args.hpp"
#include "rendr/rendr.hpp"

namespace rendr::cli {

std::vector<OptionSpec> tls_server_options();
std::vector<OptionSpec> tls_client_options();

// --cert and --key (both required once a --quic address is given).
rendr::TlsServerConfig tls_server_config(const Args& args);
// Applies --ca, --server-name and --insecure to every quic:// path (verification stays on
// unless --insecure; --insecure with --ca is a usage error).
void apply_tls_client_options(const Args& args, std::vector<rendr::PathSpec>& paths);

}  // namespace rendr::cli

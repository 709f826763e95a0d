#include "tls_options.hpp"

namespace rendr::cli {

std::vector<OptionSpec> tls_server_options() {
  return {{"cert", OptionSpec::Kind::value, "FILE", "TLS certificate chain (PEM) for --quic"},
          {"key", OptionSpec::Kind::value, "FILE", "TLS private key (PEM) for --quic"}};
}

std::vector<OptionSpec> tls_client_options() {
  return {{"ca", OptionSpec::Kind::value, "FILE",
           "quic:// paths: trust this CA file (PEM) instead of the system store"},
          {"server-name", OptionSpec::Kind::value, "NAME",
           "quic:// paths: the name the certificate must carry (default: the path's host)"},
          {"insecure", OptionSpec::Kind::flag, "",
           "quic:// paths: do not verify the server's certificate (encrypted, not "
           "authenticated)"}};
}

rendr::TlsServerConfig tls_server_config(const Args& args) {
  const auto cert = args.value("cert");
  const auto key = args.value("key");
  if (!cert || !key) throw UsageError("--quic needs --cert FILE and --key FILE");
  return {*cert, *key};
}

void apply_tls_client_options(const Args& args, std::vector<rendr::PathSpec>& paths) {
  rendr::TlsClientConfig tls;
  tls.ca_file = args.text("ca", "");
  tls.server_name = args.text("server-name", "");
  tls.verify = !args.has("insecure");
  if (!tls.verify && !tls.ca_file.empty())
    throw UsageError("--insecure and --ca exclude each other");
  for (rendr::PathSpec& spec : paths) {
    if (spec.transport == "quic") spec.tls = tls;
  }
}

}  // namespace rendr::cli

#include "dialer_options.hpp"

#include <string>
#include <system_error>

#include "psk_file.hpp"
#include "tls_options.hpp"

namespace rendr::cli {

rendr::Dialer dialer_from_args(const Args& args, std::string_view command) {
  rendr::Dialer dialer;
  dialer.mode = args.mode();
  dialer.migration_budget = args.millis("budget-ms", dialer.migration_budget);
  dialer.dial_timeout = args.millis("connect-timeout-ms", dialer.dial_timeout);
  if (const auto psk = args.value("psk-file")) dialer.options.psk = read_psk_file(*psk);
  for (const std::string& text : args.values("path")) {
    std::error_code ec;
    dialer.paths.push_back(rendr::PathSpec::parse(text, ec));
    if (ec) throw UsageError("bad --path '" + text + "': " + ec.message());
  }
  if (dialer.paths.empty())
    throw UsageError("rendr " + std::string(command) +
                     " needs at least one --path tcp://HOST:PORT");
  apply_tls_client_options(args, dialer.paths);
  return dialer;
}

}  // namespace rendr::cli

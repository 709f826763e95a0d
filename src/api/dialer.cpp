// rendr::Dialer: a client session with every configured path, returned once OPEN completed.
#include "rendr/dialer.hpp"

#include "carrier/carrier.hpp"
#include "runtime/convert.hpp"
#include "runtime/session.hpp"

namespace rendr {

Conn Dialer::dial(std::error_code& ec) const {
  ec.clear();
  if (paths.empty()) {
    ec = errc::bad_path_spec;
    return {};
  }
  for (const auto& spec : paths) {
    if (!carrier::Registry::instance().find(spec.transport) || spec.host.empty() ||
        spec.port == 0) {
      ec = errc::bad_path_spec;
      return {};
    }
  }
  Engine& eng = engine != nullptr ? *engine : Engine::default_engine();
  auto session = runtime::Session::make_client(
      eng.executor(), runtime::make_config(mode, migration_budget, options));
  // The handle owns the session from here on: on failure, dropping it aborts the flow.
  auto handle = runtime::make_conn(session);
  for (const auto& spec : paths) {
    session->add_path(spec, ec);
    if (ec) return {};
  }
  ec = session->wait_established(core::Clock::now() + runtime::to_duration(dial_timeout));
  if (ec) return {};
  return Conn(std::move(handle));
}

Conn Dialer::dial() const {
  std::error_code ec;
  Conn c = dial(ec);
  if (ec) throw std::system_error(ec, "rendr::Dialer::dial");
  return c;
}

}  // namespace rendr

// rendr::Dialer: a client session with every configured path, returned once OPEN completed.
#include "rendr/dialer.hpp"

#include <mutex>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "carrier/carrier.hpp"
#include "runtime/convert.hpp"
#include "runtime/engine_thread.hpp"
#include "runtime/session.hpp"

namespace rendr {

namespace {

error_code check_paths(const std::vector<PathSpec>& paths) {
  if (paths.empty()) return errc::bad_path_spec;
  for (const auto& spec : paths) {
    if (!carrier::Registry::instance().find(spec.transport) || spec.host.empty() || spec.port == 0)
      return errc::bad_path_spec;
  }
  return {};
}

// One async_dial: completes once, with the flow when it is established, else with the error
// (the handle is then dropped, which aborts the flow). Owned by its pending timer wait, so it
// lives until the dial is decided or the engine's context goes away; the session only knows it
// weakly (no reference cycle through the session's waiter).
class DialOp {
 public:
  using Done = std::function<void(error_code, std::shared_ptr<detail::ConnCore>)>;
  DialOp(const asio::any_io_executor& ex, std::shared_ptr<detail::ConnCore> handle, Done done)
      : timer(ex), handle_(std::move(handle)), done_(std::move(done)) {}

  void finish(error_code ec) {
    std::shared_ptr<detail::ConnCore> handle;
    Done done;
    {
      std::lock_guard lock(mu_);
      if (!done_) return;
      handle = std::move(handle_);
      done = std::move(done_);
      done_ = nullptr;
      timer.cancel();
    }
    if (ec) handle.reset();
    done(ec, std::move(handle));
  }

  asio::steady_timer timer;

 private:
  std::mutex mu_;
  std::shared_ptr<detail::ConnCore> handle_;
  Done done_;
};

}  // namespace

std::shared_ptr<detail::ConnCore> Dialer::dial_core(const PacketOptions* packet,
                                                    error_code& ec) const {
  ec.clear();
  Engine& eng = engine != nullptr ? *engine : Engine::default_engine();
  if (runtime::on_engine_thread(eng.executor())) {
    ec = errc::blocking_call_on_engine_thread;
    return {};
  }
  ec = check_paths(paths);
  if (ec) return {};
  auto config = runtime::make_config(mode, migration_budget, options);
  if (packet != nullptr) config.packet = runtime::to_core(*packet);
  auto session = runtime::Session::make_client(eng.executor(), config);
  // The handle owns the session from here on: on failure, dropping it aborts the flow.
  auto handle = runtime::make_conn(session);
  for (const auto& spec : paths) {
    session->add_path(spec, ec);
    if (ec) return {};
  }
  ec = session->wait_established(core::Clock::now() + runtime::to_duration(dial_timeout));
  if (ec) return {};
  return handle;
}

Conn Dialer::dial(error_code& ec) const {
  auto handle = dial_core(nullptr, ec);
  return handle ? Conn(std::move(handle)) : Conn();
}

PacketConn Dialer::dial_packet(const PacketOptions& packet, error_code& ec) const {
  auto handle = dial_core(&packet, ec);
  return handle ? PacketConn(std::move(handle)) : PacketConn();
}

PacketConn Dialer::dial_packet(const PacketOptions& packet) const {
  error_code ec;
  PacketConn c = dial_packet(packet, ec);
  if (ec) throw std::system_error(ec, "rendr::Dialer::dial_packet");
  return c;
}

Conn Dialer::dial() const {
  error_code ec;
  Conn c = dial(ec);
  if (ec) throw std::system_error(ec, "rendr::Dialer::dial");
  return c;
}

void Dialer::start_async_dial(std::function<void(error_code, Conn)> done) const {
  start_async_dial_core(
      nullptr, [done = std::move(done)](error_code ec, std::shared_ptr<detail::ConnCore> handle) {
        done(ec, handle ? Conn(std::move(handle)) : Conn());
      });
}

void Dialer::start_async_dial_packet(const PacketOptions& packet,
                                     std::function<void(error_code, PacketConn)> done) const {
  start_async_dial_core(
      &packet, [done = std::move(done)](error_code ec, std::shared_ptr<detail::ConnCore> handle) {
        done(ec, handle ? PacketConn(std::move(handle)) : PacketConn());
      });
}

void Dialer::start_async_dial_core(const PacketOptions* packet, AsyncDialDone done) const {
  Engine& eng = engine != nullptr ? *engine : Engine::default_engine();
  const auto ex = eng.executor();
  auto fail = [&](error_code ec) {
    asio::post(ex, [done = std::move(done), ec] { done(ec, nullptr); });
  };
  if (const auto ec = check_paths(paths)) return fail(ec);
  auto config = runtime::make_config(mode, migration_budget, options);
  if (packet != nullptr) config.packet = runtime::to_core(*packet);
  auto session = runtime::Session::make_client(ex, config);
  auto handle = runtime::make_conn(session);
  for (const auto& spec : paths) {
    error_code ec;
    session->add_path(spec, ec);
    if (ec) return fail(ec);
  }
  auto op = std::make_shared<DialOp>(ex, std::move(handle), std::move(done));
  op->timer.expires_after(dial_timeout);
  op->timer.async_wait([op, session](error_code ec) {
    if (ec == asio::error::operation_aborted) return;
    op->finish(session->establish_result());
  });
  session->on_established([weak = std::weak_ptr<DialOp>(op)](error_code ec) {
    if (auto op = weak.lock()) op->finish(ec);
  });
}

}  // namespace rendr

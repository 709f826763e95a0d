// Executors and completion tokens (issue 8): rendr on the application's own io_context,
// async_dial / async_accept with every kind of completion token, blocking calls refused on an
// engine thread, and on_migrate callbacks serialized and silent once the Conn is dropped.
#include <atomic>
#include <future>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <asio/write.hpp>

#include "harness.hpp"

namespace rendr::itest {
namespace {

// deferred left experimental in Asio 1.24 (Boost.Asio 1.81 has only asio::deferred).
#if defined(RENDR_ASIO_BOOST)
using asio::deferred;
#else
using asio::experimental::deferred;
#endif

using namespace asio::experimental::awaitable_operators;

PathSpec to_port(std::uint16_t port) {
  return PathSpec::parse("tcp://" + loopback(port));
}

// Echoes until EOF, then closes its direction too.
asio::awaitable<void> echo(Conn conn) {
  Bytes buffer(4 * KiB);
  for (;;) {
    error_code ec;
    const std::size_t n = co_await conn.async_read_some(
        asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    co_await asio::async_write(conn, asio::buffer(buffer.data(), n), asio::use_awaitable);
  }
  conn.close();
}

// One thread runs the application's io_context, which is also rendr's engine: the listener,
// the dial, both flows and the echo all run on it, and rendr starts no thread of its own.
TEST(ExecutorTest, RendrRunsOnTheApplicationsOwnIoContext) {
  asio::io_context io;
  std::optional<Engine> engine(std::in_place, io);
  ListenOptions listen_options;
  listen_options.engine = &*engine;
  Listener listener = listen_tcp("127.0.0.1:0", listen_options);
  Dialer dialer;
  dialer.paths = {to_port(listener.port()), to_port(listener.port())};
  dialer.engine = &*engine;
  dialer.dial_timeout = scaled(5s);

  const auto io_thread = std::this_thread::get_id();
  int round_trips = 0;
  bool all_on_io_thread = true;
  error_code failure;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        Conn server = co_await listener.async_accept(asio::use_awaitable);
        EXPECT_TRUE(server.get_executor() == asio::any_io_executor(io.get_executor()));
        co_await echo(std::move(server));
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        Conn client = co_await dialer.async_dial(asio::use_awaitable);
        EXPECT_TRUE(client.get_executor() == asio::any_io_executor(io.get_executor()));
        std::array<std::uint8_t, 32> message{};
        std::array<std::uint8_t, 32> reply{};
        for (int i = 0; i < 200; ++i) {
          message[0] = static_cast<std::uint8_t>(i);
          co_await asio::async_write(client, asio::buffer(message), asio::use_awaitable);
          co_await asio::async_read(client, asio::buffer(reply), asio::use_awaitable);
          all_on_io_thread = all_on_io_thread && std::this_thread::get_id() == io_thread;
          if (reply != message) throw std::runtime_error("echo differs");
          ++round_trips;
        }
        client.close();
        Bytes rest(1);
        co_await asio::async_read(client, asio::buffer(rest),
                                  asio::redirect_error(asio::use_awaitable, failure));
        listener.close();
      },
      [&](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  // Bounded: everything above finishes in milliseconds; run_for stops a hung test.
  io.run_for(scaled(10s));
  EXPECT_EQ(round_trips, 200);
  EXPECT_TRUE(all_on_io_thread);
  EXPECT_EQ(failure, error_code(asio::error::eof));
  // The Engine over an application context waits for nothing: its destructor returns at once
  // although this thread no longer runs the context.
  const auto before = Clock::now();
  engine.reset();
  EXPECT_LT(Clock::now() - before, 500ms);
}

class TokenTest : public IntegrationTest {};

TEST_F(TokenTest, AsyncDialAndAcceptTakeEveryCompletionToken) {
  listen();
  ASSERT_FALSE(HasFatalFailure());
  // Generous: a loaded 2-core machine once took over 5 s for one of these dials.
  Dialer d = dialer({to_port(listener_.port())});
  d.dial_timeout = scaled(20s);

  // Futures.
  {
    auto accepted = listener_.async_accept(asio::use_future);
    auto dialed = d.async_dial(asio::use_future);
    ASSERT_EQ(dialed.wait_for(scaled(20s)), std::future_status::ready);
    ASSERT_EQ(accepted.wait_for(scaled(20s)), std::future_status::ready);
    EXPECT_TRUE(dialed.get().is_open());
    EXPECT_TRUE(accepted.get().is_open());
  }
  // Callbacks, bound to an executor of the test's own: they complete there. As with any Asio
  // I/O object, the handler's context outlives the operation: rendr's thread drops its copy
  // of the handler's strand just after posting to it, so `io` lives to the end of the test.
  asio::io_context io;
  {
    auto strand = asio::make_strand(io);
    std::promise<bool> accepted_on_strand;
    std::promise<bool> dialed_on_strand;
    listener_.async_accept(asio::bind_executor(strand, [&](error_code ec, Conn c) {
      accepted_on_strand.set_value(!ec && c.is_open() && strand.running_in_this_thread());
    }));
    d.async_dial(asio::bind_executor(strand, [&](error_code ec, Conn c) {
      dialed_on_strand.set_value(!ec && c.is_open() && strand.running_in_this_thread());
    }));
    io.run_for(scaled(20s));  // returns once both handlers ran (no work left)
    auto accepted = accepted_on_strand.get_future();
    auto dialed = dialed_on_strand.get_future();
    ASSERT_EQ(accepted.wait_for(0s), std::future_status::ready);
    ASSERT_EQ(dialed.wait_for(0s), std::future_status::ready);
    EXPECT_TRUE(accepted.get());
    EXPECT_TRUE(dialed.get());
  }
  // Deferred: nothing starts until the deferred operation is launched.
  {
    auto accept_op = listener_.async_accept(deferred);
    auto dial_op = d.async_dial(deferred);
    auto accepted = std::move(accept_op)(asio::use_future);
    auto dialed = std::move(dial_op)(asio::use_future);
    ASSERT_EQ(dialed.wait_for(scaled(20s)), std::future_status::ready);
    ASSERT_EQ(accepted.wait_for(scaled(20s)), std::future_status::ready);
    EXPECT_TRUE(dialed.get().is_open());
    EXPECT_TRUE(accepted.get().is_open());
  }
  // Coroutines on another io_context.
  {
    io.restart();
    auto both = asio::co_spawn(
        io,
        [&]() -> asio::awaitable<bool> {
          auto accepted = listener_.async_accept(asio::use_future);
          Conn client = co_await d.async_dial(asio::use_awaitable);
          co_return client.is_open() && accepted.get().is_open();
        },
        asio::use_future);
    io.run_for(scaled(20s));
    ASSERT_EQ(both.wait_for(0s), std::future_status::ready);
    EXPECT_TRUE(both.get());
  }
}

// An application's context may be destroyed as soon as its run() returns: rendr's thread,
// which completed the last read there, must be done with that context by then. Each round
// below ends a context right after its only read completed from the engine's thread; under
// TSan, an engine thread still inside post() waking the finished context is reported.
TEST_F(TokenTest, AContextMayEndRightAfterItsLastCompletion) {
  listen();
  ASSERT_FALSE(HasFatalFailure());
  auto [client, server] = connect(dialer({to_port(listener_.port())}));
  ASSERT_TRUE(client.is_open());
  constexpr int kRounds = 100;
  int echoed = 0;
  for (int round = 0; round < kRounds; ++round) {
    auto io = std::make_unique<asio::io_context>();
    std::uint8_t byte = 0;
    error_code read_error = asio::error::would_block;
    client.async_read_some(asio::buffer(&byte, 1),
                           asio::bind_executor(io->get_executor(), [&](error_code ec, std::size_t) {
                             read_error = ec;
                           }));
    const auto sent = static_cast<std::uint8_t>(round);
    server.write_some(asio::buffer(&sent, 1));
    io->run_for(scaled(10s));  // returns once the read completed (no work left)
    io.reset();
    if (!read_error && byte == sent) ++echoed;
  }
  EXPECT_EQ(echoed, kRounds);
}

TEST_F(TokenTest, AsyncDialReportsFailures) {
  // A port nobody listens on: the transport's error, within the dial timeout.
  asio::io_context io;
  asio::ip::tcp::acceptor closed(io, {asio::ip::address_v4::loopback(), 0});
  const std::uint16_t port = closed.local_endpoint().port();
  closed.close();
  Dialer d = dialer({to_port(port)});
  d.dial_timeout = 300ms;
  auto refused = d.async_dial(asio::use_future);
  ASSERT_EQ(refused.wait_for(scaled(5s)), std::future_status::ready);
  try {
    refused.get();
    ADD_FAILURE() << "dial to a closed port succeeded";
  } catch (const system_error& e) {
    EXPECT_EQ(e.code(), error_code(asio::error::connection_refused)) << e.what();
  }
  // A path spec no transport understands.
  d.paths = {PathSpec{.transport = "carrier-pigeon", .host = "127.0.0.1", .port = 1}};
  std::promise<error_code> bad;
  d.async_dial([&](error_code ec, Conn) { bad.set_value(ec); });
  auto bad_result = bad.get_future();
  ASSERT_EQ(bad_result.wait_for(scaled(5s)), std::future_status::ready);
  EXPECT_EQ(bad_result.get(), error_code(errc::bad_path_spec));
}

// async_accept honours its handler's cancellation slot: a waiting accept completes with
// operation_aborted and an empty Conn (a cancellation_signal, and the awaitable || timeout), and
// the listener goes on: the flow that arrives afterwards goes to the next accept, not to a
// cancelled one.
TEST_F(TokenTest, AsyncAcceptHonoursCancellationAndTheListenerGoesOn) {
  listen();
  ASSERT_FALSE(HasFatalFailure());
  asio::io_context io;

  // A cancellation_signal, emitted on the handler's executor (Asio's rule).
  asio::cancellation_signal signal;
  std::optional<error_code> signalled;
  bool signalled_conn_empty = false;
  listener_.async_accept(asio::bind_cancellation_slot(
      signal.slot(), asio::bind_executor(io, [&](error_code ec, Conn c) {
        signalled = ec;
        signalled_conn_empty = !c.is_open();
      })));
  asio::post(io, [&] { signal.emit(asio::cancellation_type::terminal); });
  io.run_for(scaled(5s));  // returns once the handler ran (no work left)
  ASSERT_TRUE(signalled.has_value()) << "the cancelled accept never completed";
  EXPECT_EQ(*signalled, error_code(asio::error::operation_aborted));
  EXPECT_TRUE(signalled_conn_empty);

  // An accept with a timeout: the timer wins, the accept is cancelled and completes.
  io.restart();
  bool timed_out = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer timer(io, 50ms);
        auto first = co_await (listener_.async_accept(asio::use_awaitable) ||
                               timer.async_wait(asio::use_awaitable));
        timed_out = first.index() == 1;
      },
      asio::detached);
  io.run_for(scaled(5s));
  EXPECT_TRUE(timed_out);

  // The listener goes on: a flow dialled now is handed to the next accept.
  const Dialer d = dialer({to_port(listener_.port())});
  auto accepted = listener_.async_accept(asio::use_future);
  Conn client = d.dial();
  ASSERT_EQ(accepted.wait_for(scaled(10s)), std::future_status::ready);
  Conn server = accepted.get();
  ASSERT_TRUE(server.is_open());
  asio::write(client, asio::buffer(std::string("ok")));
  std::string two(2, '\0');
  asio::read(server, asio::buffer(two));
  EXPECT_EQ(two, "ok");
}

// Each blocking call, made on a thread that runs the engine, fails at once instead of waiting
// for that very thread (a deadlock before issue 8).
TEST_F(TokenTest, BlockingCallsOnAnEngineThreadFailAtOnce) {
  Conn client;
  Conn server;
  ASSERT_TRUE(listen_and_connect(1, client, server));
  const Dialer d = dialer({to_port(listener_.port())});

  struct Results {
    error_code dial, accept, read, write;
  };
  std::promise<Results> done;
  // The client's engine runs the dial and the client's I/O; the server's runs the listener.
  asio::post(client_engine_.executor(), [&] {
    Results r;
    (void)d.dial(r.dial);
    Bytes buffer(16);
    (void)client.read_some(asio::buffer(buffer), r.read);
    (void)client.write_some(asio::buffer(buffer), r.write);
    asio::post(server_engine_.executor(), [&, r]() mutable {
      (void)listener_.accept(r.accept);
      done.set_value(r);
    });
  });
  auto results = done.get_future();
  ASSERT_EQ(results.wait_for(scaled(5s)), std::future_status::ready);
  const Results r = results.get();
  const error_code refused = errc::blocking_call_on_engine_thread;
  EXPECT_EQ(r.dial, refused);
  EXPECT_EQ(r.accept, refused);
  EXPECT_EQ(r.read, refused);
  EXPECT_EQ(r.write, refused);
  EXPECT_NE(refused.message().find("async"), std::string::npos) << refused.message();

  // The same calls from an application thread still work.
  asio::write(client, asio::buffer(std::string("ok")));
  std::string two(2, '\0');
  asio::read(server, asio::buffer(two));
  EXPECT_EQ(two, "ok");
}

// on_migrate: every migration reported once, in order, one callback at a time, on an engine
// thread (never inline on the thread calling migrate()), with two engine threads to race on.
TEST_F(TokenTest, MigrateCallbacksRunInOrderOneAtATimeOnTheEngine) {
  Engine engine(2);
  listen();
  ASSERT_FALSE(HasFatalFailure());
  Dialer d = dialer({to_port(listener_.port()), to_port(listener_.port())});
  d.engine = &engine;
  auto [client, server] = connect_all_up(d, 2);
  ASSERT_TRUE(client.is_open());

  std::mutex mu;
  std::vector<std::pair<PathId, PathId>> seen;
  std::atomic<int> running{0};
  std::atomic<bool> overlapped{false};
  std::atomic<bool> off_engine{false};
  const auto test_thread = std::this_thread::get_id();
  client.on_migrate([&](PathId from, PathId to, MigrateCause) {
    if (running.fetch_add(1) != 0) overlapped = true;
    if (std::this_thread::get_id() == test_thread ||
        !engine.context().get_executor().running_in_this_thread())
      off_engine = true;
    std::this_thread::yield();  // widen the window for an overlap
    {
      std::lock_guard lock(mu);
      seen.emplace_back(from, to);
    }
    running.fetch_sub(1);
  });
  const auto stats = client.stats();
  ASSERT_GE(stats.paths.size(), 2u);
  const PathId a = stats.paths[0].id;
  const PathId b = stats.paths[1].id;
  constexpr int kMigrations = 60;
  for (int i = 0; i < kMigrations; ++i)
    ASSERT_FALSE(client.migrate(client.active_path() == a ? b : a));
  ASSERT_TRUE(wait_until(
      [&] {
        std::lock_guard lock(mu);
        return seen.size() >= client.migration_count();
      },
      scaled(5s)));
  std::lock_guard lock(mu);
  EXPECT_EQ(seen.size(), client.migration_count());
  EXPECT_FALSE(overlapped);
  EXPECT_FALSE(off_engine);
  for (std::size_t i = 1; i < seen.size(); ++i)
    EXPECT_EQ(seen[i].first, seen[i - 1].second) << "callback " << i << " out of order";
  client.on_migrate(nullptr);
}

// Dropping the last Conn, from inside its callback or right after migrate() on another thread,
// silences it at once: no callback runs after the drop has returned. Many fresh flows, so the
// drop lands at every point of a delivery (run under TSan and ASan in CI).
TEST_F(TokenTest, NoMigrateCallbackAfterTheConnIsDropped) {
  Engine engine(2);
  listen();
  ASSERT_FALSE(HasFatalFailure());
  Dialer d = dialer({to_port(listener_.port()), to_port(listener_.port())});
  d.engine = &engine;
  constexpr int kIterations = 30;
  for (int i = 0; i < kIterations; ++i) {
    auto [client, server] = connect_all_up(d, 2);
    ASSERT_TRUE(client.is_open());
    const auto stats = client.stats();
    ASSERT_GE(stats.paths.size(), 2u);
    const PathId other =
        stats.paths[0].id == client.active_path() ? stats.paths[1].id : stats.paths[0].id;

    struct Shared {
      std::mutex mu;
      std::optional<Conn> conn;  // the last handle, when the callback drops it
      std::atomic<bool> dropped{false};
      std::atomic<int> late_calls{0};
      std::atomic<int> calls{0};
    };
    auto shared = std::make_shared<Shared>();
    const bool drop_inside = i % 2 == 0;
    client.on_migrate([shared](PathId, PathId, MigrateCause) {
      ++shared->calls;
      if (shared->dropped) ++shared->late_calls;
      std::optional<Conn> last;
      std::lock_guard lock(shared->mu);
      last.swap(shared->conn);  // dropped after the lock, at the end of the callback
    });
    if (drop_inside) {
      {
        std::lock_guard lock(shared->mu);
        shared->conn = std::move(client);
        client = Conn();
        ASSERT_FALSE(shared->conn->migrate(other));
      }
      // A migration of the flow's own (quality) may have called back before the Conn was
      // handed over: wait for the callback that takes it.
      ASSERT_TRUE(wait_until(
          [&] {
            std::lock_guard lock(shared->mu);
            return !shared->conn;
          },
          scaled(5s)));
    } else {
      ASSERT_FALSE(client.migrate(other));
      (void)client.migrate(stats.paths[0].id == other ? stats.paths[1].id : stats.paths[0].id);
      client = Conn();  // the last handle: no callback may start after this returns
      shared->dropped = true;
    }
    // Let anything still queued run (or not) before checking.
    auto flushed = std::make_shared<std::promise<void>>();
    asio::post(engine.executor(), [flushed] { flushed->set_value(); });
    ASSERT_EQ(flushed->get_future().wait_for(scaled(10s)), std::future_status::ready)
        << "iteration " << i << ": the engine's threads are stuck";
    EXPECT_EQ(shared->late_calls, 0) << "iteration " << i;
    std::optional<Conn> left;  // dropped outside the lock: dropping waits for a running callback
    {
      std::lock_guard lock(shared->mu);
      left.swap(shared->conn);
    }
    EXPECT_FALSE(left) << "the callback did not drop the Conn";
    server.abort();
  }
}

}  // namespace
}  // namespace rendr::itest

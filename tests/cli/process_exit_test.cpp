// A program that returns from main while the default engine is still busy with a flow (here the
// second path's JOIN handshake, which runs in the background after dial() returns) must exit
// cleanly. OpenSSL cleans up at exit: if its cleanup ran before the default engine's destructor
// had stopped the engine's thread, that thread crashed in HMAC (seen in about one run in five of
// the package consumer). Each round is a forked child, so static destruction really happens.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>

#include <asio/read.hpp>
#include <asio/write.hpp>

#include "rendr/rendr.hpp"

namespace {

// Listener and flow on the default engine: echo one message over a two-path flow, then return.
int echo_then_exit() {
  rendr::Listener listener = rendr::listen_tcp("127.0.0.1:0");
  listener.listen_tcp("127.0.0.1:0");
  std::thread server([&] {
    std::error_code ec;
    rendr::Conn conn = listener.accept(ec);
    char data[256];
    while (!ec) {
      const std::size_t n = conn.read_some(asio::buffer(data), ec);
      if (!ec) asio::write(conn, asio::buffer(data, n), ec);
    }
    conn.close();
  });
  rendr::Dialer dialer;
  for (std::size_t i = 0; i < 2; ++i)
    dialer.paths.push_back(
        rendr::PathSpec::parse("tcp://127.0.0.1:" + std::to_string(listener.port(i))));
  std::error_code ec;
  rendr::Conn conn = dialer.dial(ec);
  std::string reply(5, '\0');
  if (!ec) asio::write(conn, asio::buffer(std::string("hello")), ec);
  if (!ec) asio::read(conn, asio::buffer(reply), ec);
  conn.close();
  server.join();
  listener.close();
  return ec || reply != "hello" ? 3 : 0;
}

TEST(ProcessExitTest, ExitWhileTheDefaultEngineWorksIsClean) {
  for (int round = 0; round < 30; ++round) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::alarm(60);                  // a hang fails the round (SIGALRM) instead of the suite
      std::exit(echo_then_exit());  // runs the static destructors, as returning from main does
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status)) << "round " << round << ": killed by signal "
                                   << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    ASSERT_EQ(WEXITSTATUS(status), 0) << "round " << round;
  }
}

}  // namespace

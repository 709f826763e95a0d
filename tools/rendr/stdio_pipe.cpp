#include "stdio_pipe.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <thread>
#include <vector>

#include <unistd.h>

#include <asio/error.hpp>
#include <asio/write.hpp>

#include "console.hpp"
#include "stdio_io.hpp"
#include "stream_ops.hpp"

namespace rendr::cli {
namespace {

constexpr std::size_t kChunk = 256 * 1024;

struct PumpResult {
  std::uint64_t bytes = 0;
  std::string error;  // empty when the pump ended cleanly
};

// stdin -> conn until stdin's EOF (then close()) or until `stop` is set.
PumpResult pump_stdin(rendr::Conn& conn, const std::atomic<bool>& stop) {
  PumpResult result;
  std::vector<char> buffer(kChunk);
  for (std::size_t n = 0;;) {
    const StdinRead read = read_stdin(buffer, stop, n, result.error);
    if (read == StdinRead::error) return result;
    if (read != StdinRead::data) break;
    std::error_code ec;
    asio::write(conn, asio::buffer(buffer.data(), n), ec);
    if (ec) return {result.bytes, "write: " + ec.message()};
    result.bytes += n;
  }
  conn.close();
  return result;
}

}  // namespace

int pipe_stdio(rendr::Conn& conn, const std::string& who, std::chrono::milliseconds flush_timeout) {
  std::atomic<bool> stop_stdin{false};
  PumpResult sent;
  std::thread stdin_thread([&] { sent = pump_stdin(conn, stop_stdin); });

  PumpResult received;
  std::vector<char> buffer(kChunk);
  for (;;) {
    std::error_code ec;
    const std::size_t n = conn.read_some(asio::buffer(buffer), ec);
    if (ec == asio::error::eof) break;
    if (ec) {
      received.error = "read: " + ec.message();
      conn.abort();  // unblocks the stdin pump's write
      break;
    }
    if (!write_all(STDOUT_FILENO, buffer.data(), n)) {
      received.error = std::string("stdout: ") + std::strerror(errno);
      conn.abort();
      break;
    }
    received.bytes += n;
  }
  if (!received.error.empty() || ::isatty(STDIN_FILENO) == 1) stop_stdin = true;
  stdin_thread.join();

  bool flushed = true;
  if (received.error.empty() && sent.error.empty()) flushed = wait_until_acked(conn, flush_timeout);
  log_line(who + ": sent " + std::to_string(sent.bytes) + " bytes, received " +
           std::to_string(received.bytes) + " bytes" + (flushed ? "" : " (send not acknowledged)"));
  for (const std::string& error : {sent.error, received.error})
    if (!error.empty()) log_line(who + ": error: " + error);
  return sent.error.empty() && received.error.empty() && flushed ? 0 : 1;
}

}  // namespace rendr::cli

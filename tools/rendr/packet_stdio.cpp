#include "packet_stdio.hpp"

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <unistd.h>

#include <asio/error.hpp>

#include "console.hpp"
#include "stdio_io.hpp"
#include "stream_ops.hpp"

namespace rendr::cli {
namespace {

constexpr std::size_t kReadChunk = 64 * 1024;

struct PumpResult {
  std::uint64_t messages = 0;
  std::string error;  // empty when the pump ended cleanly
};

bool send_line(rendr::PacketConn& conn, std::string_view line, PumpResult& result) {
  if (line.size() > rendr::kMaxMessageSize) {
    result.error = "stdin: a line of " + std::to_string(line.size()) +
                   " bytes is longer than the largest message (" +
                   std::to_string(rendr::kMaxMessageSize) + " bytes)";
    return false;
  }
  std::error_code ec;
  conn.send(asio::buffer(line.data(), line.size()), ec);
  if (ec) {
    result.error = "send: " + ec.message();
    return false;
  }
  ++result.messages;
  return true;
}

// stdin lines -> messages until stdin's EOF (then close()) or until `stop` is set.
PumpResult pump_stdin_lines(rendr::PacketConn& conn, const std::atomic<bool>& stop) {
  PumpResult result;
  std::vector<char> buffer(kReadChunk);
  std::string pending;  // the start of a line whose newline has not arrived yet
  for (std::size_t n = 0;;) {
    const StdinRead read = read_stdin(buffer, stop, n, result.error);
    if (read == StdinRead::error) return result;
    if (read == StdinRead::stopped) break;
    if (read == StdinRead::eof) {
      if (!pending.empty() && !send_line(conn, pending, result)) return result;
      break;
    }
    pending.append(buffer.data(), n);
    std::size_t start = 0;
    for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (!send_line(conn, std::string_view(pending).substr(start, nl - start), result))
        return result;
    }
    pending.erase(0, start);
    if (pending.size() > rendr::kMaxMessageSize) {
      send_line(conn, pending, result);  // sets the error: too long
      return result;
    }
  }
  conn.close();
  return result;
}

}  // namespace

int pipe_stdio_packets(rendr::PacketConn& conn, const std::string& who,
                       std::chrono::milliseconds flush_timeout) {
  std::atomic<bool> stop_stdin{false};
  PumpResult sent;
  std::thread stdin_thread([&] {
    sent = pump_stdin_lines(conn, stop_stdin);
    if (!sent.error.empty()) conn.abort();  // unblocks the receive: the flow cannot go on
  });

  PumpResult received;
  // The message and its newline; a buffer of the largest message always takes the next one.
  std::array<char, rendr::kMaxMessageSize + 1> buffer{};
  for (;;) {
    std::error_code ec;
    const std::size_t n = conn.receive(asio::buffer(buffer.data(), rendr::kMaxMessageSize), ec);
    if (ec == asio::error::eof) break;
    if (ec) {
      received.error = "receive: " + ec.message();
      conn.abort();  // unblocks the stdin pump's send
      break;
    }
    buffer[n] = '\n';
    if (!write_all(STDOUT_FILENO, buffer.data(), n + 1)) {
      received.error = std::string("stdout: ") + std::strerror(errno);
      conn.abort();
      break;
    }
    ++received.messages;
  }
  if (!received.error.empty() || ::isatty(STDIN_FILENO) == 1) stop_stdin = true;
  stdin_thread.join();

  bool flushed = true;
  if (received.error.empty() && sent.error.empty()) flushed = wait_until_acked(conn, flush_timeout);
  log_line(who + ": sent " + std::to_string(sent.messages) + " messages, received " +
           std::to_string(received.messages) + " messages" +
           (flushed ? "" : " (send not acknowledged)"));
  for (const std::string& error : {sent.error, received.error})
    if (!error.empty()) log_line(who + ": error: " + error);
  return sent.error.empty() && received.error.empty() && flushed ? 0 : 1;
}

}  // namespace rendr::cli

#include "stdio_io.hpp"

#include <cerrno>
#include <cstring>

#include <poll.h>
#include <unistd.h>

namespace rendr::cli {
namespace {

constexpr int kStopPollMs = 100;  // how quickly a reader notices it should stop

}  // namespace

StdinRead read_stdin(std::span<char> buffer, const std::atomic<bool>& stop, std::size_t& n,
                     std::string& error) {
  while (!stop) {
    pollfd readable{STDIN_FILENO, POLLIN, 0};
    const int ready = ::poll(&readable, 1, kStopPollMs);
    if (ready < 0 && errno != EINTR) {
      error = std::string("stdin: ") + std::strerror(errno);
      return StdinRead::error;
    }
    if (ready <= 0) continue;
    const ssize_t got = ::read(STDIN_FILENO, buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      error = std::string("stdin: ") + std::strerror(errno);
      return StdinRead::error;
    }
    if (got == 0) return StdinRead::eof;
    n = std::size_t(got);
    return StdinRead::data;
  }
  return StdinRead::stopped;
}

bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= std::size_t(n);
  }
  return true;
}

}  // namespace rendr::cli

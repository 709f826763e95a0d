#include "console.hpp"

#include <cstdio>

#include <unistd.h>

namespace rendr::cli {

Console& Console::instance() {
  static Console console;
  return console;
}

Console::Console() : tty_(::isatty(STDERR_FILENO) == 1) {}

void Console::clear_status_locked() {
  if (tty_ && status_width_ > 0) std::fprintf(stderr, "\r%*s\r", int(status_width_), "");
  status_width_ = 0;
}

void Console::line(std::string_view text) {
  std::lock_guard lock(mu_);
  clear_status_locked();
  std::fprintf(stderr, "%.*s\n", int(text.size()), text.data());
  if (tty_ && !pending_status_.empty()) {
    std::fprintf(stderr, "%s", pending_status_.c_str());
    status_width_ = pending_status_.size();
  }
  std::fflush(stderr);
}

void Console::status(std::string_view text) {
  std::lock_guard lock(mu_);
  pending_status_ = text;
  if (tty_) {
    clear_status_locked();
    std::fprintf(stderr, "%s", pending_status_.c_str());
    status_width_ = pending_status_.size();
  } else if (Clock::now() - last_plain_status_ >= std::chrono::seconds(1)) {
    last_plain_status_ = Clock::now();
    std::fprintf(stderr, "%s\n", pending_status_.c_str());
  }
  std::fflush(stderr);
}

void Console::end_status() {
  std::lock_guard lock(mu_);
  if (tty_ && status_width_ > 0) std::fprintf(stderr, "\n");
  status_width_ = 0;
  pending_status_.clear();
  std::fflush(stderr);
}

std::string human_bytes(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 4) {
    bytes /= 1024;
    ++unit;
  }
  char out[32];
  std::snprintf(out, sizeof out, unit == 0 ? "%.0f %s" : "%.1f %s", bytes, kUnits[unit]);
  return out;
}

std::string short_number(double value) {
  char out[32];
  std::snprintf(out, sizeof out, "%g", value);
  return out;
}

}  // namespace rendr::cli

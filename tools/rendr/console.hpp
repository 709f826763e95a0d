#pragma once
// stderr output shared by every thread: permanent log lines plus one live status line that is
// rewritten in place on a terminal (and printed at most once a second when stderr is a file).
#include <mutex>
#include <string>
#include <string_view>

#include "stats.hpp"

namespace rendr::cli {

class Console {
 public:
  static Console& instance();

  // A permanent line; clears the live status line first.
  void line(std::string_view text);
  // Replaces the live status line.
  void status(std::string_view text);
  // Ends the live status line so later output starts on a fresh line.
  void end_status();

 private:
  Console();
  void clear_status_locked();

  std::mutex mu_;
  bool tty_;
  std::size_t status_width_ = 0;
  Clock::time_point last_plain_status_{};
  std::string pending_status_;
};

inline void log_line(std::string_view text) {
  Console::instance().line(text);
}

// "12.3 MiB", "1.02 GiB".
std::string human_bytes(double bytes);
// "10", "2.5" (at most 6 significant digits, no trailing zeros).
std::string short_number(double value);

}  // namespace rendr::cli

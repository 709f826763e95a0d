#include "mode_cycler.hpp"

#include <string>

#include "console.hpp"

namespace rendr::cli {

ModeCycler::ModeCycler(rendr::Conn& conn, std::chrono::milliseconds period)
    : conn_(conn), thread_([this, period] { run(period); }) {}

ModeCycler::~ModeCycler() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::uint64_t ModeCycler::switches() const {
  std::lock_guard lock(mu_);
  return switches_;
}

std::uint64_t ModeCycler::failures() const {
  std::lock_guard lock(mu_);
  return failures_;
}

void ModeCycler::run(std::chrono::milliseconds period) {
  std::unique_lock lock(mu_);
  rendr::Mode next_excursion = rendr::Mode::race;  // alternates with bond, prime in between
  for (auto next_switch = std::chrono::steady_clock::now() + period;; next_switch += period) {
    if (wake_.wait_until(lock, next_switch, [&] { return stopping_; })) return;
    const rendr::Mode from = conn_.mode();
    rendr::Mode to = rendr::Mode::prime;
    if (from == rendr::Mode::prime) {
      to = next_excursion;
      next_excursion = to == rendr::Mode::race ? rendr::Mode::bond : rendr::Mode::race;
    }
    if (const std::error_code ec = conn_.set_mode(to)) {
      ++failures_;
      log_line("[mode cycler] set_mode " + std::string(rendr::to_string(from)) + " -> " +
               std::string(rendr::to_string(to)) + " failed: " + ec.message());
    } else {
      ++switches_;
    }
  }
}

}  // namespace rendr::cli

#include "status_ticker.hpp"

#include "console.hpp"

namespace rendr::cli {

StatusTicker::StatusTicker(std::function<std::string()> render, std::chrono::milliseconds period)
    : render_(std::move(render)), thread_([this, period] {
        std::unique_lock lock(mu_);
        while (!wake_.wait_for(lock, period, [&] { return stopping_; }))
          Console::instance().status(render_());
      }) {}

StatusTicker::~StatusTicker() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  Console::instance().status(render_());
  Console::instance().end_status();
}

}  // namespace rendr::cli

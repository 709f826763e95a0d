#pragma once
// Refreshes the console's live status line from a render function on its own thread.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace rendr::cli {

class StatusTicker {
 public:
  StatusTicker(std::function<std::string()> render, std::chrono::milliseconds period);
  // Draws the line one last time and ends it.
  ~StatusTicker();
  StatusTicker(const StatusTicker&) = delete;
  StatusTicker& operator=(const StatusTicker&) = delete;

 private:
  std::function<std::string()> render_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace rendr::cli

#pragma once
// rendr::Engine — the Asio io_context and thread(s) that run rendr's carriers and timers.
#include <memory>

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>

namespace rendr {

class Engine {
 public:
  // Starts `threads` I/O threads at once.
  explicit Engine(unsigned threads = 1);
  // Stops the threads and joins them.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  asio::io_context& context();
  asio::any_io_executor executor();

  // The process-wide engine, started on first use with one I/O thread.
  static Engine& default_engine();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rendr

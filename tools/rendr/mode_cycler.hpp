#pragma once
// Switches a connection's mode on a fixed period while traffic flows, through every legal
// transition: prime -> race -> prime -> bond -> prime -> ... (race <-> bond is illegal, so prime
// sits between them). Used by `rendr bench stream --switch-modes-every-ms`.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "rendr/conn.hpp"

namespace rendr::cli {

class ModeCycler {
 public:
  // Starts switching `conn` every `period` on its own thread.
  ModeCycler(rendr::Conn& conn, std::chrono::milliseconds period);
  // Stops switching (the connection keeps the mode it has).
  ~ModeCycler();
  ModeCycler(const ModeCycler&) = delete;
  ModeCycler& operator=(const ModeCycler&) = delete;

  std::uint64_t switches() const;  // set_mode calls that succeeded
  std::uint64_t failures() const;  // set_mode calls that returned an error (logged)

 private:
  void run(std::chrono::milliseconds period);

  rendr::Conn& conn_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::uint64_t switches_ = 0;
  std::uint64_t failures_ = 0;
  std::thread thread_;
};

}  // namespace rendr::cli

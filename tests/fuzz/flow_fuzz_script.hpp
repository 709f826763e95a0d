#pragma once
// The input format of flow_fuzz: a small structured script, so that most inputs do something.
//
//   header (4 bytes): mode (1 + b % 3), send buffer (1 + b % 64 KiB), receive window
//                     (1 + b % 64 KiB), max DATA payload (64 + b * 8 % 16 KiB)
//   then ops of 4 bytes each: kind (b % kinds), target (bit 7: server side, else client;
//                     low 3 bits + 1: path id 1..8), arg (u16 little-endian);
//   `inject` is followed by `arg % 1024` raw bytes: a frame (or garbage) to deliver; none
//                     towards the server: a stranger's connection that stays silent.
// A short input ends the script; at most kMaxSteps ops run. ScriptWriter writes the format
// (gen_flow_corpus.cpp).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/config.hpp"

namespace rendr::fuzz {

inline constexpr int kMaxSteps = 4000;

struct Op {
  enum class Kind : std::uint8_t {
    pump,         // every flow polls what it wants to send into the pipes
    deliver,      // the next frame towards `side` on `path` arrives
    drop,         // ... is lost
    duplicate,    // ... is queued again at the end
    reorder,      // ... swaps with the one behind it
    inject,       // hostile bytes arrive at `side` on `path` (none: a silent connection)
    path_down,    // `side` learns its carrier of `path` went down (cause: arg)
    advance,      // time advances by arg * 100 us; due timers fire
    write,        // the application of `side` writes
    read,         // ... reads
    close,        // ... half-closes
    abort,        // ... aborts
    migrate,      // ... migrates to `path`
    add_path,     // the client adds a path (weight arg % 4)
    remove_path,  // the client removes `path`
    set_mode,     // `side` switches to mode arg % 3 + 1
    dial_fails,   // the client's next dial fails
    count
  };
  Kind kind = Kind::pump;
  int side = 0;
  core::PathId path = 1;
  std::uint16_t arg = 0;
};

class Script {
 public:
  Script(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {
    const auto b = [&](std::size_t i) { return i < size ? data[i] : std::uint8_t{0}; };
    config_.mode = static_cast<core::Mode>(1 + b(0) % 3);
    config_.send_buffer = (1 + b(1) % 64) * 1024;
    config_.recv_window = (1 + b(2) % 64) * 1024;
    config_.max_data_payload = 64 + b(3) * 8 % (16 * 1024);
    config_.dead_cap = std::chrono::seconds(1);
    config_.migration_budget = std::chrono::seconds(5);
    config_.close_linger = std::chrono::seconds(1);
    pos_ = std::min<std::size_t>(4, size);
  }

  const core::FlowConfig& config() const { return config_; }
  bool done() const { return pos_ + 4 > size_; }

  Op next() {
    Op op;
    op.kind = static_cast<Op::Kind>(data_[pos_] % static_cast<std::uint8_t>(Op::Kind::count));
    op.side = data_[pos_ + 1] >> 7;
    op.path = static_cast<core::PathId>((data_[pos_ + 1] & 7) + 1);
    op.arg = static_cast<std::uint16_t>(data_[pos_ + 2] | data_[pos_ + 3] << 8);
    pos_ += 4;
    return op;
  }

  // The raw bytes following an inject op.
  std::vector<std::uint8_t> bytes(std::uint16_t arg) {
    const std::size_t n = std::min<std::size_t>(arg % 1024, size_ - pos_);
    std::vector<std::uint8_t> out(data_ + pos_, data_ + pos_ + n);
    pos_ += n;
    return out;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
  core::FlowConfig config_;
};

class ScriptWriter {
 public:
  ScriptWriter(std::uint8_t mode, std::uint8_t send_kib, std::uint8_t window_kib,
               std::uint8_t payload) {
    out_ = {mode, send_kib, window_kib, payload};
  }
  ScriptWriter& op(Op::Kind kind, int side = 0, core::PathId path = 1, std::uint16_t arg = 0) {
    out_.push_back(static_cast<std::uint8_t>(kind));
    out_.push_back(static_cast<std::uint8_t>((side ? 0x80 : 0) | ((path - 1) & 7)));
    out_.push_back(static_cast<std::uint8_t>(arg & 0xff));
    out_.push_back(static_cast<std::uint8_t>(arg >> 8));
    return *this;
  }
  ScriptWriter& inject(int side, core::PathId path, const std::vector<std::uint8_t>& bytes) {
    op(Op::Kind::inject, side, path, static_cast<std::uint16_t>(bytes.size()));
    out_.insert(out_.end(), bytes.begin(), bytes.end());
    return *this;
  }
  // Lets the network carry everything both ways for a while: pump, deliver, advance.
  ScriptWriter& flow_freely(int rounds, core::PathId paths = 2) {
    for (int r = 0; r < rounds; ++r) {
      op(Op::Kind::pump);
      for (core::PathId p = 1; p <= paths; ++p) {
        for (int s = 0; s < 2; ++s) {
          for (int i = 0; i < 4; ++i)
            op(Op::Kind::deliver, s, p);
        }
      }
      op(Op::Kind::advance, 0, 1, 10);
    }
    return *this;
  }
  const std::vector<std::uint8_t>& bytes() const { return out_; }

 private:
  std::vector<std::uint8_t> out_;
};

}  // namespace rendr::fuzz

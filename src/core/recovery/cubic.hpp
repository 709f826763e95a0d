#pragma once
// CUBIC (RFC 9438): after a congestion event the window follows
//     W_cubic(t) = C * (t - K)^3 + W_max,    K = cbrt(W_max * (1 - beta) / C)
// (t since the event, windows in datagrams), so it regains the previous maximum quickly,
// lingers near it, then probes above; never slower than a Reno flow of the same loss rate
// (the "Reno-friendly" estimate W_est, §4.3). beta = 0.7, C = 0.4, fast convergence (§4.7).
#include "core/recovery/loss_based_controller.hpp"

namespace rendr::core::recovery {

class Cubic final : public LossBasedController {
 public:
  static constexpr double kBeta = 0.7;
  static constexpr double kC = 0.4;

  explicit Cubic(const RecoveryConfig& config) : LossBasedController(config) {}
  std::string_view name() const override { return "cubic"; }

  // The window before the last reduction, in bytes (0: no congestion event yet).
  double w_max() const { return state_.w_max; }

 protected:
  void grow_in_avoidance(std::size_t bytes, const RttStats& rtt, Time now) override;
  void reduce(Time now) override;
  void save_undo_state() override { undo_ = state_; }
  void restore_undo_state() override { state_ = undo_; }
  void on_collapse() override { state_ = State{}; }
  // RFC 9438 §5.8: time the application left the window unused does not advance the curve.
  void on_window_unused(Time now) override {
    if (!unused_since_) unused_since_ = now;
  }

 private:
  struct State {
    double w_max = 0;                 // bytes
    double k_seconds = 0;             // K
    std::optional<Time> epoch_start;  // start of the current avoidance epoch
    double w_est = 0;                 // Reno-friendly estimate, bytes
    double cwnd_at_epoch_start = 0;   // bytes
  };
  State state_;
  State undo_;
  std::optional<Time> unused_since_;
};

}  // namespace rendr::core::recovery

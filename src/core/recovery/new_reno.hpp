#pragma once
// NewReno as RFC 9002 §7 and its Appendix B describe it: in congestion avoidance the window
// grows by one datagram per window acknowledged; a congestion event halves it.
#include "core/recovery/loss_based_controller.hpp"

namespace rendr::core::recovery {

class NewReno final : public LossBasedController {
 public:
  explicit NewReno(const RecoveryConfig& config) : LossBasedController(config) {}
  std::string_view name() const override { return "newreno"; }

 protected:
  void grow_in_avoidance(std::size_t bytes, const RttStats& rtt, Time now) override;
  void reduce(Time now) override;
  void save_undo_state() override { undo_acked_ = acked_in_window_; }
  void restore_undo_state() override { acked_in_window_ = undo_acked_; }

 private:
  std::uint64_t acked_in_window_ = 0;  // bytes acknowledged toward the next +1 datagram
  std::uint64_t undo_acked_ = 0;
};

}  // namespace rendr::core::recovery

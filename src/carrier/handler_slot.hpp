#pragma once
// The handler a carrier reports to: set from any thread (start, a flow taking the path over),
// locked for each report, and taken for the last one (on_down), after which nothing reaches it.
#include <memory>
#include <mutex>
#include <utility>

#include "carrier/carrier.hpp"

namespace rendr::carrier {

class HandlerSlot {
 public:
  void set(std::weak_ptr<CarrierHandler> handler) {
    std::lock_guard lock(mutex_);
    handler_ = std::move(handler);
  }
  std::shared_ptr<CarrierHandler> lock() const {
    std::lock_guard lock(mutex_);
    return handler_.lock();
  }
  // The handler, if it is still alive; no later lock() returns it.
  std::shared_ptr<CarrierHandler> take() {
    std::lock_guard lock(mutex_);
    return std::exchange(handler_, {}).lock();
  }

 private:
  mutable std::mutex mutex_;
  std::weak_ptr<CarrierHandler> handler_;
};

}  // namespace rendr::carrier

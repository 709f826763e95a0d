#pragma once
// `rendr listen --metrics`: the Prometheus exposition of the engine's flows (Engine::stats(),
// read at scrape time: its totals only grow) and the listener's counters.
#include <mutex>
#include <string>

#include "prometheus.hpp"
#include "rendr/rendr.hpp"

namespace rendr::cli {

class FlowMetrics {
 public:
  explicit FlowMetrics(rendr::Engine& engine);

  // Observes the smoothed RTT of every path that is up (called once a second).
  void sample_rtts();
  // The whole exposition: the engine's flows (Engine::stats) and `listener`'s counters.
  std::string render(const rendr::ListenerStats& listener);

 private:
  rendr::Engine& engine_;
  std::mutex mu_;  // guards rtt_ (sampled and rendered on different threads)
  Histogram rtt_;
};

}  // namespace rendr::cli

#pragma once
// `rendr listen --metrics`: the numbers behind the Prometheus endpoint. Holds a handle of every
// flow being served (their live state is read at scrape time) and the final counters of the
// flows that ended, so that every counter only grows.
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "prometheus.hpp"
#include "rendr/rendr.hpp"

namespace rendr::cli {

class FlowMetrics {
 public:
  FlowMetrics();

  void flow_started(const rendr::Conn& conn);
  // `failed`: the flow ended with an error rather than a clean close.
  void flow_ended(const rendr::Conn& conn, bool failed);
  // Observes the smoothed RTT of every path that is up (called once a second).
  void sample_rtts();
  // The whole exposition: these flows and `listener`'s counters.
  std::string render(const rendr::ListenerStats& listener);

 private:
  // Counters of flows that ended, so totals never go down when a flow goes.
  struct Ended {
    std::uint64_t closed = 0;
    std::uint64_t failed = 0;
    std::uint64_t migrations[4] = {};  // by rendr::MigrateCause
    std::uint64_t bytes_sent = 0;
    std::uint64_t bytes_received = 0;
    std::uint64_t retransmitted = 0;
  };

  std::mutex mu_;
  std::map<rendr::FlowId, rendr::Conn> live_;
  std::uint64_t started_ = 0;
  Ended ended_;
  Histogram rtt_;
};

}  // namespace rendr::cli

#pragma once
// Conversions between the public vocabulary (rendr::) and the core's (rendr::core::).
#include <functional>
#include <string>
#include <system_error>

#include "carrier/transport_congestion.hpp"
#include "core/config.hpp"
#include "core/stats.hpp"
#include "core/types.hpp"
#include "rendr/dialer.hpp"
#include "rendr/stats.hpp"
#include "rendr/types.hpp"

namespace rendr::runtime {

core::Mode to_core(Mode m);
Mode from_core(core::Mode m);
MigrateCause from_core(core::MigrateCause c);
core::MigrateCause to_core(MigrateCause c);
core::DownCause down_cause(int carrier_down_reason);
// A packet flow's options (the message limit is the core's default: kMaxMessageSize).
core::PacketOptions to_core(const PacketOptions& p);
core::recovery::CongestionAlgorithm to_core(Congestion c);

// errc for a failed flow; empty for FlowError::none.
std::error_code to_error_code(core::FlowError e);

// A public stats snapshot from the core's; `path_spec(id)` names each path.
ConnStats to_conn_stats(const core::FlowStats& s,
                        const std::function<std::string(core::PathId)>& path_spec);

// A stream path's (TCP, QUIC) congestion state, as its transport reports it, into the fields a
// datagram path fills from the core's own recovery.
void add_transport_congestion(PathInfo& info, const carrier::TransportCongestion& c);

// A public duration as the core's, clamped to [0, kLongestDuration]: milliseconds::max() is a
// natural way to say "forever", and would overflow the core's nanoseconds (and any deadline).
inline constexpr std::chrono::hours kLongestDuration{24 * 365 * 10};
core::Duration to_duration(std::chrono::milliseconds d);

// Flow configuration shared by both ends; every duration goes through to_duration.
core::FlowConfig make_config(Mode mode, std::chrono::milliseconds migration_budget,
                             const FlowOptions& options);

}  // namespace rendr::runtime

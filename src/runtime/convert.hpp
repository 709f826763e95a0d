#pragma once
// Conversions between the public vocabulary (rendr::) and the core's (rendr::core::).
#include <functional>
#include <string>
#include <system_error>

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

// errc for a failed flow; empty for FlowError::none.
std::error_code to_error_code(core::FlowError e);

// A public stats snapshot from the core's; `path_spec(id)` names each path.
ConnStats to_conn_stats(const core::FlowStats& s,
                        const std::function<std::string(core::PathId)>& path_spec);

// Flow configuration shared by both ends.
core::FlowConfig make_config(Mode mode, std::chrono::milliseconds migration_budget,
                             const FlowOptions& options);

}  // namespace rendr::runtime

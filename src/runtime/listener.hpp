#pragma once
// runtime::Listener — accepts transport connections on one or more addresses, reads the first
// frame of each (OPEN or JOIN) and routes it: OPEN creates a flow (a server Session queued for
// accept), JOIN attaches the connection to the flow it names, anything else is refused and
// counted. See docs/design.md ("Listener").
#include <memory>

#include "rendr/listener.hpp"

namespace rendr::runtime {

std::shared_ptr<detail::ListenerCore> make_listener(const ListenOptions& options);

}  // namespace rendr::runtime

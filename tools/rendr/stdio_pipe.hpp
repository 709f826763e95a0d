#pragma once
// Carries stdin and stdout over a Conn, like nc: stdin is written to the connection and the
// connection is copied to stdout. On stdin EOF the sending direction is closed (the peer reads
// EOF). When the peer's EOF arrives, stdin is still sent to its end if it is a file or a pipe,
// but abandoned if it is a terminal, so an interactive session ends when the peer is done.
#include <chrono>
#include <string>

#include "rendr/conn.hpp"

namespace rendr::cli {

// Returns the exit status: 0 when both directions finished cleanly, 1 on any error.
int pipe_stdio(rendr::Conn& conn, const std::string& who, std::chrono::milliseconds flush_timeout);

}  // namespace rendr::cli

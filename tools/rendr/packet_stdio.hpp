#pragma once
// `rendr dial --packet` and `rendr listen --packet --stdio`: one line of stdin is one message
// (without its newline), each message received is written as one line to stdout.
#include <chrono>
#include <string>

#include "rendr/rendr.hpp"

namespace rendr::cli {

// Pipes stdin lines to `conn` and its messages to stdout until the peer closes (stdin's EOF
// closes our sending direction; a last line without a newline is still a message). A line
// longer than rendr::kMaxMessageSize is an error (never split). After a clean end, waits up to
// `flush_timeout` for the peer to acknowledge what was sent. Returns the exit status: 0 on a clean
// end, else 1 (errors are logged under `who`).
int pipe_stdio_packets(rendr::PacketConn& conn, const std::string& who,
                       std::chrono::milliseconds flush_timeout);

}  // namespace rendr::cli

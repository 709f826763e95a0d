#pragma once
// Blocking stdin/stdout helpers shared by the CLI's stream and packet pipes.
#include <atomic>
#include <cstddef>
#include <span>
#include <string>

namespace rendr::cli {

enum class StdinRead { data, eof, stopped, error };

// Waits for stdin and reads up to `buffer.size()` bytes into it (`n` of them on `data`). Polls,
// so a set `stop` is noticed within a tenth of a second even while stdin stays silent.
StdinRead read_stdin(std::span<char> buffer, const std::atomic<bool>& stop, std::size_t& n,
                     std::string& error);

// Writes all of `data` to `fd` (retrying short writes and EINTR); false on an error (errno set).
bool write_all(int fd, const char* data, std::size_t size);

}  // namespace rendr::cli

#pragma once
// `--psk-file FILE`: the raw bytes of a file are the pre-shared key of `rendr listen` and
// `rendr dial` (docs/protocol.md §8: with a PSK both ends prove they hold it).
#include <cstdint>
#include <string>
#include <vector>

namespace rendr::cli {

// The key in `path`; a UsageError naming the file if it cannot be read or is empty.
std::vector<std::uint8_t> read_psk_file(const std::string& path);

}  // namespace rendr::cli

#include "psk_file.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "args.hpp"

namespace rendr::cli {

std::vector<std::uint8_t> read_psk_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("cannot read --psk-file '" + path + "': " + std::strerror(errno));
  std::vector<std::uint8_t> key((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  if (in.bad()) throw UsageError("cannot read --psk-file '" + path + "'");
  if (key.empty()) throw UsageError("--psk-file '" + path + "' is empty: a key needs bytes");
  return key;
}

}  // namespace rendr::cli

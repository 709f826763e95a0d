#pragma once
// The packet keys datagram_fuzz opens protected packets with; gen_datagram_corpus seals the
// seed corpus under them, so seeds open and their mutations reach every check.
#include "wire/datagram.hpp"

namespace rendr::fuzz {

inline wire::datagram::PacketKeys datagram_fuzz_keys() {
  wire::datagram::PacketKeys keys;
  for (std::size_t i = 0; i < keys.key.size(); ++i)
    keys.key[i] = static_cast<wire::Byte>(0xa0 + i);
  for (std::size_t i = 0; i < keys.iv.size(); ++i)
    keys.iv[i] = static_cast<wire::Byte>(0x30 + i);
  return keys;
}

}  // namespace rendr::fuzz

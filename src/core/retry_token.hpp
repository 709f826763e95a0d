#pragma once
// Stateless address-validation tokens for udpflow OPENs (RFC 9000 §8.1.2 in spirit;
// docs/design.md, "Address validation"). A listener under load answers an OPEN from an address
// it has not validated with a RETRY carrying a token instead of creating a flow; the client
// repeats its OPEN with the token, which proves it receives datagrams at that address. The
// listener keeps nothing per token: it is
//
//   issued_ms (u64 big-endian, the listener's clock) | HMAC-SHA256(secret,
//       "rendr retry v1" || address (18 bytes) || issued_ms)[0..16)
//
// under a random secret of the listener (so tokens die with it). 128 bits of MAC make a forgery
// a 2^-128 guess; the time bounds a token's reuse to its lifetime.
#include <array>
#include <cstdint>

#include "core/peer_address.hpp"
#include "core/types.hpp"
#include "wire/frame.hpp"

namespace rendr::core {

class RetryTokens {
 public:
  static constexpr std::size_t kSecretSize = 32;
  using Secret = std::array<wire::Byte, kSecretSize>;

  // A fresh random secret.
  RetryTokens();
  explicit RetryTokens(const Secret& secret) : secret_(secret) {}

  wire::RetryToken mint(const PeerAddress& to, Time now) const;

  enum class Check {
    valid,    // minted here for this address, within `lifetime`
    expired,  // minted here for this address, but older than `lifetime`
    forged,   // not minted here for this address (or from the future)
  };
  Check check(const wire::RetryToken& token, const PeerAddress& from, Time now,
              Duration lifetime) const;

 private:
  std::array<wire::Byte, 16> mac(const PeerAddress& address, std::uint64_t issued_ms) const;

  Secret secret_{};
};

}  // namespace rendr::core

#include "core/retry_token.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <string_view>
#include <vector>

#include "core/crypto.hpp"

namespace rendr::core {

namespace {

constexpr std::string_view kLabel = "rendr retry v1";

std::uint64_t to_ms(Time t) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

}  // namespace

RetryTokens::RetryTokens() {
  crypto::random_bytes(secret_);
}

std::array<wire::Byte, 16> RetryTokens::mac(const PeerAddress& address,
                                            std::uint64_t issued_ms) const {
  std::vector<wire::Byte> msg(kLabel.begin(), kLabel.end());
  msg.insert(msg.end(), address.bytes.begin(), address.bytes.end());
  for (int i = 7; i >= 0; --i)
    msg.push_back(static_cast<wire::Byte>(issued_ms >> (8 * i)));
  const wire::Mac full = crypto::hmac_sha256(secret_, msg);
  std::array<wire::Byte, 16> out{};
  std::copy_n(full.begin(), out.size(), out.begin());
  return out;
}

wire::RetryToken RetryTokens::mint(const PeerAddress& to, Time now) const {
  const std::uint64_t issued = to_ms(now);
  wire::RetryToken token{};
  for (int i = 0; i < 8; ++i)
    token[static_cast<std::size_t>(i)] = static_cast<wire::Byte>(issued >> (56 - 8 * i));
  const auto m = mac(to, issued);
  std::copy(m.begin(), m.end(), token.begin() + 8);
  return token;
}

RetryTokens::Check RetryTokens::check(const wire::RetryToken& token, const PeerAddress& from,
                                      Time now, Duration lifetime) const {
  std::uint64_t issued = 0;
  for (int i = 0; i < 8; ++i)
    issued = (issued << 8) | token[static_cast<std::size_t>(i)];
  const auto expected = mac(from, issued);
  if (CRYPTO_memcmp(expected.data(), token.data() + 8, expected.size()) != 0) return Check::forged;
  const std::uint64_t at = to_ms(now);
  // A token from the future was not minted by this clock.
  if (issued > at) return Check::forged;
  const auto age = std::chrono::milliseconds(at - issued);
  return age > lifetime ? Check::expired : Check::valid;
}

}  // namespace rendr::core

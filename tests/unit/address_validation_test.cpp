// core::AddressValidator (one datagram path's peer addresses) and core::RetryTokens.
#include "core/address_validation.hpp"

#include <gtest/gtest.h>

#include "core/retry_token.hpp"

namespace rendr::core {
namespace {

using namespace std::chrono_literals;

const PeerAddress kA = peer_address_v4(0x0a000001, 4000);
const PeerAddress kB = peer_address_v4(0x0a000001, 4001);  // A's NAT, rebound to a new port
const PeerAddress kC = peer_address_v4(0xc0a80001, 9999);
const Time kT0{std::chrono::seconds(100)};

// Sends every probe that is owed now; returns them.
std::vector<AddressProbe> drain(AddressValidator& v, Time now) {
  std::vector<AddressProbe> out;
  for (int guard = 0; guard < 100 && v.wants_probe(); ++guard) {
    auto p = v.next_probe(now);
    if (!p) break;
    out.push_back(*p);
  }
  return out;
}

TEST(AddressValidation, AServerPathsFirstAddressHasThreeTimesItsDatagramUntilTheProof) {
  AddressValidator v;
  v.start(kA, 100, /*validated=*/false);
  EXPECT_EQ(v.current(), kA);
  EXPECT_FALSE(v.current_validated());
  EXPECT_EQ(v.current_allowance(), 300u);
  v.on_sent_to_current(250);
  EXPECT_EQ(v.current_allowance(), 50u);
  v.on_datagram(kA, 20, true, kT0);  // more from it: more allowance
  EXPECT_EQ(v.current_allowance(), 110u);
  v.on_handshake_proven();
  EXPECT_TRUE(v.current_validated());
  EXPECT_EQ(v.current_allowance(), std::numeric_limits<std::uint64_t>::max());
}

TEST(AddressValidation, ANewAddressIsChallengedButDoesNotMoveThePath) {
  AddressValidator v;
  v.start(kA, 100, true);
  v.on_datagram(kB, 100, /*newest=*/true, kT0);
  EXPECT_EQ(v.current(), kA);
  const auto probes = drain(v, kT0);
  ASSERT_EQ(probes.size(), 1u);
  EXPECT_EQ(probes[0].to, kB);
  ASSERT_TRUE(probes[0].challenge.has_value());
  EXPECT_FALSE(probes[0].response.has_value());
  EXPECT_EQ(v.current(), kA);
  EXPECT_EQ(v.stats().challenges_sent, 1u);
}

TEST(AddressValidation, OnlyTheChallengeEchoedFromThatAddressMovesThePath) {
  AddressValidator v;
  v.start(kA, 100, true);
  v.on_datagram(kB, 100, true, kT0);
  const auto probes = drain(v, kT0);
  ASSERT_EQ(probes.size(), 1u);
  const wire::PathChallengeData data = *probes[0].challenge;
  wire::PathChallengeData wrong = data;
  wrong[0] ^= 1;
  EXPECT_FALSE(v.on_response(kB, wrong));  // not what was sent
  EXPECT_FALSE(v.on_response(kC, data));   // the right bytes from another address
  EXPECT_FALSE(v.on_response(kA, data));
  EXPECT_EQ(v.current(), kA);
  EXPECT_EQ(v.stats().responses_unmatched, 3u);
  EXPECT_TRUE(v.on_response(kB, data));
  EXPECT_EQ(v.current(), kB);
  EXPECT_TRUE(v.current_validated());
  EXPECT_EQ(v.stats().validations, 1u);
}

TEST(AddressValidation, AnOlderPacketFromANewAddressStartsNothing) {
  AddressValidator v;
  v.start(kA, 100, true);
  v.on_datagram(kC, 1000, /*newest=*/false, kT0);  // a replay of a packet received before
  EXPECT_FALSE(v.wants_probe());
  EXPECT_EQ(v.stats().stale_ignored, 1u);
  EXPECT_EQ(v.current(), kA);
}

TEST(AddressValidation, ChallengesAreRetriedWithFreshDataThenGivenUp) {
  AddressValidationConfig config;
  config.max_challenges = 3;
  AddressValidator v(config);
  v.start(kA, 100, true);
  v.set_probe_timeout(100ms);
  v.on_datagram(kC, 1000, true, kT0);
  Time now = kT0;
  std::vector<wire::PathChallengeData> sent;
  for (int round = 0; round < 10 && v.next_timer(); ++round) {
    for (const auto& p : drain(v, now))
      sent.push_back(*p.challenge);
    now = *v.next_timer();
    v.on_timer(now);
  }
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_NE(sent[0], sent[1]);
  EXPECT_NE(sent[1], sent[2]);
  EXPECT_FALSE(v.next_timer().has_value());
  EXPECT_FALSE(v.wants_probe());
  EXPECT_EQ(v.stats().validations_failed, 1u);
  // The waits doubled: 100 + 200 + 400 ms.
  EXPECT_EQ(now - kT0, 700ms);
  // A late answer to a given-up challenge validates nothing.
  EXPECT_FALSE(v.on_response(kC, sent[0]));
  EXPECT_EQ(v.current(), kA);
}

TEST(AddressValidation, AnUnvalidatedAddressGetsAtMostThreeTimesWhatItSent) {
  AddressValidationConfig config;
  config.max_challenges = 10;
  AddressValidator v(config);
  v.start(kA, 100, true);
  v.set_probe_timeout(10ms);
  // 30 bytes from C: 90 bytes of allowance, two 40-byte challenges.
  v.on_datagram(kC, 30, true, kT0);
  Time now = kT0;
  std::uint64_t to_c = 0;
  for (int round = 0; round < 20; ++round) {
    for (const auto& p : drain(v, now))
      to_c += AddressValidator::probe_bytes(p);
    now += 1s;
    v.on_timer(now);
  }
  EXPECT_EQ(AddressValidator::probe_bytes(AddressProbe{kC, wire::PathChallengeData{}, {}}), 40u);
  EXPECT_EQ(to_c, 80u);
  EXPECT_LE(v.stats().bytes_to_unvalidated, 90u);
  EXPECT_GE(v.stats().amplification_blocked, 1u);
}

TEST(AddressValidation, MoreBytesFromTheAddressLetTheWithheldChallengeGo) {
  AddressValidator v;
  v.start(kA, 100, true);
  v.on_datagram(kC, 10, true, kT0);  // 30 bytes of allowance: not even one challenge
  EXPECT_FALSE(v.wants_probe());
  EXPECT_FALSE(v.next_probe(kT0).has_value());
  EXPECT_EQ(v.stats().amplification_blocked, 1u);
  v.on_datagram(kC, 10, false, kT0);  // 60 now
  const auto probes = drain(v, kT0);
  ASSERT_EQ(probes.size(), 1u);
  EXPECT_EQ(probes[0].to, kC);
}

TEST(AddressValidation, ChallengesAreAnsweredToTheAddressTheyCameFrom) {
  AddressValidator v;
  v.start(kA, 100, true);
  const wire::PathChallengeData d1{1, 2, 3, 4, 5, 6, 7, 8}, d2{8, 7, 6, 5, 4, 3, 2, 1};
  v.on_challenge(std::nullopt, d1);  // the current address (or the carrier's only peer)
  v.on_datagram(kB, 200, true, kT0);
  v.on_challenge(kB, d2);
  v.on_challenge(kC, d2);  // neither current nor a candidate: no allowance, dropped
  const auto probes = drain(v, kT0);
  ASSERT_EQ(probes.size(), 2u);
  EXPECT_FALSE(probes[0].to.has_value());
  EXPECT_EQ(probes[0].response, d1);
  EXPECT_EQ(probes[1].to, kB);
  EXPECT_EQ(probes[1].response, d2);
  EXPECT_TRUE(probes[1].challenge.has_value());  // B is validated in the same datagram
  EXPECT_EQ(v.stats().responses_sent, 2u);
  EXPECT_EQ(v.stats().responses_dropped, 1u);
}

TEST(AddressValidation, StateStaysBoundedWhateverThePeerSends) {
  AddressValidator v;
  v.start(kA, 100, true);
  for (std::uint16_t port = 1; port < 1000; ++port) {
    v.on_datagram(peer_address_v4(0x01020304, port), 100, true, kT0);
    v.on_challenge(std::nullopt, wire::PathChallengeData{});
  }
  EXPECT_LE(drain(v, kT0).size(), 4u + 4u);
  EXPECT_EQ(v.current(), kA);
}

// ---- retry tokens ----------------------------------------------------------------------------

TEST(RetryTokens, ATokenIsValidForItsAddressWithinItsLifetime) {
  RetryTokens tokens;
  const wire::RetryToken t = tokens.mint(kA, kT0);
  EXPECT_EQ(tokens.check(t, kA, kT0, 10s), RetryTokens::Check::valid);
  EXPECT_EQ(tokens.check(t, kA, kT0 + 10s, 10s), RetryTokens::Check::valid);
  EXPECT_EQ(tokens.check(t, kA, kT0 + 10s + 1ms, 10s), RetryTokens::Check::expired);
}

TEST(RetryTokens, AnotherAddressAnotherSecretATamperedByteOrTheFutureAreForged) {
  RetryTokens tokens, other;
  const wire::RetryToken t = tokens.mint(kA, kT0);
  EXPECT_EQ(tokens.check(t, kB, kT0, 10s), RetryTokens::Check::forged);
  EXPECT_EQ(other.check(t, kA, kT0, 10s), RetryTokens::Check::forged);
  for (std::size_t i = 0; i < t.size(); ++i) {
    wire::RetryToken bad = t;
    bad[i] ^= 0x40;
    EXPECT_EQ(tokens.check(bad, kA, kT0 + 1s, 10s), RetryTokens::Check::forged) << i;
  }
  // Minted "later" than now: not by this clock.
  EXPECT_EQ(tokens.check(tokens.mint(kA, kT0 + 5s), kA, kT0, 10s), RetryTokens::Check::forged);
}

TEST(RetryTokens, TheSameSecretMintsTheSameToken) {
  RetryTokens::Secret s{};
  s[0] = 7;
  EXPECT_EQ(RetryTokens(s).mint(kA, kT0), RetryTokens(s).mint(kA, kT0));
  EXPECT_NE(RetryTokens(s).mint(kA, kT0), RetryTokens(s).mint(kB, kT0));
}

}  // namespace
}  // namespace rendr::core

// ReplayWindow: each JOIN counter is accepted once, within a 64-counter window.
#include <gtest/gtest.h>

#include "core/crypto.hpp"

namespace rendr::core::crypto {
namespace {

TEST(ReplayWindow, EachCounterIsAcceptedOnce) {
  ReplayWindow w;
  EXPECT_TRUE(w.accept(5));
  EXPECT_FALSE(w.accept(5));
  EXPECT_TRUE(w.accept(7));
  EXPECT_TRUE(w.accept(6));  // late but within the window
  EXPECT_FALSE(w.accept(6));
}

TEST(ReplayWindow, CountersOlderThanTheWindowAreRefused) {
  ReplayWindow w;
  EXPECT_TRUE(w.accept(100));
  EXPECT_TRUE(w.accept(37));   // 63 behind: still inside
  EXPECT_FALSE(w.accept(36));  // 64 behind: outside
  EXPECT_TRUE(w.accept(300));  // a jump forgets everything older
  EXPECT_FALSE(w.accept(100));
}

}  // namespace
}  // namespace rendr::core::crypto

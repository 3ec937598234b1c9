// SipHash-2-4 against the paper's reference vector, and the key matters.
#include "keel/siphash.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace keel {
namespace {

TEST(SipHash, ReferenceVector) {
    // SipHash-2-4 paper, appendix A: key 00..0f, message 00..0e.
    unsigned char msg[15];
    for (int i = 0; i < 15; ++i) msg[i] = static_cast<unsigned char>(i);
    EXPECT_EQ(siphash24(SipKey{0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull}, msg, 15), 0xa129ca6149be45e5ull);
    EXPECT_EQ(siphash24(SipKey{0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull}, msg, 0), 0x726fdb47dd0e0e31ull);
}

TEST(SipHash, TheKeyChangesTheHash) {
    EXPECT_NE(siphash24(SipKey{1, 2}, "key", 3), siphash24(SipKey{1, 3}, "key", 3));
    EXPECT_NE(siphash24(SipKey{1, 2}, "key", 3), siphash24(SipKey{2, 2}, "key", 3));
}

}  // namespace
}  // namespace keel

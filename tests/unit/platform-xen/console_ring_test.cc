// console_ring_put: the producer side of io/console.h's out ring, the test playing xenconsoled.
#include "keel/xen/console_ring.h"

#include <gtest/gtest.h>

#include <string>

namespace keel::xen {
namespace {

std::string consume(xencons_interface& r) {  // what xenconsoled reads, in order
    std::string out;
    while (r.out_cons != r.out_prod) out += r.out[MASK_XENCONS_IDX(r.out_cons++, r.out)];
    return out;
}

TEST(ConsoleRing, BytesArePublishedByOutProd) {
    xencons_interface r{};
    auto n = console_ring_put(r, "keel: booting (PV)\n");
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(n.value(), 19u);
    EXPECT_EQ(r.out_prod, 19u);
    EXPECT_EQ(r.out_cons, 0u);
    EXPECT_FALSE(console_ring_drained(r));
    EXPECT_EQ(consume(r), "keel: booting (PV)\n");
    EXPECT_TRUE(console_ring_drained(r));
}

TEST(ConsoleRing, WritesWrapAroundTheEndOfTheRing) {
    xencons_interface r{};
    r.out_prod = r.out_cons = 2040;
    ASSERT_EQ(console_ring_put(r, "0123456789abcdef").value(), 16u);
    EXPECT_EQ(r.out[2047], '7');
    EXPECT_EQ(r.out[0], '8');
    EXPECT_EQ(consume(r), "0123456789abcdef");
}

TEST(ConsoleRing, IndicesRunFreelyPast2To32) {
    xencons_interface r{};
    r.out_prod = r.out_cons = 0xfffffffc;
    ASSERT_EQ(console_ring_put(r, "abcdefgh").value(), 8u);
    EXPECT_EQ(r.out_prod, 4u);
    EXPECT_EQ(consume(r), "abcdefgh");
}

TEST(ConsoleRing, OnlyWhatFitsIsTakenAndAFullRingTakesNothing) {
    xencons_interface r{};
    r.out_prod = 2045;  // 3 bytes of room
    ASSERT_EQ(console_ring_put(r, "abcdef").value(), 3u);
    EXPECT_EQ(r.out_prod, 2048u);
    ASSERT_EQ(console_ring_put(r, "def").value(), 0u);
    EXPECT_EQ(r.out_prod, 2048u);
    r.out_cons = 2045;  // the backend read three
    ASSERT_EQ(console_ring_put(r, "def").value(), 3u);
}

TEST(ConsoleRing, AnImpossibleOutConsIsAProtocolError) {
    xencons_interface r{};
    r.out_prod = 10;
    r.out_cons = 11;  // ahead of the producer: 2^32 - 1 bytes "outstanding"
    auto n = console_ring_put(r, "x");
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(n.error(), Error::protocol);
    EXPECT_EQ(r.out_prod, 10u);  // nothing written
    r.out_cons = 10 - 2049;
    EXPECT_EQ(console_ring_put(r, "x").error(), Error::protocol);
}

}  // namespace
}  // namespace keel::xen

// The 4-level page walk: 4 KiB, 2 MiB and 1 GiB pages, cr3's flag bits, entries not present,
// non-canonical addresses, and accesses that run off the mapped range.
#include "walk.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "fake_target.h"

namespace keel::gdbserver {
namespace {

using test::FakeTarget;

class GdbWalk : public ::testing::Test {
protected:
    void SetUp() override { t.pause(); }
    void TearDown() override { t.resume(); }
    FakeTarget t;
};

TEST_F(GdbWalk, FourKibPage) {
    t.add_memory(0x1000000, 4096);
    t.map_4k(0xffffffff80001000, 0x1000000);
    EXPECT_EQ(translate(t, t.regs, 0xffffffff80001234), 0x1000234u);
}

TEST_F(GdbWalk, TwoMibPageKeepsTwentyOneOffsetBits) {
    t.map_2m(0x40000000, 0x2000000);
    EXPECT_EQ(translate(t, t.regs, 0x40123456), 0x2123456u);
}

TEST_F(GdbWalk, OneGibPageKeepsThirtyOffsetBits) {
    t.map_1g(0x8000000000, 0x40000000);
    EXPECT_EQ(translate(t, t.regs, 0x8012345678), 0x52345678u);
}

TEST_F(GdbWalk, NotPresentAtAnyLevelIsNoTranslation) {
    t.map_4k(0x1000, 0x1000000);
    EXPECT_FALSE(translate(t, t.regs, 0x2000));        // PTE not present
    EXPECT_FALSE(translate(t, t.regs, 0x200000));      // PDE not present
    EXPECT_FALSE(translate(t, t.regs, 0x40000000));    // PDPTE not present
    EXPECT_FALSE(translate(t, t.regs, 0x8000000000));  // PML4E not present
}

TEST_F(GdbWalk, NonCanonicalAddressIsRefused) {
    t.map_4k(0x1000, 0x1000000);
    EXPECT_FALSE(translate(t, t.regs, 0x0000800000001000));
    EXPECT_FALSE(translate(t, t.regs, 0x8000000000001000));
}

TEST_F(GdbWalk, Cr3PcidAndNoFlushBitsAreIgnored) {
    t.add_memory(0x1000000, 4096);
    t.map_4k(0x1000, 0x1000000);
    t.regs.cr3 |= 0x8000000000000005ull;
    EXPECT_EQ(translate(t, t.regs, 0x1008), 0x1000008u);
}

TEST_F(GdbWalk, PagingOffMeansPhysical) {
    t.regs.cr0 = 0x11;
    EXPECT_EQ(translate(t, t.regs, 0x1234), 0x1234u);
}

TEST_F(GdbWalk, FiveLevelPagingIsRefused) {
    t.map_4k(0x1000, 0x1000000);
    t.regs.cr4 |= 1u << 12;
    EXPECT_FALSE(translate(t, t.regs, 0x1000));
}

TEST_F(GdbWalk, ReadCrossesFromAFourKibPageIntoATwoMibPage) {
    // va 0x1ff000 (4 KiB page, gpa 0x1000000) is followed by va 0x200000 (2 MiB, gpa 0x2000000).
    t.add_memory(0x1000000, 4096);
    t.add_memory(0x2000000, 4096);
    t.map_4k(0x1ff000, 0x1000000);
    t.map_2m(0x200000, 0x2000000);
    t.poke(0x1000ffe, "ab", 2);
    t.poke(0x2000000, "cd", 2);
    char buf[4] = {};
    EXPECT_EQ(read_virtual(t, t.regs, 0x1ffffe, buf, 4), 4u);
    EXPECT_EQ(std::memcmp(buf, "abcd", 4), 0);
}

TEST_F(GdbWalk, ReadStopsAtTheFirstUnmappedPage) {
    t.add_memory(0x1000000, 4096);
    t.map_4k(0x1000, 0x1000000);
    std::vector<char> buf(8192);
    EXPECT_EQ(read_virtual(t, t.regs, 0x1ff0, buf.data(), buf.size()), 0x10u);
    EXPECT_EQ(read_virtual(t, t.regs, 0x2000, buf.data(), 1), 0u);
}

TEST_F(GdbWalk, TableFrameTheTargetCannotReadIsNoTranslation) {
    // A PTE pointing at a frame the domain does not have.
    t.map_4k(0x1000, 0x7000000);
    char c = 0;
    EXPECT_EQ(translate(t, t.regs, 0x1000), 0x7000000u);
    EXPECT_EQ(read_virtual(t, t.regs, 0x1000, &c, 1), 0u);
}

TEST_F(GdbWalk, WriteGoesThroughTheWalk) {
    t.map_2m(0x600000, 0x2000000);
    t.add_memory(0x2000000, 0x200000);
    EXPECT_EQ(write_virtual(t, t.regs, 0x6ffffe, "wxyz", 4), 4u);
    char buf[4] = {};
    EXPECT_EQ(read_virtual(t, t.regs, 0x6ffffe, buf, 4), 4u);
    EXPECT_EQ(std::memcmp(buf, "wxyz", 4), 0);
}

}  // namespace
}  // namespace keel::gdbserver

// PageTableBuilder, audit and translate over page tables kept in host memory.
#include "keel/xen/page_table.h"

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <vector>

namespace keel::xen {
namespace {

constexpr std::uint64_t kib4 = 0x1000;
constexpr std::uint64_t mib2 = 0x200000;
constexpr std::uint64_t pte_p = 1, pte_rw = 2, pte_us = 4, pte_ps = 0x80, pte_nx = 1ull << 63;
constexpr std::uint64_t addr_mask = 0x000ffffffffff000ull;

// Tables live in host pages; their "physical" addresses start at 16 MiB.
class FakeTables final : public PageTableMemory {
public:
    explicit FakeTables(std::size_t limit = 1000) : limit_(limit) {}
    std::uint64_t alloc_table() override {
        if (pages_.size() >= limit_) return 0;
        pages_.push_back(std::make_unique<Page>());
        pages_.back()->fill(0);
        return base + (pages_.size() - 1) * kib4;
    }
    std::uint64_t* table(std::uint64_t paddr) override {
        if (paddr < base || (paddr - base) % kib4 != 0) return nullptr;
        std::size_t i = (paddr - base) / kib4;
        return i < pages_.size() ? pages_[i]->data() : nullptr;
    }
    std::size_t tables() const { return pages_.size(); }

    static constexpr std::uint64_t base = 0x1000000;

private:
    using Page = std::array<std::uint64_t, 512>;
    std::vector<std::unique_ptr<Page>> pages_;
    std::size_t limit_;
};

unsigned idx(std::uint64_t va, int level) { return (va >> (12 + 9 * (level - 1))) & 511; }

// The entry at `level` (4 = PML4 ... 1 = PT) for va, following present table entries.
std::uint64_t* entry_at(FakeTables& m, std::uint64_t root, std::uint64_t va, int level) {
    std::uint64_t pa = root;
    for (int l = 4;; --l) {
        std::uint64_t* t = m.table(pa);
        if (!t) return nullptr;
        std::uint64_t* e = &t[idx(va, l)];
        if (l == level) return e;
        if (!(*e & pte_p) || (*e & pte_ps)) return nullptr;
        pa = *e & addr_mask;
    }
}

class PageTableTest : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(b.init().ok()); }
    FakeTables mem;
    PageTableBuilder b{mem};
};

TEST_F(PageTableTest, ElfLayoutGetsItsPermissions) {
    // text R+X, rodata R, data RW, as the boot code maps an image at 1 MiB.
    ASSERT_TRUE(b.map(0x100000, 0x100000, 5 * kib4, perm_x).ok());
    ASSERT_TRUE(b.map(0x105000, 0x105000, 3 * kib4, perm_r).ok());
    ASSERT_TRUE(b.map(0x108000, 0x108000, 8 * kib4, perm_w).ok());

    AuditResult a = audit(mem, b.root());
    EXPECT_EQ(a.mapped_pages_4k_equiv, 16u);
    EXPECT_EQ(a.executable_pages, 5u);
    EXPECT_EQ(a.writable_pages, 8u);
    EXPECT_EQ(a.wx_pages, 0u);
    EXPECT_EQ(a.first_wx_va, 0u);
    EXPECT_EQ(a.user_pages, 0u);
    EXPECT_FALSE(a.page0_mapped);

    EXPECT_EQ(translate(mem, b.root(), 0x100123), 0x100123u);
    EXPECT_EQ(translate(mem, b.root(), 0x10ffff), 0x10ffffu);
    EXPECT_EQ(translate(mem, b.root(), 0x110000), std::nullopt);
    EXPECT_EQ(translate(mem, b.root(), 0), std::nullopt);

    // Leaf bits: text present without RW or NX, rodata NX, data RW+NX, never U/S.
    EXPECT_EQ(*entry_at(mem, b.root(), 0x100000, 1) & ~addr_mask, pte_p);
    EXPECT_EQ(*entry_at(mem, b.root(), 0x105000, 1) & ~addr_mask, pte_p | pte_nx);
    EXPECT_EQ(*entry_at(mem, b.root(), 0x108000, 1) & ~addr_mask, pte_p | pte_rw | pte_nx);
    // Intermediate entries: present + RW, no NX (the leaf decides).
    for (int level = 4; level >= 2; --level)
        EXPECT_EQ(*entry_at(mem, b.root(), 0x100000, level) & ~addr_mask, pte_p | pte_rw);
}

TEST_F(PageTableTest, TwoMegabytePagesWhereAlignmentAllows) {
    ASSERT_TRUE(b.map(0x40000000, 0x80000000, 2 * mib2, perm_w).ok());
    EXPECT_EQ(mem.tables(), 3u);  // PML4, PDPT, PD: no page table at all
    std::uint64_t pde = *entry_at(mem, b.root(), 0x40000000, 2);
    EXPECT_TRUE(pde & pte_ps);
    EXPECT_EQ(pde & addr_mask, 0x80000000u);
    EXPECT_EQ(translate(mem, b.root(), 0x40212345), 0x80212345u);
    EXPECT_EQ(audit(mem, b.root()).mapped_pages_4k_equiv, 1024u);
}

TEST_F(PageTableTest, MisalignedPhysicalUsesSmallPages) {
    ASSERT_TRUE(b.map(0x200000, 0x201000, mib2, perm_r).ok());
    EXPECT_EQ(mem.tables(), 4u);
    EXPECT_FALSE(*entry_at(mem, b.root(), 0x200000, 2) & pte_ps);
    EXPECT_EQ(translate(mem, b.root(), 0x3fffff), 0x400fffu);
}

TEST_F(PageTableTest, MixedRangeUsesBothSizes) {
    // [4 KiB, 4 MiB + 8 KiB): small pages to 2 MiB, one 2 MiB page, then small pages.
    ASSERT_TRUE(b.map(kib4, kib4, 2 * mib2 + kib4, perm_w).ok());
    EXPECT_FALSE(*entry_at(mem, b.root(), 0, 2) & pte_ps);
    EXPECT_TRUE(*entry_at(mem, b.root(), mib2, 2) & pte_ps);
    EXPECT_FALSE(*entry_at(mem, b.root(), 2 * mib2, 2) & pte_ps);
    AuditResult a = audit(mem, b.root());
    EXPECT_EQ(a.mapped_pages_4k_equiv, 511u + 512u + 2u);
    EXPECT_FALSE(a.page0_mapped);
    EXPECT_EQ(translate(mem, b.root(), 2 * mib2 + kib4 + 5), 2 * mib2 + kib4 + 5);
}

TEST_F(PageTableTest, HigherHalfMappingsAreCanonical) {
    const std::uint64_t va = 0xffffffff80000000ull;
    ASSERT_TRUE(b.map(va, 0x100000, 4 * kib4, perm_x).ok());
    EXPECT_EQ(translate(mem, b.root(), va + 0x10), 0x100010u);
    EXPECT_EQ(translate(mem, b.root(), 0x0000ffff80000000ull), std::nullopt);  // not canonical
    // Make it W+X by hand: the audit must report the canonical VA.
    *entry_at(mem, b.root(), va + kib4, 1) |= pte_rw;
    AuditResult a = audit(mem, b.root());
    EXPECT_EQ(a.wx_pages, 1u);
    EXPECT_EQ(a.first_wx_va, va + kib4);
}

TEST_F(PageTableTest, WritableAndExecutableIsRefused) {
    EXPECT_EQ(b.map(0x100000, 0x100000, kib4, perm_w | perm_x).error(), Error::invalid_argument);
    EXPECT_EQ(b.map(0x100000, 0x100000, kib4, 4).error(), Error::invalid_argument);
    EXPECT_EQ(audit(mem, b.root()).mapped_pages_4k_equiv, 0u);
}

TEST_F(PageTableTest, BadRangesAreRefused) {
    EXPECT_EQ(b.map(0x100, 0x1000, kib4, perm_r).error(), Error::invalid_argument);    // va
    EXPECT_EQ(b.map(0x1000, 0x100, kib4, perm_r).error(), Error::invalid_argument);    // pa
    EXPECT_EQ(b.map(0x1000, 0x1000, 0x800, perm_r).error(), Error::invalid_argument);  // len
    EXPECT_EQ(b.map(0x1000, 0x1000, 0, perm_r).error(), Error::invalid_argument);
    EXPECT_EQ(b.map(0x0000800000000000ull, 0, kib4, perm_r).error(), Error::invalid_argument);
    EXPECT_EQ(b.map(0x00007ffffffff000ull, 0, 2 * kib4, perm_r).error(), Error::invalid_argument);
    EXPECT_EQ(b.map(0xfffffffffffff000ull, 0, 2 * kib4, perm_r).error(), Error::invalid_argument);
    EXPECT_EQ(b.map(0x1000, (1ull << 52) - kib4, 2 * kib4, perm_r).error(), Error::invalid_argument);
    EXPECT_EQ(b.unmap(0x1000, 0x800).error(), Error::invalid_argument);
}

TEST(PageTableBuilderTest, MapBeforeInitIsRefused) {
    FakeTables mem;
    PageTableBuilder b(mem);
    EXPECT_EQ(b.root(), 0u);
    EXPECT_EQ(b.map(0x1000, 0x1000, kib4, perm_r).error(), Error::invalid_argument);
}

TEST(PageTableBuilderTest, OutOfMemory) {
    FakeTables none(0);
    PageTableBuilder b0(none);
    EXPECT_EQ(b0.init().error(), Error::no_memory);

    FakeTables two(2);
    PageTableBuilder b(two);
    ASSERT_TRUE(b.init().ok());
    EXPECT_EQ(b.map(0x1000, 0x1000, kib4, perm_r).error(), Error::no_memory);
}

TEST_F(PageTableTest, RemappingToAnotherTargetIsRefused) {
    ASSERT_TRUE(b.map(0x100000, 0x100000, 4 * kib4, perm_r).ok());
    // Overlaps the last page with a different target: nothing of the new range may appear.
    EXPECT_EQ(b.map(0xfe000, 0x500000, 3 * kib4, perm_r).error(), Error::exists);
    EXPECT_EQ(translate(mem, b.root(), 0xfe000), std::nullopt);
    EXPECT_EQ(translate(mem, b.root(), 0x100000), 0x100000u);
    // Same target, other permissions: also refused.
    EXPECT_EQ(b.map(0x100000, 0x100000, kib4, perm_w).error(), Error::exists);
    // The identical mapping again, and one that extends it, are fine.
    EXPECT_TRUE(b.map(0x100000, 0x100000, 4 * kib4, perm_r).ok());
    EXPECT_TRUE(b.map(0x102000, 0x102000, 4 * kib4, perm_r).ok());
    EXPECT_EQ(audit(mem, b.root()).mapped_pages_4k_equiv, 6u);
}

TEST_F(PageTableTest, RemappingInsideALargePageIsRefused) {
    ASSERT_TRUE(b.map(0, 0, mib2, perm_w).ok());
    EXPECT_EQ(b.map(0x5000, 0x9000, kib4, perm_w).error(), Error::exists);
    EXPECT_TRUE(b.map(0x5000, 0x5000, kib4, perm_w).ok());
}

TEST_F(PageTableTest, UnmapSplitsALargePage) {
    ASSERT_TRUE(b.map(mib2, 0x40000000, mib2, perm_w).ok());
    ASSERT_TRUE(*entry_at(mem, b.root(), mib2, 2) & pte_ps);
    ASSERT_TRUE(b.unmap(mib2 + kib4, kib4).ok());  // a guard page in the middle

    EXPECT_FALSE(*entry_at(mem, b.root(), mib2, 2) & pte_ps);
    EXPECT_EQ(translate(mem, b.root(), mib2 + kib4), std::nullopt);
    EXPECT_EQ(translate(mem, b.root(), mib2), 0x40000000u);
    EXPECT_EQ(translate(mem, b.root(), mib2 + 2 * kib4 + 7), 0x40002007u);
    EXPECT_EQ(translate(mem, b.root(), 2 * mib2 - 1), 0x401fffffu);
    AuditResult a = audit(mem, b.root());
    EXPECT_EQ(a.mapped_pages_4k_equiv, 511u);
    EXPECT_EQ(a.writable_pages, 511u);  // the split kept RW + NX
    EXPECT_EQ(a.executable_pages, 0u);
}

TEST_F(PageTableTest, UnmapOfAWholeLargePageNeedsNoSplit) {
    ASSERT_TRUE(b.map(0, 0, 2 * mib2, perm_r).ok());
    const std::size_t tables = mem.tables();
    ASSERT_TRUE(b.unmap(mib2, mib2).ok());
    EXPECT_EQ(mem.tables(), tables);
    EXPECT_EQ(audit(mem, b.root()).mapped_pages_4k_equiv, 512u);
    EXPECT_TRUE(b.unmap(0x40000000, mib2).ok());  // not mapped: nothing to do
}

TEST_F(PageTableTest, UnmapOfPageZeroIsDetected) {
    ASSERT_TRUE(b.map(0, 0, mib2, perm_w).ok());
    EXPECT_TRUE(audit(mem, b.root()).page0_mapped);
    ASSERT_TRUE(b.unmap(0, kib4).ok());
    AuditResult a = audit(mem, b.root());
    EXPECT_FALSE(a.page0_mapped);
    EXPECT_EQ(a.mapped_pages_4k_equiv, 511u);
    EXPECT_EQ(translate(mem, b.root(), kib4), kib4);
}

TEST_F(PageTableTest, SplitKeepsAttributesOfAHandmadeOneGigabytePage) {
    // The builder never makes 1 GiB pages, but unmap and audit must cope with one.
    std::uint64_t* pml4 = mem.table(b.root());
    std::uint64_t pdpt = mem.alloc_table();
    pml4[0] = pdpt | pte_p | pte_rw;
    mem.table(pdpt)[1] = 0x80000000ull | pte_p | pte_ps | pte_nx;  // VA 1 GiB -> 2 GiB, R only
    EXPECT_EQ(audit(mem, b.root()).mapped_pages_4k_equiv, 262144u);
    EXPECT_EQ(translate(mem, b.root(), 0x40000000ull + 0x123456), 0x80123456u);

    ASSERT_TRUE(b.unmap(0x40000000ull + mib2 + kib4, kib4).ok());
    AuditResult a = audit(mem, b.root());
    EXPECT_EQ(a.mapped_pages_4k_equiv, 262143u);
    EXPECT_EQ(a.writable_pages, 0u);
    EXPECT_EQ(a.executable_pages, 0u);
    EXPECT_EQ(translate(mem, b.root(), 0x40000000ull + 0x3fffffff), 0xbfffffffu);
    EXPECT_EQ(translate(mem, b.root(), 0x40000000ull + mib2 + kib4), std::nullopt);
}

TEST_F(PageTableTest, AuditCatchesAHandmadeWxLeaf) {
    ASSERT_TRUE(b.map(0x100000, 0x100000, 4 * kib4, perm_w).ok());
    *entry_at(mem, b.root(), 0x102000, 1) &= ~pte_nx;  // data page made executable
    AuditResult a = audit(mem, b.root());
    EXPECT_EQ(a.wx_pages, 1u);
    EXPECT_EQ(a.first_wx_va, 0x102000u);
    EXPECT_EQ(a.executable_pages, 1u);
}

TEST_F(PageTableTest, AuditCatchesAHandmadeWxLargePage) {
    ASSERT_TRUE(b.map(0x600000, 0x600000, mib2, perm_x).ok());
    *entry_at(mem, b.root(), 0x600000, 2) |= pte_rw;
    AuditResult a = audit(mem, b.root());
    EXPECT_EQ(a.wx_pages, 512u);
    EXPECT_EQ(a.first_wx_va, 0x600000u);
}

TEST_F(PageTableTest, EffectivePermissionsFollowThePath) {
    // One leaf with RW and no NX: whether it is W+X depends on its parents alone.
    ASSERT_TRUE(b.map(0x100000, 0x100000, kib4, perm_w).ok());
    std::uint64_t* leaf = entry_at(mem, b.root(), 0x100000, 1);
    std::uint64_t* pde = entry_at(mem, b.root(), 0x100000, 2);
    *leaf &= ~pte_nx;

    // Parents RW without NX: W+X by inheritance of permissive parents.
    EXPECT_EQ(audit(mem, b.root()).wx_pages, 1u);

    // A read-only parent makes the page read-only, whatever the leaf says.
    *pde &= ~pte_rw;
    AuditResult a = audit(mem, b.root());
    EXPECT_EQ(a.wx_pages, 0u);
    EXPECT_EQ(a.writable_pages, 0u);
    EXPECT_EQ(a.executable_pages, 1u);

    // An NX parent makes it non-executable.
    *pde |= pte_rw | pte_nx;
    a = audit(mem, b.root());
    EXPECT_EQ(a.wx_pages, 0u);
    EXPECT_EQ(a.writable_pages, 1u);
    EXPECT_EQ(a.executable_pages, 0u);

    // NX on the PML4 entry covers everything below it.
    *pde &= ~pte_nx;
    *entry_at(mem, b.root(), 0x100000, 4) |= pte_nx;
    EXPECT_EQ(audit(mem, b.root()).executable_pages, 0u);
}

TEST_F(PageTableTest, AuditCountsUserPagesOnlyWithUserOnEveryLevel) {
    ASSERT_TRUE(b.map(0x100000, 0x100000, kib4, perm_r).ok());
    *entry_at(mem, b.root(), 0x100000, 1) |= pte_us;
    EXPECT_EQ(audit(mem, b.root()).user_pages, 0u);
    for (int level = 4; level >= 2; --level) *entry_at(mem, b.root(), 0x100000, level) |= pte_us;
    EXPECT_EQ(audit(mem, b.root()).user_pages, 1u);
}

TEST_F(PageTableTest, AuditSkipsTablesItCannotResolve) {
    ASSERT_TRUE(b.map(0x100000, 0x100000, kib4, perm_r).ok());
    mem.table(b.root())[5] = 0x7000 | pte_p | pte_rw;  // points nowhere the fake knows
    EXPECT_EQ(audit(mem, b.root()).mapped_pages_4k_equiv, 1u);
    EXPECT_EQ(translate(mem, b.root(), 5ull << 39), std::nullopt);
    EXPECT_EQ(b.map(5ull << 39, 0, kib4, perm_r).error(), Error::no_memory);
}

}  // namespace
}  // namespace keel::xen

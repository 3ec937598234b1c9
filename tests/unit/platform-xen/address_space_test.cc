// The address-space plan for a 32 MiB PVH guest as libxl lays it out: what is mapped with
// which rights, nothing below 64 KiB, only RAM and the shared frames, the tables read-only.
#include "keel/xen/address_space.h"

#include <gtest/gtest.h>
#include <xen/arch-x86/hvm/start_info.h>

#include <array>
#include <memory>
#include <vector>

namespace keel::xen {
namespace {

constexpr std::uint64_t kib4 = 0x1000;
constexpr std::uint64_t ram_end = 32ull << 20;
constexpr std::uint64_t pte_p = 1, pte_rw = 2, pte_ps = 0x80, pte_nx = 1ull << 63;
constexpr std::uint64_t addr_mask = 0x000ffffffffff000ull;

// The pool's pages live in host memory, at "physical" [first, limit).
class FakePool final : public TablePool {
public:
    FakePool(std::uint64_t first, std::uint64_t limit)
        : TablePool(first, limit), pages_((limit - first) / kib4) {}
    std::uint64_t* table(std::uint64_t pa) override {
        if (pa < first() || pa >= limit() || pa % kib4) return nullptr;
        auto& p = pages_[(pa - first()) / kib4];
        if (!p) p = std::make_unique<std::array<std::uint64_t, 512>>();
        return p->data();
    }

private:
    std::vector<std::unique_ptr<std::array<std::uint64_t, 512>>> pages_;
};

struct Rights {
    bool mapped = false, w = false, x = false;
};

// Effective rights of va: RW on every level, no NX on any.
Rights rights(PageTableMemory& m, std::uint64_t root, std::uint64_t va) {
    Rights r{false, true, true};
    std::uint64_t pa = root;
    for (int level = 4; level >= 1; --level) {
        const std::uint64_t e = m.table(pa)[(va >> (12 + 9 * (level - 1))) & 511];
        if (!(e & pte_p)) return Rights{};
        r.w = r.w && (e & pte_rw);
        r.x = r.x && !(e & pte_nx);
        if (level == 1 || (e & pte_ps)) {
            r.mapped = true;
            return r;
        }
        pa = e & addr_mask;
    }
    return Rights{};
}

// libxl's PVH map: RAM from 0, an ACPI area, the special pages (xenstore, console) reserved.
const MemRegion memmap[] = {
    {0, ram_end, XEN_HVM_MEMMAP_TYPE_RAM},
    {0xfc000000, 0x10000, XEN_HVM_MEMMAP_TYPE_ACPI},
    {0xfeff8000, 0x8000, XEN_HVM_MEMMAP_TYPE_RESERVED},
};
const Range guards[] = {{0x190000, 0x191000}, {0x1d0000, 0x1d1000}};
constexpr std::uint64_t grant_base = 0xf0000000, store = 0xfeffc000, console = 0xfeffd000;
const Range shared[] = {{grant_base, grant_base + 8 * kib4}, {store, store + kib4}, {console, console + kib4}};
constexpr std::uint64_t pool_first = 0x1d8000, pool_limit = pool_first + 256 * kib4;

AddressSpacePlan plan() {
    AddressSpacePlan p{};
    p.text = {0x100000, 0x140000};
    p.rodata = {0x140000, 0x160000};
    p.data = {0x160000, 0x1d5000};
    p.ksyms = {0x1d5000, 0x1d8000};
    p.guards = guards;
    p.memmap = memmap;
    p.shared = shared;
    return p;
}

class AddressSpaceTest : public ::testing::Test {
protected:
    void SetUp() override {
        const char* why = nullptr;
        auto r = build_address_space(pool, plan(), &why);
        ASSERT_TRUE(r.ok()) << (why ? why : "");
        root = r.value();
    }
    Rights at(std::uint64_t va) { return rights(pool, root, va); }

    FakePool pool{pool_first, pool_limit};
    std::uint64_t root = 0;
};

TEST_F(AddressSpaceTest, ImageSectionsGetTheirRights) {
    EXPECT_TRUE(at(0x100000).mapped && at(0x100000).x && !at(0x100000).w);  // text R+X
    EXPECT_TRUE(at(0x13f000).x);
    EXPECT_TRUE(at(0x140000).mapped && !at(0x140000).x && !at(0x140000).w);  // rodata R
    EXPECT_TRUE(at(0x160000).w && !at(0x160000).x);                          // data RW+NX
    EXPECT_TRUE(at(0x1d4000).w && !at(0x1d4000).x);
    EXPECT_TRUE(at(0x1d5000).mapped && !at(0x1d5000).w && !at(0x1d5000).x);  // ksyms R
}

TEST_F(AddressSpaceTest, GuardPagesUnderStacksAreUnmapped) {
    EXPECT_FALSE(at(0x190000).mapped);
    EXPECT_FALSE(at(0x1d0000).mapped);
    EXPECT_TRUE(at(0x18f000).mapped && at(0x191000).mapped);
}

TEST_F(AddressSpaceTest, NothingIsMappedBelow64KiB) {
    for (std::uint64_t va = 0; va < null_region_end; va += kib4) EXPECT_FALSE(at(va).mapped) << std::hex << va;
    EXPECT_TRUE(at(null_region_end).w);  // low RAM above it is usable
    EXPECT_GE(audit(pool, root).lowest_va, null_region_end);
}

TEST_F(AddressSpaceTest, OnlyRamAndTheSharedFramesAreMapped) {
    EXPECT_FALSE(at(ram_end).mapped);              // past the end of RAM
    EXPECT_FALSE(at(0x80000000).mapped);           // a hole
    EXPECT_FALSE(at(0xfc000000).mapped);           // ACPI tables: not ours to touch
    EXPECT_FALSE(at(0xfeff8000).mapped);           // a special page nobody asked for
    EXPECT_FALSE(at(0xfee00000).mapped);           // the local APIC
    for (const Range& s : shared) EXPECT_TRUE(at(s.start).w && !at(s.start).x) << std::hex << s.start;
    EXPECT_FALSE(at(grant_base + 8 * kib4).mapped);
    // Exactly: RAM minus the null region and the guard pages, plus the shared frames.
    const AuditResult a = audit(pool, root);
    EXPECT_EQ(a.mapped_pages_4k_equiv, (ram_end - null_region_end) / kib4 - 2 + 10);
    EXPECT_EQ(a.wx_pages, 0u);
}

TEST_F(AddressSpaceTest, PageTablePagesAreReadOnly) {
    ASSERT_GT(pool.next(), pool_first);
    for (std::uint64_t pa = pool_first; pa < pool.next(); pa += kib4) {
        EXPECT_TRUE(at(pa).mapped) << std::hex << pa;
        EXPECT_FALSE(at(pa).w) << std::hex << pa;
    }
    // The pool's unused tail is RAM for the allocator.
    for (std::uint64_t pa = pool.next(); pa < pool_limit; pa += kib4) EXPECT_TRUE(at(pa).w) << std::hex << pa;
    AuditResult a{};
    EXPECT_EQ(check_address_space(pool, root, guards, a), nullptr);
    EXPECT_EQ(a.writable_table_pages, 0u);
    EXPECT_GT(a.table_pages, 3u);
    EXPECT_LE(a.table_pages, (pool.next() - pool_first) / kib4);
}

TEST_F(AddressSpaceTest, FreeRamIsMappedWritableAndTouchesNothingElse) {
    MemRegion free[16];
    const std::size_t n = free_ram(plan(), pool, free, 16);
    ASSERT_GT(n, 0u);
    std::uint64_t pages = 0;
    for (std::size_t i = 0; i < n; ++i) {
        for (std::uint64_t pa = free[i].base; pa < free[i].base + free[i].length; pa += kib4) {
            ASSERT_TRUE(at(pa).w) << std::hex << pa;  // the allocator may write every page it gets
            ASSERT_TRUE(pa >= null_region_end && (pa < 0x100000 || pa >= pool.next())) << std::hex << pa;
            ++pages;
        }
    }
    // All RAM but the null region, the image and the taken part of the pool.
    EXPECT_EQ(pages, (ram_end - null_region_end - (pool.next() - 0x100000)) / kib4);
}

TEST_F(AddressSpaceTest, AuditRefusesAMappedGuardPage) {
    PageTableBuilder b(pool, root);
    ASSERT_TRUE(b.map(0x190000, 0x190000, kib4, perm_w).ok());
    AuditResult a{};
    EXPECT_STREQ(check_address_space(pool, root, guards, a), "a stack guard page is mapped");
}

TEST_F(AddressSpaceTest, AuditRefusesAMappedNullRegion) {
    PageTableBuilder b(pool, root);
    ASSERT_TRUE(b.map(0xf000, 0xf000, kib4, perm_r).ok());
    AuditResult a{};
    EXPECT_STREQ(check_address_space(pool, root, guards, a),
                 "a page below 64 KiB is mapped (null pointers would not fault)");
}

TEST(AddressSpaceAudit, RefusesWritablePageTables) {
    FakePool pool(pool_first, pool_limit);
    PageTableBuilder b(pool);
    ASSERT_TRUE(b.init().ok());
    ASSERT_TRUE(b.map(pool_first, pool_first, 256 * kib4, perm_w).ok());
    AuditResult a{};
    EXPECT_STREQ(check_address_space(pool, b.root(), {}, a), "a page-table page is writable");
    EXPECT_EQ(a.writable_table_pages, a.table_pages);
}

TEST(AddressSpacePlanRules, RefusesSharedFramesInTheNullRegionOrTheImage) {
    const char* why = nullptr;
    for (Range bad : {Range{0x1000, 0x2000}, Range{0x140000, 0x141000}, Range{pool_first, pool_first + kib4}}) {
        FakePool pool(pool_first, pool_limit);
        AddressSpacePlan p = plan();
        p.shared = std::span<const Range>(&bad, 1);
        EXPECT_FALSE(build_address_space(pool, p, &why).ok()) << std::hex << bad.start;
    }
    EXPECT_STREQ(why, "a shared frame overlaps the image or the page tables");
}

TEST(AddressSpacePlanRules, RefusesAPoolOutsideRam) {
    FakePool pool(ram_end - kib4, ram_end + kib4);
    const char* why = nullptr;
    EXPECT_FALSE(build_address_space(pool, plan(), &why).ok());
    EXPECT_STREQ(why, "the page-table pool is not inside one RAM region");
}

TEST(AddressSpacePlanRules, APoolTooSmallIsAnError) {
    FakePool pool(pool_first, pool_first + 3 * kib4);
    const char* why = nullptr;
    EXPECT_EQ(build_address_space(pool, plan(), &why).error(), Error::no_memory);
    EXPECT_NE(why, nullptr);
}

// The audit reads each table's own mapping where PageTableMemory::table_va() says the guest
// sees it (classic PV: not at the machine address in the entries).
TEST(AddressSpaceAudit, ChecksTablePagesAtTheirVirtualAddress) {
    FakePool pool(pool_first, pool_limit);
    auto r = build_address_space(pool, plan(), nullptr);
    ASSERT_TRUE(r.ok());
    struct SeenElsewhere final : PageTableMemory {
        FakePool& pool;
        explicit SeenElsewhere(FakePool& p) : pool(p) {}
        std::uint64_t alloc_table() override { return 0; }
        std::uint64_t* table(std::uint64_t pa) override { return pool.table(pa); }
        // Every table read through a page of plain (writable) RAM instead of the pool.
        std::uint64_t table_va(std::uint64_t pa) override { return pa - pool_first + 0x400000; }
    } elsewhere(pool);
    AuditResult a{};
    EXPECT_EQ(check_address_space(pool, r.value(), guards, a), nullptr);
    EXPECT_STREQ(check_address_space(elsewhere, r.value(), guards, a), "a page-table page is writable");
    EXPECT_EQ(a.writable_table_pages, a.table_pages);
}

// A classic PV guest of 8 MiB as libxc lays it out (docs/pv.md): the image from 64 KiB, then the
// bootstrap elements (p2m, start_info, the xenstore and console rings, Xen's page tables, its
// stack), then the pool in the bootstrap region's free tail.
namespace pv {
constexpr std::uint64_t ram_end = 8ull << 20;
constexpr std::uint64_t p2m = 0x78000, start_info = 0x7c000, store = 0x7d000, console = 0x7e000;
constexpr std::uint64_t xen_tables = 0x7f000, xen_stack_end = 0x88000;
constexpr std::uint64_t pool_first = xen_stack_end, pool_limit = pool_first + 256 * kib4;
const MemRegion memmap[] = {{0, ram_end, XEN_HVM_MEMMAP_TYPE_RAM}};
const Range guards[] = {{0x50000, 0x51000}, {0x60000, 0x61000}};
const Range shared[] = {{p2m, p2m + 4 * kib4}, {store, store + kib4}, {console, console + kib4}};
const Range reserved[] = {{p2m, xen_stack_end}};

AddressSpacePlan plan() {
    AddressSpacePlan p{};
    p.text = {0x10000, 0x30000};
    p.rodata = {0x30000, 0x40000};
    p.data = {0x40000, 0x70000};
    p.ksyms = {0x70000, 0x78000};
    p.guards = guards;
    p.memmap = memmap;
    p.shared = shared;
    p.reserved = reserved;
    p.small_pages = true;
    return p;
}
}  // namespace pv

class PvAddressSpaceTest : public ::testing::Test {
protected:
    void SetUp() override {
        const char* why = nullptr;
        auto r = build_address_space(pool, pv::plan(), &why);
        ASSERT_TRUE(r.ok()) << (why ? why : "");
        root = r.value();
    }
    Rights at(std::uint64_t va) { return rights(pool, root, va); }

    FakePool pool{pv::pool_first, pv::pool_limit};
    std::uint64_t root = 0;
};

TEST_F(PvAddressSpaceTest, OnlySmallPages) {
    // Xen takes no superpage from a PV guest: every leaf is a 4 KiB PT entry.
    for (std::uint64_t va = 0; va < pv::ram_end; va += 2ull << 20) {
        const std::uint64_t l4 = pool.table(root)[0];
        ASSERT_TRUE(l4 & pte_p);
        const std::uint64_t l3 = pool.table(l4 & addr_mask)[0];
        ASSERT_TRUE(l3 & pte_p);
        const std::uint64_t l2 = pool.table(l3 & addr_mask)[(va >> 21) & 511];
        ASSERT_TRUE(l2 & pte_p) << std::hex << va;
        EXPECT_FALSE(l2 & pte_ps) << std::hex << va;
    }
    EXPECT_TRUE(at(0x200000).w && !at(0x200000).x);  // RAM is still mapped, page by page
    EXPECT_TRUE(at(pv::ram_end - kib4).w);
}

TEST_F(PvAddressSpaceTest, BootstrapElementsAreUnmappedExceptWhatIsShared) {
    EXPECT_FALSE(at(pv::start_info).mapped);
    for (std::uint64_t pa = pv::xen_tables; pa < pv::xen_stack_end; pa += kib4) {
        EXPECT_FALSE(at(pa).mapped) << std::hex << pa;  // Xen's tables: no writable mapping may reach them
    }
    for (const Range& s : pv::shared) {
        for (std::uint64_t pa = s.start; pa < s.end; pa += kib4) EXPECT_TRUE(at(pa).w && !at(pa).x) << std::hex << pa;
    }
    AuditResult a{};
    EXPECT_EQ(check_address_space(pool, root, pv::guards, a), nullptr);
    EXPECT_EQ(a.wx_pages, 0u);
    EXPECT_FALSE(a.page0_mapped);
}

TEST_F(PvAddressSpaceTest, FreeRamLeavesOutTheBootstrapElements) {
    MemRegion free[16];
    const std::size_t n = free_ram(pv::plan(), pool, free, 16);
    std::uint64_t pages = 0;
    for (std::size_t i = 0; i < n; ++i) {
        for (std::uint64_t pa = free[i].base; pa < free[i].base + free[i].length; pa += kib4) {
            ASSERT_TRUE(at(pa).w) << std::hex << pa;
            ASSERT_TRUE(pa >= pool.next()) << std::hex << pa;  // nothing below the pool's free part
            ++pages;
        }
    }
    EXPECT_EQ(pages, (pv::ram_end - pool.next()) / kib4);
}

TEST(AddressSpacePlanRules, RefusesReservedRangesOverTheImageOrThePool) {
    const char* why = nullptr;
    for (Range bad : {Range{0x70000, 0x79000}, Range{pv::pool_first, pv::pool_first + kib4}, Range{0x80000, 0x80800}}) {
        FakePool pool(pv::pool_first, pv::pool_limit);
        AddressSpacePlan p = pv::plan();
        p.reserved = std::span<const Range>(&bad, 1);
        p.shared = {};
        EXPECT_FALSE(build_address_space(pool, p, &why).ok()) << std::hex << bad.start;
    }
    const Range many[10] = {};
    FakePool pool(pv::pool_first, pv::pool_limit);
    AddressSpacePlan p = pv::plan();
    p.reserved = many;
    EXPECT_FALSE(build_address_space(pool, p, &why).ok());
    EXPECT_STREQ(why, "more than 9 shared and reserved ranges");
}

}  // namespace
}  // namespace keel::xen

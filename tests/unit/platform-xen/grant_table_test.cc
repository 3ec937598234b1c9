// GrantTable, Grant and find_physmap_hole. The test plays Xen: it owns the grant frames, maps
// entries for the "backend" by setting GTF_reading / GTF_writing as Xen does, and checks every
// entry it is shown against the protocol of xen/grant_table.h.
#include "keel/xen/grant_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

namespace keel::xen {
namespace {

constexpr DomId backend = 0;
constexpr std::uint16_t valid_type = GTF_permit_access;

/// Xen's side of a grant table with `frames` frames. The reserved entries hold what the
/// toolstack put there (console and xenstore grants to dom0), which keel must never touch.
class FakeXen {
public:
    explicit FakeXen(std::size_t frames = 1)
        : entries(frames * grant_entries_per_frame), meta(frames * grant_entries_per_frame) {
        for (GrantRef r = 0; r < GNTTAB_NR_RESERVED_ENTRIES; ++r) {
            entries[r] = grant_entry_v1_t{GTF_permit_access, 0, 0xC0DE00u + r};
        }
        reserved_before.assign(entries.begin(), entries.begin() + GNTTAB_NR_RESERVED_ENTRIES);
    }

    std::span<grant_entry_v1_t> frames() { return entries; }
    std::span<std::uint32_t> bookkeeping() { return meta; }

    /// What Xen checks before it maps or copies for `domid`: the entry is valid for it and,
    /// for a write, not read-only. Then it marks the entry in use.
    ::testing::AssertionResult map(GrantRef ref, DomId domid, bool write) {
        grant_entry_v1_t& e = entries.at(ref);
        if ((e.flags & GTF_type_mask) != valid_type) return ::testing::AssertionFailure() << "ref " << ref << " not granted";
        if (e.domid != domid) return ::testing::AssertionFailure() << "ref " << ref << " granted to " << e.domid;
        if (write && (e.flags & GTF_readonly)) return ::testing::AssertionFailure() << "ref " << ref << " is read-only";
        e.flags |= write ? (GTF_reading | GTF_writing) : GTF_reading;
        return ::testing::AssertionSuccess();
    }
    void unmap(GrantRef ref) { entries.at(ref).flags &= ~(GTF_reading | GTF_writing); }

    /// An entry as Xen would find it right after grant(): valid type, the backend's domid and
    /// the frame. Together with the free entries having flags 0, this is what the write order
    /// (domid, frame, barrier, flags) exists to guarantee.
    ::testing::AssertionResult granted_as(GrantRef ref, DomId domid, std::uint32_t frame, bool readonly) const {
        const grant_entry_v1_t& e = entries.at(ref);
        const std::uint16_t want = static_cast<std::uint16_t>(GTF_permit_access | (readonly ? GTF_readonly : 0));
        if (e.flags != want || e.domid != domid || e.frame != frame) {
            return ::testing::AssertionFailure() << "ref " << ref << ": flags " << e.flags << " domid " << e.domid
                                                 << " frame " << e.frame;
        }
        return ::testing::AssertionSuccess();
    }

    bool reserved_untouched() const {
        for (GrantRef r = 0; r < GNTTAB_NR_RESERVED_ENTRIES; ++r) {
            const auto& a = entries[r];
            const auto& b = reserved_before[r];
            if (a.flags != b.flags || a.domid != b.domid || a.frame != b.frame) return false;
        }
        return true;
    }

    std::vector<grant_entry_v1_t> entries;
    std::vector<std::uint32_t> meta;
    std::vector<grant_entry_v1_t> reserved_before;
};

class GrantTableTest : public ::testing::Test {
protected:
    FakeXen xen;
    GrantTable table{xen.frames(), xen.bookkeeping()};
};

TEST_F(GrantTableTest, GrantWritesDomidFrameAndFlags) {
    auto rw = table.grant(backend, 0x12345, false);
    ASSERT_TRUE(rw.ok());
    EXPECT_TRUE(xen.granted_as(*rw, backend, 0x12345, false));
    auto ro = table.grant(3, 0xFFFFFFFF, true);
    ASSERT_TRUE(ro.ok());
    EXPECT_TRUE(xen.granted_as(*ro, 3, 0xFFFFFFFF, true));
    EXPECT_TRUE(xen.map(*rw, backend, true));
    EXPECT_FALSE(xen.map(*ro, 3, true));  // read-only means read-only to Xen too
    EXPECT_TRUE(xen.map(*ro, 3, false));
    EXPECT_EQ(table.stats().grants, 2u);
    EXPECT_EQ(table.stats().in_use, 2u);
}

TEST_F(GrantTableTest, ReservedRefsAreNeverHandedOutNorTouched) {
    std::set<GrantRef> seen;
    for (;;) {
        auto r = table.grant(backend, 0x100, false);
        if (!r.ok()) {
            EXPECT_EQ(r.error(), Error::no_memory);
            break;
        }
        EXPECT_GE(*r, GrantTable::first_ref);
        EXPECT_LT(*r, grant_entries_per_frame);
        EXPECT_TRUE(seen.insert(*r).second) << "ref " << *r << " handed out twice";
    }
    EXPECT_EQ(seen.size(), grant_entries_per_frame - GNTTAB_NR_RESERVED_ENTRIES);
    EXPECT_EQ(table.stats().capacity, grant_entries_per_frame - GNTTAB_NR_RESERVED_ENTRIES);
    EXPECT_EQ(table.stats().in_use, seen.size());
    EXPECT_TRUE(xen.reserved_untouched());
    for (GrantRef r = 0; r < GrantTable::first_ref; ++r) {
        EXPECT_EQ(table.revoke(r).error(), Error::invalid_argument);
    }
    EXPECT_TRUE(xen.reserved_untouched());
}

TEST_F(GrantTableTest, ExhaustionRecoversAfterRevoke) {
    std::vector<GrantRef> refs;
    while (auto r = table.grant(backend, 0x200, false)) refs.push_back(*r);
    EXPECT_EQ(table.grant(backend, 0x200, false).error(), Error::no_memory);
    ASSERT_TRUE(table.revoke(refs[17]).ok());
    auto again = table.grant(backend, 0x201, true);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, refs[17]);  // the only free one
    EXPECT_TRUE(xen.granted_as(*again, backend, 0x201, true));
}

TEST_F(GrantTableTest, RejectsWhatV1CannotExpress) {
    EXPECT_EQ(table.grant(backend, 0x1'0000'0000ull, false).error(), Error::invalid_argument);
    EXPECT_EQ(table.grant(DOMID_SELF, 0x10, false).error(), Error::invalid_argument);
    EXPECT_EQ(table.grant(max_backend_domid + 1, 0x10, false).error(), Error::invalid_argument);
    EXPECT_TRUE(table.grant(max_backend_domid, 0x10, false).ok());
    EXPECT_EQ(table.stats().in_use, 1u);
}

TEST_F(GrantTableTest, RevokeClearsFlagsAndFreesTheRef) {
    auto r = table.grant(backend, 0x300, false);
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(table.revoke(*r).ok());
    EXPECT_EQ(xen.entries[*r].flags, 0);
    EXPECT_FALSE(xen.map(*r, backend, false));
    EXPECT_FALSE(table.allocated(*r));
    EXPECT_EQ(table.stats().in_use, 0u);
    EXPECT_EQ(table.revoke(*r).error(), Error::invalid_argument);  // twice
    EXPECT_EQ(table.revoke(100).error(), Error::invalid_argument);  // never granted
    EXPECT_EQ(table.revoke(grant_entries_per_frame).error(), Error::invalid_argument);
    EXPECT_EQ(table.revoke(~0u).error(), Error::invalid_argument);
}

TEST_F(GrantTableTest, RevokeOfARefTheBackendReadsIsBusy) {
    auto r = table.grant(backend, 0x400, false);
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(xen.map(*r, backend, false));
    EXPECT_EQ(table.revoke(*r).error(), Error::busy);
    EXPECT_TRUE(table.allocated(*r));
    EXPECT_EQ(xen.entries[*r].flags, GTF_permit_access | GTF_reading);  // untouched
    EXPECT_EQ(table.stats().busy_revokes, 1u);
    EXPECT_EQ(table.stats().last_busy_ref, *r);
    EXPECT_EQ(table.stats().in_use, 1u);
    xen.unmap(*r);
    EXPECT_TRUE(table.revoke(*r).ok());
    EXPECT_EQ(xen.entries[*r].flags, 0);
}

TEST_F(GrantTableTest, RevokeOfARefTheBackendWritesIsBusy) {
    auto a = table.grant(backend, 0x500, false);
    auto b = table.grant(backend, 0x501, false);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_TRUE(xen.map(*b, backend, true));
    EXPECT_TRUE(table.revoke(*a).ok());
    EXPECT_EQ(table.revoke(*b).error(), Error::busy);
    EXPECT_EQ(table.stats().last_busy_ref, *b);
    // Either bit alone means in use.
    xen.entries[*b].flags &= ~GTF_reading;
    EXPECT_EQ(table.revoke(*b).error(), Error::busy);
    EXPECT_EQ(table.stats().busy_revokes, 2u);
    xen.unmap(*b);
    EXPECT_TRUE(table.revoke(*b).ok());
}

TEST_F(GrantTableTest, FreedRefsGoToTheBackOfTheQueue) {
    auto a = table.grant(backend, 1, false);
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE(table.revoke(*a).ok());
    auto b = table.grant(backend, 2, false);
    ASSERT_TRUE(b.ok());
    EXPECT_NE(*a, *b);  // not reused at once
}

TEST_F(GrantTableTest, RegrantRepointsWithoutANewRef) {
    auto r = table.grant(7, 0x600, true);
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(table.regrant(*r, 0x601).ok());
    EXPECT_TRUE(xen.granted_as(*r, 7, 0x601, true));  // same backend, same access
    EXPECT_EQ(table.stats().in_use, 1u);
    EXPECT_EQ(table.stats().grants, 1u);

    ASSERT_TRUE(xen.map(*r, 7, false));
    EXPECT_EQ(table.regrant(*r, 0x602).error(), Error::busy);
    EXPECT_EQ(xen.entries[*r].frame, 0x601u);  // nothing changed under the backend
    EXPECT_EQ(table.stats().busy_revokes, 1u);
    xen.unmap(*r);
    ASSERT_TRUE(table.regrant(*r, 0x602).ok());
    EXPECT_TRUE(xen.granted_as(*r, 7, 0x602, true));

    EXPECT_EQ(table.regrant(*r, 0x1'0000'0000ull).error(), Error::invalid_argument);
    EXPECT_EQ(table.regrant(200, 0x1).error(), Error::invalid_argument);  // not granted
    EXPECT_EQ(table.regrant(1, 0x1).error(), Error::invalid_argument);    // reserved
    EXPECT_TRUE(xen.reserved_untouched());
}

TEST_F(GrantTableTest, HandleRevokesOnDestruction) {
    GrantRef ref = 0;
    {
        auto g = Grant::create(table, backend, 0x700, false);
        ASSERT_TRUE(g.ok());
        ref = g->ref();
        EXPECT_TRUE(xen.granted_as(ref, backend, 0x700, false));
        Grant moved = std::move(*g);
        EXPECT_FALSE(g->valid());
        EXPECT_TRUE(moved.valid());
        EXPECT_EQ(moved.ref(), ref);
        ASSERT_TRUE(moved.regrant(0x701).ok());
        EXPECT_TRUE(xen.granted_as(ref, backend, 0x701, false));
    }
    EXPECT_EQ(xen.entries[ref].flags, 0);
    EXPECT_FALSE(table.allocated(ref));
    EXPECT_EQ(table.stats().in_use, 0u);

    // Assignment revokes what the target held.
    auto a = Grant::create(table, backend, 0x710, false);
    auto b = Grant::create(table, backend, 0x711, false);
    ASSERT_TRUE(a.ok() && b.ok());
    const GrantRef ra = a->ref();
    *a = std::move(*b);
    EXPECT_EQ(xen.entries[ra].flags, 0);
    EXPECT_EQ(table.stats().in_use, 1u);
}

TEST_F(GrantTableTest, HandleLeaksABusyRefInsteadOfReusingIt) {
    GrantRef ref = 0;
    {
        auto g = Grant::create(table, backend, 0x800, false);
        ASSERT_TRUE(g.ok());
        ref = g->ref();
        ASSERT_TRUE(xen.map(ref, backend, true));
        EXPECT_EQ(g->revoke().error(), Error::busy);
        EXPECT_TRUE(g->valid());  // still ours: may retry
    }
    EXPECT_EQ(table.stats().leaked, 1u);
    EXPECT_EQ(table.stats().in_use, 1u);
    EXPECT_EQ(table.stats().last_busy_ref, ref);
    EXPECT_TRUE(table.allocated(ref));
    EXPECT_EQ(xen.entries[ref].flags, GTF_permit_access | GTF_reading | GTF_writing);
    EXPECT_EQ(table.revoke(ref).error(), Error::invalid_argument);  // leaked: nobody owns it

    // Never handed out again while leaked.
    std::vector<GrantRef> all;
    while (auto r = table.grant(backend, 0x801, false)) all.push_back(*r);
    EXPECT_EQ(std::count(all.begin(), all.end(), ref), 0);
    EXPECT_EQ(table.reclaim_leaked(), 0u);  // backend still has it

    for (GrantRef r : all) ASSERT_TRUE(table.revoke(r).ok());
    xen.unmap(ref);
    EXPECT_EQ(table.reclaim_leaked(), 1u);
    EXPECT_EQ(table.stats().leaked, 0u);
    EXPECT_EQ(table.stats().in_use, 0u);
    EXPECT_EQ(xen.entries[ref].flags, 0);
}

TEST_F(GrantTableTest, HandleRevokeEmptiesIt) {
    auto g = Grant::create(table, backend, 0x900, true);
    ASSERT_TRUE(g.ok());
    const GrantRef ref = g->ref();
    ASSERT_TRUE(g->revoke().ok());
    EXPECT_FALSE(g->valid());
    EXPECT_EQ(xen.entries[ref].flags, 0);
    EXPECT_EQ(g->revoke().error(), Error::invalid_argument);
    EXPECT_EQ(g->regrant(1).error(), Error::invalid_argument);
    EXPECT_EQ(Grant::create(table, backend, 0x1'0000'0000ull, false).error(), Error::invalid_argument);
}

TEST(GrantTableSize, UsesTheSmallerSpanAndCanBeEmpty) {
    std::vector<grant_entry_v1_t> entries(20);
    std::vector<std::uint32_t> meta(10);
    GrantTable t(entries, meta);
    EXPECT_EQ(t.stats().capacity, 2u);
    EXPECT_TRUE(t.grant(0, 1, false).ok());
    EXPECT_TRUE(t.grant(0, 1, false).ok());
    EXPECT_EQ(t.grant(0, 1, false).error(), Error::no_memory);

    std::vector<grant_entry_v1_t> few(GNTTAB_NR_RESERVED_ENTRIES);
    std::vector<std::uint32_t> few_meta(GNTTAB_NR_RESERVED_ENTRIES);
    GrantTable none(few, few_meta);
    EXPECT_EQ(none.stats().capacity, 0u);
    EXPECT_EQ(none.grant(0, 1, false).error(), Error::no_memory);
}

// ---- find_physmap_hole ----------------------------------------------------------------------

constexpr std::uint64_t MiB = 1ull << 20;
constexpr std::uint64_t min_addr = MiB;
constexpr std::uint64_t limit = 0xFEC0'0000;
constexpr std::uint32_t ram = 1, reserved = 2;

TEST(PhysmapHole, PreferredWhenFree) {
    const MemRegion map[] = {{0, 0x9F000, ram}, {MiB, 255 * MiB, ram}, {0xFC00'0000, 0x400'0000, reserved}};
    EXPECT_EQ(find_physmap_hole(map, 8 * 4096, 0xF000'0000, min_addr, limit), 0xF000'0000u);
}

TEST(PhysmapHole, SearchesWhenPreferredOverlapsRam) {
    // RAM up to 0xF0010000: the preferred range is taken; the highest free range lies right
    // under the reserved region.
    const MemRegion map[] = {{MiB, 0xF001'0000 - MiB, ram}, {0xFC00'0000, 0x400'0000, reserved}};
    auto h = find_physmap_hole(map, 8 * 4096, 0xF000'0000, min_addr, limit);
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(*h, 0xFC00'0000u - 8 * 4096);
}

TEST(PhysmapHole, RespectsTheLimitAndEveryRegionType) {
    // Everything from 2 MiB up is taken except a gap [0x8000'0000, 0x8001'0000).
    const MemRegion map[] = {{2 * MiB, 0x8000'0000 - 2 * MiB, ram},
                             {0x8001'0000, limit - 0x8001'0000, reserved}};
    // Fits in the gap (16 pages): chosen over the low range [1 MiB, 2 MiB) as it is higher.
    EXPECT_EQ(find_physmap_hole(map, 16 * 4096, 0xF000'0000, min_addr, limit), 0x8000'0000u);
    // 17 pages fit only below 2 MiB.
    EXPECT_EQ(find_physmap_hole(map, 17 * 4096, 0xF000'0000, min_addr, limit), 2 * MiB - 17 * 4096);
    // 257 pages fit nowhere.
    EXPECT_EQ(find_physmap_hole(map, 257 * 4096, 0xF000'0000, min_addr, limit), std::nullopt);
}

TEST(PhysmapHole, RoundsUpAndAligns) {
    const MemRegion map[] = {{MiB, 0xF000'0000 - MiB + 1, ram}};  // ends one byte into the page
    auto h = find_physmap_hole(map, 4096 + 1, 0xF000'0000, min_addr, limit);
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(*h % 4096, 0u);
    EXPECT_EQ(*h, limit - 2 * 4096);
    // Misaligned preferred address is not taken as is.
    auto m = find_physmap_hole({}, 4096, 0xF000'0010, min_addr, limit);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(*m, limit - 4096);
}

TEST(PhysmapHole, DegenerateInputs) {
    EXPECT_EQ(find_physmap_hole({}, 0, 0xF000'0000, min_addr, limit), std::nullopt);
    EXPECT_EQ(find_physmap_hole({}, 4096, 0xF000'0000, limit, min_addr), std::nullopt);
    EXPECT_EQ(find_physmap_hole({}, ~0ull, 0xF000'0000, min_addr, limit), std::nullopt);
    // A region that claims to run past the end of the address space blocks everything above it.
    const MemRegion huge[] = {{0x8000'0000, ~0ull, reserved}};
    EXPECT_EQ(find_physmap_hole(huge, 4096, 0xF000'0000, min_addr, limit), 0x8000'0000u - 4096);
}

}  // namespace
}  // namespace keel::xen

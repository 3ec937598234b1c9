// Grant table v1 (xen/grant_table.h): how a frontend lets its backend map or copy one of its
// pages. The table is an array of `grant_entry_v1_t` in frames Xen shares with us; a grant
// reference is an index into it.
//
// The core (GrantTable, Grant, find_physmap_hole) is pure: host tests run it over entries in
// ordinary memory and play Xen by setting GTF_reading / GTF_writing themselves. The guest part
// (platform-xen/guest/grant_table_xen.cc) maps the real frames and hands out one GrantTable.
//
// Context: one vCPU, event loop only. Xen writes the GTF_reading/GTF_writing bits of an entry
// concurrently with us (on behalf of the backend), so every access to an entry's fields is an
// atomic access; our own bookkeeping lives outside the shared frames.
#pragma once

#include <stdint.h>  // Xen's headers expect the fixed-width types first

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include <xen/xen.h>
#include <xen/grant_table.h>

#include "keel/result.h"
#include "keel/xen/start_info.h"

namespace keel::xen {

using GrantRef = std::uint32_t;  ///< grant_ref_t
using DomId = std::uint16_t;     ///< domid_t, as a plain number

// The layout Xen reads (grant_table.h, struct grant_entry_v1).
static_assert(sizeof(grant_entry_v1_t) == 8);
static_assert(offsetof(grant_entry_v1_t, flags) == 0);
static_assert(offsetof(grant_entry_v1_t, domid) == 2);
static_assert(offsetof(grant_entry_v1_t, frame) == 4);
static_assert(sizeof(grant_ref_t) == sizeof(GrantRef));
static_assert(sizeof(domid_t) == sizeof(DomId));

/// v1 entries in one 4 KiB grant frame.
inline constexpr std::size_t grant_entries_per_frame = 4096 / sizeof(grant_entry_v1_t);
/// The highest domid a backend can have (xen.h: DOMID_FIRST_RESERVED is 0x7FF0).
inline constexpr DomId max_backend_domid = DOMID_FIRST_RESERVED - 1;

/// The grant frame (GFN) of a page in the guest: PVH keel identity-maps guest-physical memory,
/// so it is the address >> 12; a classic PV guest grants machine frames, the p2m's entry for
/// that pfn. Guest-only (grant_table_xen.cc); host tests make up their GFNs.
std::uint64_t gfn_of(const void* page);

/// Allocator and writer of v1 grant entries.
///
/// References 0 .. GNTTAB_NR_RESERVED_ENTRIES-1 belong to the toolstack (console, xenstore) and
/// are never handed out or touched. Free references are handed out FIFO: a revoked reference
/// goes to the back of the queue, so a backend that wrongly keeps using a stale reference is
/// unlikely to find someone else's fresh grant behind it soon.
///
/// A revoke that finds the entry still in use by the backend (GTF_reading / GTF_writing set by
/// Xen) fails with Error::busy and leaves the entry granted: the page must not be reused while
/// the backend can still write it. Such failures are counted and the last such reference is
/// kept in Stats. A reference whose owner gave up on it (Grant's destructor, release_or_leak)
/// is *leaked*: allocated, never handed out again, counted, until reclaim_leaked() finds the
/// backend done with it.
///
/// Not copyable or movable: Grant handles point at it.
class GrantTable {
public:
    /// `entries`: the mapped grant frames (grant_entries_per_frame per frame). `meta`: our own
    /// bookkeeping, one word per entry (not shared with anyone). The table uses
    /// min(entries.size(), meta.size(), 2^29 - 1) entries. Entries are not written until granted.
    GrantTable(std::span<grant_entry_v1_t> entries, std::span<std::uint32_t> meta);
    GrantTable(const GrantTable&) = delete;
    GrantTable& operator=(const GrantTable&) = delete;

    /// First reference ever handed out (grant_table.h: GNTTAB_NR_RESERVED_ENTRIES).
    static constexpr GrantRef first_ref = GNTTAB_NR_RESERVED_ENTRIES;

    /// Let `backend` map (or copy) frame `gfn`, read-only if `readonly`. Writes domid and frame,
    /// a write barrier, then the flags (grant_table.h, "Introducing a valid entry").
    /// Error::invalid_argument: gfn does not fit v1's 32-bit frame, or backend > max_backend_domid.
    /// Error::no_memory: no free reference.
    Result<GrantRef> grant(DomId backend, std::uint64_t gfn, bool readonly);

    /// End the grant and free the reference, if the backend is not using it: a cmpxchg loop on
    /// the 16-bit flags (grant_table.h, "Invalidating an unused GTF_permit_access entry").
    /// Error::busy: GTF_reading/GTF_writing set; the entry stays granted and the reference stays
    /// allocated (counted in busy_revokes, remembered as last_busy_ref). Retry later.
    /// Error::invalid_argument: not a reference this table handed out (or already leaked).
    Result<void> revoke(GrantRef ref);

    /// Point an allocated reference at another frame (same backend, same access), without a
    /// new reference: used to grant each ring slot once and re-point it per buffer
    /// (style.md #6). Ends the old grant first, like revoke(): Error::busy (and counted) if the
    /// backend still uses it, and then nothing changed. Error::invalid_argument as for grant()
    /// and revoke().
    Result<void> regrant(GrantRef ref, std::uint64_t gfn);

    /// revoke(), and if that fails with busy, mark the reference leaked instead of freeing it.
    void release_or_leak(GrantRef ref);

    /// Retry every leaked reference; those the backend has let go of are freed. Returns how
    /// many were freed. O(capacity).
    std::size_t reclaim_leaked();

    struct Stats {
        std::size_t capacity;        ///< references that can be handed out (reserved ones excluded)
        std::size_t in_use;          ///< allocated: granted or leaked
        std::size_t leaked;          ///< given up while the backend still used them
        std::uint64_t grants;        ///< successful grant() calls
        std::uint64_t busy_revokes;  ///< revoke/regrant attempts refused: entry in use
        GrantRef last_busy_ref;      ///< the reference of the last busy revoke (0: none yet)
    };
    Stats stats() const { return stats_; }

    /// True if `ref` is currently allocated (granted or leaked) by this table.
    bool allocated(GrantRef ref) const;

private:
    // meta word: a state in the top bits; while free, the next free reference in the rest.
    static constexpr std::uint32_t st_granted = 1u << 31;
    static constexpr std::uint32_t st_leaked = 1u << 30;
    static constexpr std::uint32_t st_readonly = 1u << 29;
    static constexpr std::uint32_t link_mask = st_readonly - 1;
    static constexpr std::uint32_t no_link = link_mask;  // end of the free list

    bool valid_ref(GrantRef ref) const { return ref >= first_ref && ref < count_; }
    void push_free(GrantRef ref);
    /// Clear the entry's flags if the backend is not using it.
    bool end_access(GrantRef ref);
    void publish(GrantRef ref, DomId backend, std::uint32_t frame, bool readonly);

    grant_entry_v1_t* entries_;
    std::uint32_t* meta_;
    std::uint32_t count_;
    std::uint32_t free_head_ = no_link;
    std::uint32_t free_tail_ = no_link;
    Stats stats_{};
};

/// A move-only grant: revokes its reference when destroyed or reset. If the backend still uses
/// the page at that point, the reference is leaked rather than reused (GrantTable::
/// release_or_leak); the owner must then also keep the page itself out of circulation or
/// accept that the backend may still write it (a misbehaving backend). Context: loop only.
class Grant {
public:
    static Result<Grant> create(GrantTable& table, DomId backend, std::uint64_t gfn, bool readonly);

    Grant() = default;
    Grant(Grant&& o) noexcept : table_(o.table_), ref_(o.ref_) { o.table_ = nullptr; }
    Grant& operator=(Grant&& o) noexcept;
    Grant(const Grant&) = delete;
    Grant& operator=(const Grant&) = delete;
    ~Grant() { reset(); }

    bool valid() const { return table_ != nullptr; }
    /// The reference to hand to the backend (meaningless unless valid()).
    GrantRef ref() const { return ref_; }

    /// GrantTable::regrant on this reference.
    Result<void> regrant(std::uint64_t gfn);
    /// Revoke now. On success the handle becomes empty; on Error::busy it still owns the
    /// (still granted) reference, so the caller may retry or drop it (then it leaks).
    Result<void> revoke();
    /// Revoke, or leak if busy; the handle becomes empty.
    void reset();

private:
    Grant(GrantTable& t, GrantRef r) : table_(&t), ref_(r) {}
    GrantTable* table_ = nullptr;
    GrantRef ref_ = 0;
};

/// Where to map `bytes` of grant frames into guest-physical space: an address that is page
/// aligned, in [min, limit) with its whole range, and overlaps no region of the memory map (of
/// any type: RAM, reserved, ACPI). `preferred` if it qualifies, else the highest such address.
/// nullopt if there is none.
std::optional<std::uint64_t> find_physmap_hole(std::span<const MemRegion> regions, std::uint64_t bytes,
                                               std::uint64_t preferred, std::uint64_t min, std::uint64_t limit);

/// The guest's grant table: on first use, maps `grant_frames_wanted` frames (fewer if Xen's
/// max_nr_frames is smaller) into a hole of the memory map below 4 GiB (0xF0000000 if free) with
/// XENMEM_add_to_physmap / XENMAPSPACE_grant_table. If Xen refuses, crashes the domain with a
/// message saying which step failed. Guest-only (platform-xen/guest/grant_table_xen.cc).
GrantTable& grant_table();
/// The same initialisation, reporting failure as a value (and logging it on the early
/// console) instead of crashing. Idempotent.
Result<void> init_grant_table();

/// Grant frames the guest maps: 8 frames = 4096 references (4088 usable), enough for a
/// netfront and a blkfront with full rings.
inline constexpr unsigned grant_frames_wanted = 8;

}  // namespace keel::xen

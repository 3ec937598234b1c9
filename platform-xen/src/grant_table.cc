// Grant table v1: reference allocation, the entry protocol of xen/grant_table.h, and the
// choice of guest-physical addresses for the grant frames. Pure: no hypercalls here.
#include "keel/xen/grant_table.h"

namespace keel::xen {

namespace {

constexpr std::uint64_t page_size = 4096;
constexpr std::uint16_t in_use_flags = GTF_reading | GTF_writing;

}  // namespace

GrantTable::GrantTable(std::span<grant_entry_v1_t> entries, std::span<std::uint32_t> meta)
    : entries_(entries.data()), meta_(meta.data()) {
    std::size_t n = entries.size() < meta.size() ? entries.size() : meta.size();
    if (n > no_link) n = no_link;
    count_ = static_cast<std::uint32_t>(n);
    for (GrantRef r = first_ref; r < count_; ++r) push_free(r);
    stats_.capacity = count_ > first_ref ? count_ - first_ref : 0;
}

void GrantTable::push_free(GrantRef ref) {
    meta_[ref] = no_link;
    if (free_tail_ == no_link) {
        free_head_ = ref;
    } else {
        meta_[free_tail_] = ref;
    }
    free_tail_ = ref;
}

void GrantTable::publish(GrantRef ref, DomId backend, std::uint32_t frame, bool readonly) {
    grant_entry_v1_t& e = entries_[ref];
    // grant_table.h, "Introducing a valid entry into the grant table": 1. domid, 2. frame,
    // 3. write barrier, 4. flags. Xen looks at an entry only once its flags say it is valid, so
    // it must never see the new flags with the old domid or frame.
    __atomic_store_n(&e.domid, backend, __ATOMIC_RELAXED);
    __atomic_store_n(&e.frame, frame, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    const std::uint16_t flags = static_cast<std::uint16_t>(GTF_permit_access | (readonly ? GTF_readonly : 0u));
    __atomic_store_n(&e.flags, flags, __ATOMIC_RELAXED);
}

bool GrantTable::end_access(GrantRef ref) {
    grant_entry_v1_t& e = entries_[ref];
    // grant_table.h, "Invalidating an unused GTF_permit_access entry": read the flags, check
    // that Xen does not have the frame mapped or in a copy for the backend (GTF_reading /
    // GTF_writing), and clear them with a cmpxchg, which fails if Xen set either bit meanwhile.
    std::uint16_t flags = __atomic_load_n(&e.flags, __ATOMIC_ACQUIRE);
    for (;;) {
        if ((flags & in_use_flags) != 0) return false;
        if (__atomic_compare_exchange_n(&e.flags, &flags, std::uint16_t{0}, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_ACQUIRE)) {
            return true;
        }
        // `flags` now holds what Xen left there: look again.
    }
}

Result<GrantRef> GrantTable::grant(DomId backend, std::uint64_t gfn, bool readonly) {
    if (backend > max_backend_domid) return Error::invalid_argument;
    if (gfn > 0xFFFF'FFFFull) return Error::invalid_argument;  // v1 frame is 32 bits
    if (free_head_ == no_link) return Error::no_memory;
    const GrantRef ref = free_head_;
    free_head_ = meta_[ref] & link_mask;
    if (free_head_ == no_link) free_tail_ = no_link;
    publish(ref, backend, static_cast<std::uint32_t>(gfn), readonly);
    meta_[ref] = st_granted | (readonly ? st_readonly : 0u);
    ++stats_.in_use;
    ++stats_.grants;
    return ref;
}

bool GrantTable::allocated(GrantRef ref) const { return valid_ref(ref) && (meta_[ref] & st_granted) != 0; }

Result<void> GrantTable::revoke(GrantRef ref) {
    if (!valid_ref(ref) || (meta_[ref] & (st_granted | st_leaked)) != st_granted) return Error::invalid_argument;
    if (!end_access(ref)) {
        ++stats_.busy_revokes;
        stats_.last_busy_ref = ref;
        return Error::busy;
    }
    push_free(ref);
    --stats_.in_use;
    return {};
}

Result<void> GrantTable::regrant(GrantRef ref, std::uint64_t gfn) {
    if (gfn > 0xFFFF'FFFFull) return Error::invalid_argument;
    if (!valid_ref(ref) || (meta_[ref] & (st_granted | st_leaked)) != st_granted) return Error::invalid_argument;
    if (!end_access(ref)) {
        ++stats_.busy_revokes;
        stats_.last_busy_ref = ref;
        return Error::busy;
    }
    // Only we write domid (Xen writes flags alone), so the value read back is the one we wrote.
    const DomId backend = __atomic_load_n(&entries_[ref].domid, __ATOMIC_RELAXED);
    publish(ref, backend, static_cast<std::uint32_t>(gfn), (meta_[ref] & st_readonly) != 0);
    return {};
}

void GrantTable::release_or_leak(GrantRef ref) {
    if (revoke(ref).error() != Error::busy) return;
    meta_[ref] |= st_leaked;
    ++stats_.leaked;
}

std::size_t GrantTable::reclaim_leaked() {
    std::size_t freed = 0;
    for (GrantRef r = first_ref; r < count_ && stats_.leaked > 0; ++r) {
        if ((meta_[r] & st_leaked) == 0 || !end_access(r)) continue;
        push_free(r);
        --stats_.leaked;
        --stats_.in_use;
        ++freed;
    }
    return freed;
}

// ---- Grant ---------------------------------------------------------------------------------

Result<Grant> Grant::create(GrantTable& table, DomId backend, std::uint64_t gfn, bool readonly) {
    const GrantRef ref = TRY(table.grant(backend, gfn, readonly));
    return Grant(table, ref);
}

Grant& Grant::operator=(Grant&& o) noexcept {
    if (this != &o) {
        reset();
        table_ = o.table_;
        ref_ = o.ref_;
        o.table_ = nullptr;
    }
    return *this;
}

Result<void> Grant::regrant(std::uint64_t gfn) {
    if (table_ == nullptr) return Error::invalid_argument;
    return table_->regrant(ref_, gfn);
}

Result<void> Grant::revoke() {
    if (table_ == nullptr) return Error::invalid_argument;
    TRY_VOID(table_->revoke(ref_));
    table_ = nullptr;
    return {};
}

void Grant::reset() {
    if (table_ == nullptr) return;
    table_->release_or_leak(ref_);
    table_ = nullptr;
}

// ---- placement -----------------------------------------------------------------------------

std::optional<std::uint64_t> find_physmap_hole(std::span<const MemRegion> regions, std::uint64_t bytes,
                                               std::uint64_t preferred, std::uint64_t min, std::uint64_t limit) {
    if (bytes == 0 || bytes > ~0ull - (page_size - 1) || limit <= min) return std::nullopt;
    bytes = (bytes + page_size - 1) & ~(page_size - 1);

    auto fits = [&](std::uint64_t base) {
        if (base % page_size != 0 || base < min || base > limit || limit - base < bytes) return false;
        const std::uint64_t end = base + bytes;
        for (const MemRegion& r : regions) {
            if (r.length == 0) continue;
            const std::uint64_t r_end = r.length > ~0ull - r.base ? ~0ull : r.base + r.length;
            if (base < r_end && r.base < end) return false;
        }
        return true;
    };
    if (fits(preferred)) return preferred;

    // The highest fitting base ends just below some region's start or at the limit: try those.
    std::optional<std::uint64_t> best;
    auto consider = [&](std::uint64_t top) {
        if (top > limit) top = limit;
        if (top < bytes) return;
        const std::uint64_t base = (top - bytes) & ~(page_size - 1);
        if (fits(base) && (!best || base > *best)) best = base;
    };
    consider(limit);
    for (const MemRegion& r : regions) consider(r.base);
    return best;
}

}  // namespace keel::xen

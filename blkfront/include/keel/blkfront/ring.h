// The front half of the blkif shared ring (io/blkif.h over io/ring.h), over 2^order
// contiguous pages: io/blkif.h's multi-page ring ("ring-page-order", "ring-ref%u") is one ring
// whose entries run on across the pages. Header-only and pure: host tests run it over ordinary
// memory against a back end written with Xen's own macros.
//
// What the macros leave to the caller is done here: the indices we own (req_prod_pvt,
// rsp_cons, the req_prod we last pushed) live in this object and are never read back from the
// shared pages, every response is copied out before it is looked at, and a rsp_prod that claims
// responses to requests we never made is reported instead of followed.
//
// Context: event loop only. The back end writes rsp_prod, req_event and the responses
// concurrently; everything on the shared pages is accessed with volatile or atomic accesses.
#pragma once

#include <stdint.h>  // Xen's headers expect the fixed-width types first

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <xen/io/blkif.h>

#include "keel/result.h"

namespace keel::blkfront {

inline constexpr std::size_t page_size = 4096;
/// The largest ring we ever negotiate: 2^4 = 16 pages, 512 requests in flight (far more than
/// the data pool can fill; a larger ring would only cost grant references).
inline constexpr unsigned max_ring_page_order = 4;

// The layout both ends compute their ring size from (io/ring.h, __CONST_RING_SIZE).
static_assert(sizeof(blkif_request_t) == 112 && sizeof(blkif_response_t) == 16);
static_assert(sizeof(blkif_request_indirect_t) == 64 && sizeof(blkif_request_discard_t) == 32);
static_assert(sizeof(union blkif_sring_entry) == 112);
static_assert(offsetof(blkif_sring, ring) == 64);
static_assert(sizeof(struct blkif_request_segment) == 8);

namespace detail {

/// Copy `T` out of shared memory with volatile 32-bit reads, so the compiler can neither fetch
/// a field twice nor fetch it later from the page instead of the copy (io/ring.h,
/// RING_COPY_RESPONSE: processing is done on a local copy the other end cannot modify).
template <typename T>
T ring_copy_in(const volatile void* src) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) % 4 == 0);
    std::uint32_t words[sizeof(T) / 4];
    const volatile std::uint32_t* s = static_cast<const volatile std::uint32_t*>(src);
    for (std::size_t i = 0; i < sizeof(T) / 4; ++i) words[i] = s[i];
    T out;
    std::memcpy(&out, words, sizeof(T));
    return out;
}

}  // namespace detail

/// io/ring.h, __CONST_RING_SIZE over 2^order pages: the entries that fit after the header,
/// rounded down to a power of two. 32 for one page, 512 for 16.
constexpr RING_IDX ring_slots_for(unsigned order) {
    return static_cast<RING_IDX>(std::bit_floor(((page_size << order) - offsetof(blkif_sring, ring)) /
                                                sizeof(union blkif_sring_entry)));
}
static_assert(ring_slots_for(0) == 32 && ring_slots_for(max_ring_page_order) == 512);

class BlkRing {
public:
    using Response = blkif_response_t;
    static constexpr std::size_t header = offsetof(blkif_sring, ring);
    static constexpr std::size_t entry_size = sizeof(union blkif_sring_entry);
    static constexpr RING_IDX slots_for(unsigned order) { return ring_slots_for(order); }
    static constexpr RING_IDX max_slots = ring_slots_for(max_ring_page_order);

    BlkRing() = default;
    BlkRing(const BlkRing&) = delete;
    BlkRing& operator=(const BlkRing&) = delete;

    /// Take `pages` (2^order pages, contiguous, page aligned, not yet shared) as a fresh ring:
    /// io/ring.h, XEN_FRONT_RING_INIT (SHARED_RING_INIT + FRONT_RING_INIT): both producers at
    /// 0, both event indices at 1, everything else zeroed.
    void attach(std::byte* pages, unsigned order) {
        std::memset(pages, 0, page_size << order);
        sring_ = reinterpret_cast<volatile blkif_sring*>(pages);
        sring_->req_event = 1;
        sring_->rsp_event = 1;
        size_ = slots_for(order);
        req_prod_pvt_ = rsp_cons_ = pushed_ = 0;
    }
    void detach() { sring_ = nullptr; }
    bool attached() const { return sring_ != nullptr; }

    RING_IDX size() const { return size_; }
    /// Requests made whose responses we have not consumed.
    RING_IDX outstanding() const { return req_prod_pvt_ - rsp_cons_; }
    RING_IDX free_slots() const { return size_ - outstanding(); }
    RING_IDX req_prod_pvt() const { return req_prod_pvt_; }
    RING_IDX rsp_cons() const { return rsp_cons_; }

    /// Put a request (blkif_request, blkif_request_indirect or blkif_request_discard: each is
    /// a view of the same 112-byte entry) in the next private slot; the rest of the entry is
    /// zeroed. Seen by the back end only after push(). Caller checked free_slots().
    template <typename T>
    void put(const T& req) {
        static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= entry_size && sizeof(T) % 4 == 0);
        std::uint32_t words[entry_size / 4] = {};
        std::memcpy(words, &req, sizeof(T));
        volatile std::uint32_t* d = reinterpret_cast<volatile std::uint32_t*>(entry(req_prod_pvt_));
        for (std::size_t i = 0; i < entry_size / 4; ++i) d[i] = words[i];
        ++req_prod_pvt_;
    }

    /// io/ring.h, RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: publish the private requests (release
    /// store of req_prod), full barrier, then notify only if req_event lies in the range just
    /// published (io/blkif.h: "sending a notification can be made conditional on req_event").
    [[nodiscard]] bool push() {
        const RING_IDX old = pushed_;
        const RING_IDX now = req_prod_pvt_;
        if (old == now) return false;
        __atomic_store_n(&sring_->req_prod, now, __ATOMIC_RELEASE);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        pushed_ = now;
        const RING_IDX event = __atomic_load_n(&sring_->req_event, __ATOMIC_RELAXED);
        return static_cast<RING_IDX>(now - event) < static_cast<RING_IDX>(now - old);
    }

    /// Responses waiting (rsp_prod read with acquire). Error::protocol if rsp_prod claims more
    /// responses than we have outstanding requests (io/ring.h, RING_RESPONSE_PROD_OVERFLOW,
    /// tightened to the requests actually made).
    Result<RING_IDX> unconsumed() const {
        const RING_IDX prod = __atomic_load_n(&sring_->rsp_prod, __ATOMIC_ACQUIRE);
        const RING_IDX avail = prod - rsp_cons_;
        if (avail > outstanding()) return Error::protocol;
        return avail;
    }

    /// Copy of the response `i` slots past rsp_cons (i < unconsumed()).
    Response response(RING_IDX i) const { return detail::ring_copy_in<Response>(&entry(rsp_cons_ + i)->rsp); }
    void consume(RING_IDX n) { rsp_cons_ += n; }

    /// io/ring.h, RING_FINAL_CHECK_FOR_RESPONSES (io/blkif.h: "Frontends must set rsp_event
    /// appropriately"): with nothing left, ask for an event on the very next response, full
    /// barrier, look again. True if there is more work.
    bool final_check() {
        if (more()) return true;
        __atomic_store_n(&sring_->rsp_event, rsp_cons_ + 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        return more();
    }

private:
    bool more() const { return __atomic_load_n(&sring_->rsp_prod, __ATOMIC_ACQUIRE) != rsp_cons_; }
    // Entries by pointer arithmetic from the header: `ring[1]` is a variable-length array that
    // runs on across the ring's pages.
    volatile union blkif_sring_entry* entry(RING_IDX idx) const {
        auto* base = reinterpret_cast<volatile unsigned char*>(sring_) + header;
        return reinterpret_cast<volatile union blkif_sring_entry*>(base) + (idx & (size_ - 1));
    }

    volatile blkif_sring* sring_ = nullptr;
    RING_IDX size_ = 0;
    RING_IDX req_prod_pvt_ = 0;
    RING_IDX rsp_cons_ = 0;
    RING_IDX pushed_ = 0;  // the req_prod we last published
};

}  // namespace keel::blkfront

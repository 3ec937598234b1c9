// The front half of a Xen shared ring (io/ring.h), for every PV frontend: a template on the ring
// type DEFINE_RING_TYPES makes (netif_tx_sring, netif_rx_sring, blkif_sring, ...) over one page
// or, with MaxOrder > 0, over 2^order contiguous pages (io/blkif.h's multi-page ring,
// "ring-page-order" / "ring-ref%u": one ring whose entries run on across the pages).
// Header-only and pure: host tests run it over ordinary memory against a back end written with
// Xen's own macros.
//
//   using TxRing = xenbus::FrontRing<netif_tx_sring>;            // one page, size known statically
//   using BlkRing = xenbus::FrontRing<blkif_sring, 4>;           // up to 16 pages
//   ring.attach(pages, order);  ring.put(req);  if (ring.push()) channel.notify();
//   Result<RING_IDX> n = ring.unconsumed();  auto rsp = ring.response(0);  ring.consume(1);
//
// What the macros leave to the caller is done here: the indices we own (req_prod_pvt, rsp_cons,
// the req_prod we last pushed) live in this object and are never read back from the shared
// page, every response is copied out of shared memory before it is looked at, and a rsp_prod
// that claims responses to requests we never made is reported instead of followed. What a
// response *says* (ids, statuses, lengths) is the driver's to validate.
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
#include <utility>

#include <xen/io/ring.h>

#include "keel/result.h"

namespace keel::xenbus {

/// The page every ring and granted buffer is made of (x86: XEN_PAGE_SIZE).
inline constexpr std::size_t page_size = 4096;

namespace detail {

/// Copy `T` out of shared memory with volatile 32-bit reads, so the compiler can neither fetch
/// a field twice nor fetch it later from the page instead of the copy (io/ring.h,
/// RING_COPY_RESPONSE: "all processing is done on a local copy that cannot be modified by the
/// other end").
template <typename T>
T copy_in(const volatile void* src) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) % 4 == 0);
    std::uint32_t words[sizeof(T) / 4];
    const volatile std::uint32_t* s = static_cast<const volatile std::uint32_t*>(src);
    for (std::size_t i = 0; i < sizeof(T) / 4; ++i) words[i] = s[i];
    T out;
    std::memcpy(&out, words, sizeof(T));
    return out;
}

}  // namespace detail

template <typename Sring, unsigned MaxOrder = 0>
class FrontRing {
    using Entry = std::remove_cvref_t<decltype(std::declval<Sring&>().ring[0])>;
    static constexpr std::size_t header = offsetof(Sring, ring);

public:
    using Request = decltype(Entry::req);
    using Response = decltype(Entry::rsp);

    /// io/ring.h, __CONST_RING_SIZE over 2^order pages: as many entries as fit after the
    /// header, rounded down to a power of two.
    static constexpr RING_IDX slots_for(unsigned order) {
        return static_cast<RING_IDX>(std::bit_floor(((page_size << order) - header) / sizeof(Entry)));
    }
    /// The largest ring this type is attached to, 2^MaxOrder pages; for a one-page ring its
    /// size (a compile-time constant the driver sizes its tables by).
    static constexpr unsigned max_order = MaxOrder;
    static constexpr RING_IDX size = slots_for(MaxOrder);
    static_assert(slots_for(0) >= 2 && sizeof(Entry) % 4 == 0 && sizeof(Request) % 4 == 0);

    FrontRing() = default;
    FrontRing(const FrontRing&) = delete;
    FrontRing& operator=(const FrontRing&) = delete;

    /// Take `pages` (2^order pages, contiguous, page aligned, not yet shared) as a fresh ring:
    /// io/ring.h, XEN_FRONT_RING_INIT (SHARED_RING_INIT + FRONT_RING_INIT): both producers at
    /// 0, both event indices at 1, everything else zeroed.
    void attach(std::byte* pages, unsigned order = 0) {
        std::memset(pages, 0, page_size << order);
        sring_ = reinterpret_cast<volatile Sring*>(pages);
        sring_->req_event = 1;
        sring_->rsp_event = 1;
        req_prod_pvt_ = rsp_cons_ = pushed_ = 0;
        if constexpr (MaxOrder > 0) slots_ = slots_for(order);
    }
    /// Stop using the pages (they are no longer shared).
    void detach() { sring_ = nullptr; }
    bool attached() const { return sring_ != nullptr; }

    /// Entries in the attached ring (== size for a one-page ring).
    RING_IDX slots() const {
        if constexpr (MaxOrder == 0) {
            return size;
        } else {
            return slots_;
        }
    }
    /// Requests made whose responses we have not consumed.
    RING_IDX outstanding() const { return req_prod_pvt_ - rsp_cons_; }
    /// Slots free for new requests.
    RING_IDX free_slots() const { return slots() - outstanding(); }
    RING_IDX req_prod_pvt() const { return req_prod_pvt_; }
    RING_IDX rsp_cons() const { return rsp_cons_; }
    /// The ring slot of ring index `idx` (what a request id may name).
    RING_IDX slot(RING_IDX idx) const { return idx & (slots() - 1); }

    /// Put a request, or a layout that overlays one (netif_extra_info, blkif_request_indirect,
    /// blkif_request_discard), in the next private slot; the rest of the slot is zeroed. Seen by
    /// the back end only after push(). Written with volatile 32-bit stores (the slot is ours
    /// until pushed). Caller checked free_slots().
    template <typename T = Request>
    void put(const T& value) {
        static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= sizeof(Request) && sizeof(T) % 4 == 0);
        std::uint32_t words[sizeof(Request) / 4] = {};
        std::memcpy(words, &value, sizeof(T));
        auto* d = reinterpret_cast<volatile std::uint32_t*>(&entry(req_prod_pvt_)->req);
        for (std::size_t i = 0; i < sizeof(Request) / 4; ++i) d[i] = words[i];
        ++req_prod_pvt_;
    }

    /// io/ring.h, RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: publish the private requests (release
    /// store of req_prod), full barrier, then notify only if req_event lies in the range just
    /// published. The old req_prod is our own copy, never read back from the page.
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

    /// Responses waiting (rsp_prod read with acquire: the responses below it are visible).
    /// Error::protocol if rsp_prod claims more responses than we have outstanding requests
    /// (io/ring.h, RING_RESPONSE_PROD_OVERFLOW, tightened to the requests actually made).
    Result<RING_IDX> unconsumed() const {
        const RING_IDX prod = __atomic_load_n(&sring_->rsp_prod, __ATOMIC_ACQUIRE);
        const RING_IDX avail = prod - rsp_cons_;
        if (avail > outstanding()) return Error::protocol;
        return avail;
    }

    /// Copy of the response `i` slots past rsp_cons (i < unconsumed()).
    Response response(RING_IDX i) const { return detail::copy_in<Response>(&entry(rsp_cons_ + i)->rsp); }
    /// The same slot read as another layout (netif_extra_info overlays responses).
    template <typename T>
    T response_as(RING_IDX i) const {
        static_assert(sizeof(T) <= sizeof(Entry));
        return detail::copy_in<T>(entry(rsp_cons_ + i));
    }

    /// Mark `n` responses consumed (they were copied out).
    void consume(RING_IDX n) { rsp_cons_ += n; }

    /// io/ring.h, RING_FINAL_CHECK_FOR_RESPONSES: with nothing left to consume, ask for an event
    /// on the very next response (rsp_event = rsp_cons + 1), full barrier, and look again, so a
    /// response published meanwhile is not missed. True if there is more work.
    /// `seen`: responses already looked at but left on the ring (the start of a multi-slot frame
    /// whose rest has not arrived): the event is asked for the response after them.
    bool final_check(RING_IDX seen = 0) {
        if (more(seen)) return true;
        __atomic_store_n(&sring_->rsp_event, rsp_cons_ + seen + 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        return more(seen);
    }

private:
    bool more(RING_IDX seen) const {
        return __atomic_load_n(&sring_->rsp_prod, __ATOMIC_ACQUIRE) - rsp_cons_ != seen;
    }
    // Entries by pointer arithmetic from the header: `ring[1]` is a variable-length array that
    // runs on across the ring's pages.
    volatile Entry* entry(RING_IDX idx) const {
        auto* base = reinterpret_cast<volatile unsigned char*>(sring_) + header;
        return reinterpret_cast<volatile Entry*>(base) + slot(idx);
    }

    volatile Sring* sring_ = nullptr;
    RING_IDX req_prod_pvt_ = 0;
    RING_IDX rsp_cons_ = 0;
    RING_IDX pushed_ = 0;  // the req_prod we last published
    RING_IDX slots_ = slots_for(0);  // used only when MaxOrder > 0
};

}  // namespace keel::xenbus

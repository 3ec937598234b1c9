// The 2-level event channel scan (the "pending_sel" scheme described at struct vcpu_info and
// struct shared_info in xen/xen.h). Header-only so the upcall handler gets the callback inlined.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

#include <xen/xen.h>

namespace keel::xen {

/// Bits in one pending/mask word, and ports in the 2-level ABI (64 x 64 = 4096 on x86-64).
inline constexpr std::size_t evtchn_word_bits = sizeof(xen_ulong_t) * 8;
inline constexpr std::size_t evtchn_2l_ports = evtchn_word_bits * evtchn_word_bits;

namespace detail {
/// Clear `ready`'s bits of pending word `word` and call `on_port` for each (lowest first).
/// Clears only the bits about to be handled: Xen may set others meanwhile. Only the guest clears
/// bits, so every bit of `ready` is still set and is ours. Returns how many.
template <typename Fn>
std::size_t take_ports(volatile xen_ulong_t& pending_word, xen_ulong_t ready, std::size_t word, Fn& on_port) {
    if (ready == 0) return 0;
    xen_ulong_t taken = __atomic_fetch_and(&pending_word, ~ready, __ATOMIC_ACQ_REL) & ready;
    std::size_t n = 0;
    while (taken != 0) {
        const std::size_t bit = static_cast<std::size_t>(std::countr_zero(taken));
        taken &= taken - 1;
        on_port(static_cast<std::uint32_t>(word * evtchn_word_bits + bit));
        ++n;
    }
    return n;
}
}  // namespace detail

/// Take every pending, unmasked port and call `on_port(port)` for each, lowest first within a
/// word. Follows xen.h: clear upcall_pending first (so an event arriving during the scan sets it
/// again), atomically take pending_sel, then per selected word atomically clear exactly the bits
/// that are pending and not masked. Masked ports stay pending (Xen re-raises them on unmask).
/// Returns the number of ports dispatched. One pass only: the caller re-checks upcall_pending.
/// `pending` and `mask` point to shared_info's evtchn_pending / evtchn_mask (64 words each).
/// Context: the event loop (dispatch_events) of the vCPU that owns `upcall_pending` / `pending_sel`.
template <typename Fn>
std::size_t scan_pending(volatile std::uint8_t& upcall_pending, volatile xen_ulong_t& pending_sel,
                         volatile xen_ulong_t* pending, const volatile xen_ulong_t* mask, Fn&& on_port) {
    // Only this vCPU clears its own flag; Xen sets it. A plain store is enough (xen.h); the
    // release exchange below keeps it ahead of the scan.
    upcall_pending = 0;
    xen_ulong_t sel = __atomic_exchange_n(&pending_sel, xen_ulong_t{0}, __ATOMIC_ACQ_REL);
    std::size_t dispatched = 0;
    while (sel != 0) {
        const std::size_t word = static_cast<std::size_t>(std::countr_zero(sel));
        sel &= sel - 1;
        const xen_ulong_t ready = __atomic_load_n(&pending[word], __ATOMIC_ACQUIRE) &
                                  ~__atomic_load_n(&mask[word], __ATOMIC_ACQUIRE);
        dispatched += detail::take_ports(pending[word], ready, word, on_port);
    }
    return dispatched;
}

/// Take every pending port among `watched`, masked or not, and call `on_port(port)` for each,
/// lowest first within a word; `words` words of each bitmap. A masked port never raises an
/// upcall (nor sets pending_sel), but its pending bit is set and SCHEDOP_poll wakes for it: the
/// event loop finds such ports here. Bits outside `watched` are left as they are. Returns the
/// number of ports dispatched. Context: the event loop of the vCPU that owns the ports.
template <typename Fn>
std::size_t scan_watched(volatile xen_ulong_t* pending, const xen_ulong_t* watched, std::size_t words, Fn&& on_port) {
    std::size_t dispatched = 0;
    for (std::size_t word = 0; word < words; ++word) {
        const xen_ulong_t ready = __atomic_load_n(&pending[word], __ATOMIC_ACQUIRE) & watched[word];
        dispatched += detail::take_ports(pending[word], ready, word, on_port);
    }
    return dispatched;
}

/// True if any port among `watched` is pending.
inline bool any_watched_pending(const volatile xen_ulong_t* pending, const xen_ulong_t* watched, std::size_t words) {
    for (std::size_t word = 0; word < words; ++word) {
        if ((__atomic_load_n(&pending[word], __ATOMIC_ACQUIRE) & watched[word]) != 0) return true;
    }
    return false;
}

}  // namespace keel::xen

// What a PV frontend needs from the machine besides the grant table and xenstore: event
// channels to its backend, zeroed pages to share, and the frame numbers to grant them by.
// The guest implements it once, over xen::Port and the heap (guest_platform(), xenbus/guest/);
// host tests implement it over fakes (tests/fakes/test_platform.h) with page and channel
// accounting. Control path only (init, connect, teardown): virtual calls are fine here; the
// data path keeps the EventChannel* it was handed.
#pragma once

#include <cstddef>
#include <cstdint>

#include "keel/result.h"
#include "keel/xen/event_channel.h"
#include "keel/xen/grant_table.h"

namespace keel::xenbus {

class Platform {
public:
    virtual ~Platform() = default;
    /// An unbound event channel the backend domain may bind (EVTCHNOP_alloc_unbound). The
    /// channel stays valid until close_channel(). Writes the port number to `port`.
    /// Error::no_space when every channel slot is in use; hypercall errors as they come.
    virtual Result<xen::EventChannel*> open_channel(xen::DomId backend, std::uint32_t& port) = 0;
    /// Unbind and forget a channel open_channel() returned (EVTCHNOP_close).
    virtual void close_channel(xen::EventChannel* channel) = 0;
    /// `n` contiguous, zeroed, page-aligned pages, mapped read/write, or nullptr.
    virtual std::byte* alloc_pages(std::size_t n) = 0;
    /// Give back pages alloc_pages(n) returned (the same n).
    virtual void free_pages(std::byte* pages, std::size_t n) = 0;
    /// The frame number to grant for `page` (guest: the address >> 12, see xen::gfn_of).
    virtual std::uint64_t gfn(const std::byte* page) = 0;
};

/// The guest's Platform (guest only: xenbus/guest/platform.cc), shared by every frontend.
Platform& guest_platform();

}  // namespace keel::xenbus

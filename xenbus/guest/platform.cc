// The guest's xenbus::Platform, one for every frontend: event channels are xen::Ports (closed
// by their destructor), pages come from the kernel heap, zeroed.
#include "keel/xenbus/platform.h"

#include <cstring>
#include <optional>

#include "keel/heap.h"
#include "keel/init.h"
#include "keel/log.h"
#include "keel/loop.h"
#include "keel/xen/platform.h"
#include "keel/xenbus/frontend.h"
#include "keel/xenbus/ring.h"

namespace keel::xenbus {
namespace {

/// Channels for every frontend together: netfront takes up to two per vif (split tx/rx),
/// blkfront one per disk, 8 devices of each at most.
constexpr std::size_t max_channels = 32;

class GuestPlatform final : public Platform {
public:
    Result<xen::EventChannel*> open_channel(xen::DomId backend, std::uint32_t& port) override {
        for (auto& slot : ports_) {
            if (slot) continue;
            auto p = xen::Port::alloc_unbound(backend);
            if (!p) return p.error();
            slot.emplace(std::move(*p));
            port = slot->number();
            return static_cast<xen::EventChannel*>(&*slot);
        }
        return Error::no_space;
    }
    void close_channel(xen::EventChannel* channel) override {
        for (auto& slot : ports_) {
            if (slot && &*slot == channel) slot.reset();  // ~Port closes it (EVTCHNOP_close)
        }
    }
    std::byte* alloc_pages(std::size_t n) override {
        void* p = global_heap().alloc(n * page_size, page_size);
        if (p) std::memset(p, 0, n * page_size);
        return static_cast<std::byte*>(p);
    }
    void free_pages(std::byte* pages, std::size_t) override { global_heap().free(pages); }
    std::uint64_t gfn(const std::byte* page) override { return xen::gfn_of(page); }

private:
    std::optional<xen::Port> ports_[max_channels];
};

// Before a suspend: the answers to requests in flight (blkfront's) come in first, so that the
// old backend has finished with them before the domain moves (docs/lifecycle.md). Bounded:
// libxl gives the guest 60 s to suspend, xenstore and the console take their turn after this.
constexpr std::uint64_t drain_limit_ns = 5'000'000'000ull;

void frontends_before_suspend() { Frontend::drain_all_before_suspend(loop().now() + drain_limit_ns); }

// After a resume in a new domain every frontend's connection stayed behind: each reconnects to
// its device's new backend (after xenstore's hook: they need the new connection).
void frontends_after_suspend(xen::SuspendOutcome outcome) {
    if (outcome != xen::SuspendOutcome::new_domain) return;
    const std::size_t n = Frontend::resume_all_in_new_domain();
    if (n > 0) KLOG_INFO("xenbus: %zu frontend(s) reconnecting to their new backends", n);
}

void register_suspend_hook() {
    if (!xen::add_suspend_hook({frontends_before_suspend, frontends_after_suspend}).ok())
        KLOG_WARN("xenbus: no suspend hook slot left; frontends will not reconnect after xl restore");
}

}  // namespace

Platform& guest_platform() {
    static GuestPlatform platform;
    return platform;
}

}  // namespace keel::xenbus

// After xenstore (15) and control (16), before the frontends' discovery (20+).
KEEL_INIT(17, frontends_suspend, keel::xenbus::register_suspend_hook);

// Guest wiring: the real event channels, pages and grant table behind netfront::Platform, and
// boot-time discovery of device/vif/* (each found vif is initialised, registered for the net
// layer and handed to its connection supervisor).
#include <cstring>
#include <new>
#include <optional>

#include "keel/format.h"
#include "keel/heap.h"
#include "keel/init.h"
#include "keel/log.h"
#include "keel/netfront/netfront.h"
#include "keel/xen/grant_table.h"
#include "keel/xen/platform.h"
#include "keel/xenbus/xenbus.h"
#include "keel/xenbus/store.h"

namespace keel::netfront {
namespace {

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
    std::optional<xen::Port> ports_[2 * max_devices];  // tx + rx per device
};

GuestPlatform g_platform;

Task<void> discover(xen::XenStore& xs) {
    std::uint32_t ids[max_devices];
    Result<std::size_t> n = co_await list_xenbus_devices(xs, "vif", ids);
    if (!n) {
        KLOG_ERROR("netfront: cannot list device/vif: %s", to_string(n.error()));
    } else if (*n > 0 && !xen::init_grant_table().ok()) {
        KLOG_ERROR("netfront: no grant table; %zu vif(s) left alone", *n);
    } else {
        for (std::size_t i = 0; i < *n; ++i) {
            char node[32];
            format(node, sizeof node, "device/vif/%u", ids[i]);
            Result<XenbusNode> probed = co_await XenbusDevice::probe(xs, node);
            if (!probed) continue;  // logged by probe
            // Devices live forever (the net layer keeps pointers), so the heap is fine here.
            // Default options: full rings, keys published with Connected (what netback wants).
            auto* nf = new Netfront(xs, *probed, xen::grant_table(), g_platform);
            if (Result<void> r = co_await nf->init(); !r) {
                KLOG_ERROR("netfront: %s: not used: %s", node, to_string(r.error()));
                delete nf;
                continue;
            }
            (void)register_device(*nf);  // cannot fail: at most max_devices ids were listed
            nf->start();
        }
    }
    netfront_discovered().set();
}

void start() {
    // The kernel connects xenstore before the init entries run. Discovery runs as a task: its
    // requests go out now, their replies arrive once the loop runs.
    xen::XenStore* xs = xenstore();
    if (xs == nullptr) {
        KLOG_WARN("netfront: no xenstore; no network devices");
        netfront_discovered().set();
        return;
    }
    spawn(discover(*xs));
}

}  // namespace
}  // namespace keel::netfront

KEEL_INIT(20, netfront, keel::netfront::start);

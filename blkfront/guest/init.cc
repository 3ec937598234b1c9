// Guest wiring: the real event channels, pages and grant table behind blkfront::Platform, and
// boot-time discovery of device/vbd/* (each found disk is initialised, handed to its connection
// supervisor and registered for block::devices()).
#include <cstring>
#include <new>
#include <optional>

#include "keel/blkfront/blkfront.h"
#include "keel/format.h"
#include "keel/heap.h"
#include "keel/init.h"
#include "keel/log.h"
#include "keel/xen/grant_table.h"
#include "keel/xen/platform.h"
#include "keel/xenbus/xenbus.h"
#include "keel/xenbus/store.h"

namespace keel::blkfront {
namespace {

/// How long discovery waits for the disks' first connections before it lets the service run
/// (a disk that connects later is still used; until then its calls fail with Error::closed).
constexpr std::uint64_t first_connect_timeout_ns = s(30);

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
    std::optional<xen::Port> ports_[max_devices];  // one channel per disk
};

GuestPlatform g_platform;

Task<void> discover(xen::XenStore& xs) {
    std::uint32_t ids[max_devices];
    Result<std::size_t> n = co_await list_xenbus_devices(xs, "vbd", ids);
    if (!n) {
        KLOG_ERROR("blkfront: cannot list device/vbd: %s", to_string(n.error()));
    } else if (*n > 0 && !xen::init_grant_table().ok()) {
        KLOG_ERROR("blkfront: no grant table; %zu vbd(s) left alone", *n);
    } else {
        for (std::size_t i = 0; i < *n; ++i) {
            char node[32];
            format(node, sizeof node, "device/vbd/%u", ids[i]);
            Result<XenbusNode> probed = co_await XenbusDevice::probe(xs, node);
            if (!probed) continue;  // logged by probe
            // Devices live forever (services keep pointers), so the heap is fine here.
            auto* bf = new Blkfront(xs, *probed, xen::grant_table(), g_platform);
            if (Result<void> r = co_await bf->init(); !r) {
                KLOG_ERROR("blkfront: %s: not used: %s", node, to_string(r.error()));
                delete bf;
                continue;
            }
            (void)register_device(*bf);  // cannot fail: at most max_devices ids were listed
            bf->start();
        }
        // The supervisors connect concurrently; give each disk the rest of one shared deadline.
        const std::uint64_t deadline = loop().now() + first_connect_timeout_ns;
        for (Blkfront* bf : blkfront_devices()) {
            const std::uint64_t now = loop().now();
            bool up = bf->connected();
            if (!up && now < deadline) up = co_await bf->ready().wait_for(deadline - now);
            if (!up)
                KLOG_WARN("blkfront: %s: not connected yet; its calls fail until it is", bf->name().data());
        }
    }
    block::discovered().set();
}

void start() {
    // The kernel connects xenstore before the init entries run. Discovery runs as a task: its
    // requests go out now, their replies arrive once the loop runs.
    xen::XenStore* xs = xenstore();
    if (xs == nullptr) {
        KLOG_WARN("blkfront: no xenstore; no disks");
        block::discovered().set();
        return;
    }
    spawn(discover(*xs));
}

}  // namespace
}  // namespace keel::blkfront

KEEL_INIT(21, blkfront, keel::blkfront::start);

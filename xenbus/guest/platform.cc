// The guest's xenbus::Platform, one for every frontend: event channels are xen::Ports (closed
// by their destructor), pages come from the kernel heap, zeroed.
#include "keel/xenbus/platform.h"

#include <cstring>
#include <optional>

#include "keel/heap.h"
#include "keel/xen/platform.h"
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

}  // namespace

Platform& guest_platform() {
    static GuestPlatform platform;
    return platform;
}

}  // namespace keel::xenbus

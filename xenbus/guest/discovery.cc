// Boot-time discovery of a frontend class (keel/xenbus/discovery.h) over the guest's xenstore,
// grant table and Platform.
#include "keel/xenbus/discovery.h"

#include "keel/format.h"
#include "keel/log.h"
#include "keel/xenbus/store.h"

namespace keel::xenbus {
namespace {

Task<void> run(Discovery what, xen::XenStore& xs) {
    Frontend* found[max_devices];
    std::size_t count = 0;
    std::uint32_t ids[max_devices];
    Result<std::size_t> n = co_await list_xenbus_devices(xs, what.type, ids);
    if (!n) {
        KLOG_ERROR("%s: cannot list device/%s: %s", what.driver, what.type, to_string(n.error()));
    } else if (*n > 0 && !xen::init_grant_table().ok()) {
        KLOG_ERROR("%s: no grant table; %zu %s(s) left alone", what.driver, *n, what.type);
    } else {
        for (std::size_t i = 0; i < *n; ++i) {
            char node[32];
            format(node, sizeof node, "device/%s/%u", what.type, ids[i]);
            Result<XenbusNode> probed = co_await XenbusDevice::probe(xs, node);
            if (!probed) continue;  // logged by probe
            Frontend* device = what.make(xs, *probed, xen::grant_table(), guest_platform());
            if (Result<void> r = co_await device->init(); !r) {
                KLOG_ERROR("%s: %s: not used: %s", what.driver, node, to_string(r.error()));
                delete device;
                continue;
            }
            if (Result<void> r = what.add(*device); !r) {
                KLOG_ERROR("%s: %s: not used: %s", what.driver, node, to_string(r.error()));
                delete device;
                continue;
            }
            device->start();
            found[count++] = device;
        }
        if (what.first_connect_timeout_ns != 0) {
            // The supervisors connect concurrently; each device gets the rest of one deadline.
            const std::uint64_t deadline = loop().now() + what.first_connect_timeout_ns;
            for (std::size_t i = 0; i < count; ++i) {
                const std::uint64_t now = loop().now();
                bool up = found[i]->live();
                if (!up && now < deadline) up = (co_await found[i]->wait_ready(deadline - now)).ok();
                if (!up) {
                    KLOG_WARN("%s: %s: not connected yet; its calls fail until it is", what.driver,
                              found[i]->nodename().data());
                }
            }
        }
    }
    what.discovered->set();
}

}  // namespace

void discover(const Discovery& what) {
    // The kernel connects xenstore before the init entries run. Discovery runs as a task: its
    // requests go out now, their replies arrive once the loop runs.
    xen::XenStore* xs = xenstore();
    if (xs == nullptr) {
        KLOG_WARN("%s: no xenstore; no %s devices", what.driver, what.type);
        what.discovered->set();
        return;
    }
    spawn(run(what, *xs));
}

}  // namespace keel::xenbus

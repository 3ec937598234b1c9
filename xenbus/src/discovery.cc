// DeviceWatcher: the boot walk and hot-plug of one frontend class (keel/xenbus/discovery.h).
#include "keel/xenbus/discovery.h"

#include "keel/format.h"
#include "keel/log.h"

namespace keel::xenbus {

DeviceWatcher::DeviceWatcher(const Discovery& what, xen::XenStore& xs, Platform& platform,
                             xen::GrantTable* (*grants)())
    : what_(what), xs_(xs), platform_(platform), grants_(grants) {}

DeviceWatcher::~DeviceWatcher() {
    if (watching_) xs_.unwatch(watch_);  // the callback points at us
}

void DeviceWatcher::start() {
    if (started_) return;
    started_ = true;
    task_ = run();
    task_.start();
}

DeviceWatcher::Known* DeviceWatcher::find(std::uint32_t id) {
    for (Known& k : known_) {
        if (k.used && k.id == id) return &k;
    }
    return nullptr;
}

Task<void> DeviceWatcher::run() {
    // Watch before the first walk: a device added between the listing and the watch is not
    // missed (xenstored fires the new watch once, which walks again).
    char dir[32];
    format(dir, sizeof dir, "device/%s", what_.type);
    const char* driver = what_.driver;  // a literal: safe in a callback that outlives us
    Result<xen::WatchId> w = xs_.watch(
        dir, [this](std::string_view) { changed_.set(); },
        [driver](Result<void> r) {
            if (!r && r.error() != Error::cancelled) {
                KLOG_ERROR("%s: cannot watch for hot-plugged devices: %s", driver, to_string(r.error()));
            }
        });
    if (w) {
        watch_ = *w;
        watching_ = true;
    } else {
        KLOG_ERROR("%s: cannot watch %s: %s; devices added later are not seen", what_.driver, dir,
                   to_string(w.error()));
    }
    changed_.reset();

    Frontend* boot[max_devices];
    const std::size_t count = co_await walk(boot);
    if (what_.first_connect_timeout_ns != 0) {
        // The supervisors connect concurrently; each device gets the rest of one deadline.
        const std::uint64_t deadline = loop().now() + what_.first_connect_timeout_ns;
        for (std::size_t i = 0; i < count; ++i) {
            const std::uint64_t now = loop().now();
            bool up = boot[i]->live();
            if (!up && now < deadline) up = (co_await boot[i]->wait_ready(deadline - now)).ok();
            if (!up) {
                KLOG_WARN("%s: %s: not connected yet; its calls fail until it is", what_.driver,
                          boot[i]->nodename().data());
            }
        }
    }
    if (what_.discovered != nullptr) what_.discovered->set();

    while (watching_) {
        co_await changed_.wait();
        changed_.reset();  // events during the walk make one more walk
        (void)co_await walk(nullptr);
    }
}

Task<std::size_t> DeviceWatcher::walk(Frontend** boot) {
    ++walks_;
    std::uint32_t ids[max_listed_devices];
    Result<std::size_t> n = co_await list_xenbus_devices(xs_, what_.type, ids);
    if (!n) {
        KLOG_ERROR("%s: cannot list device/%s: %s", what_.driver, what_.type, to_string(n.error()));
        co_return 0;
    }
    const std::span<const std::uint32_t> listed(ids, *n);
    auto in_listing = [&](std::uint32_t id) {
        for (std::uint32_t l : listed) {
            if (l == id) return true;
        }
        return false;
    };

    // Ids gone from the listing: forgotten once their supervisor has stopped (device gone);
    // until then remembered as vanished, so that the same id coming back is a new device.
    for (Known& k : known_) {
        if (!k.used) continue;
        if (in_listing(k.id)) continue;
        k.vanished = true;
        if (stopped(k)) k = Known{};
    }

    std::size_t count = 0;
    std::size_t ignored = 0;
    for (std::uint32_t id : listed) {
        Known* k = find(id);
        if (k != nullptr) {
            // Known: nothing to do, unless it was unplugged and is back, either seen gone by a
            // walk before, or detached and attached again between two walks (the detach's
            // removal and the attach's writes made one walk).
            bool back = k->vanished && stopped(*k);
            if (!back && detached(*k)) back = co_await attached_again(id);
            if (!back) continue;
            // The old driver object stays registered, dead; its slot is free again (and found
            // just below).
            KLOG_INFO("%s: device/%s/%u is back; bringing it up as a new device", what_.driver, what_.type,
                      id);
            *k = Known{};
            k = nullptr;
        }
        for (Known& free : known_) {
            if (!free.used) {
                k = &free;
                break;
            }
        }
        if (k == nullptr) {
            ++ignored;
            continue;
        }
        *k = Known{.used = true, .id = id};
        xen::GrantTable* grants = grants_();
        if (grants == nullptr) {
            if (!no_grants_logged_) {
                KLOG_ERROR("%s: no grant table; device/%s/%u left alone", what_.driver, what_.type, id);
                no_grants_logged_ = true;
            }
            ++failed_;
            continue;
        }
        k->device = co_await bring_up(id, *grants);
        if (k->device == nullptr) {
            ++failed_;
            continue;
        }
        if (boot != nullptr && count < max_devices) boot[count++] = k->device;
    }
    if (ignored != ignored_) {
        if (ignored != 0) {
            KLOG_WARN("%s: %zu device(s) under device/%s beyond the first %zu left alone", what_.driver,
                      ignored, what_.type, max_devices);
        }
        ignored_ = ignored;
    }
    co_return count;
}

Task<bool> DeviceWatcher::attached_again(std::uint32_t id) {
    // The dead device's nodes are libxl's detach still under way (its backend's `online` is 0
    // until it removes them), or a new attach under the same id (a new backend, online).
    char node[32];
    format(node, sizeof node, "device/%s/%u", what_.type, id);
    Result<XenbusNode> probed = co_await XenbusDevice::probe(xs_, node);
    if (!probed) co_return false;
    XenbusDevice device(xs_, *probed);
    Result<std::uint64_t> online = co_await device.read_backend_uint("online");
    co_return online ? *online != 0 : online.error() == Error::not_found;
}

Task<Frontend*> DeviceWatcher::bring_up(std::uint32_t id, xen::GrantTable& grants) {
    char node[32];
    format(node, sizeof node, "device/%s/%u", what_.type, id);
    Result<XenbusNode> probed = co_await XenbusDevice::probe(xs_, node);
    if (!probed) co_return nullptr;  // logged by probe
    Frontend* device = what_.make(xs_, *probed, grants, platform_);
    if (Result<void> r = co_await device->init(); !r) {
        KLOG_ERROR("%s: %s: not used: %s", what_.driver, node, to_string(r.error()));
        delete device;
        co_return nullptr;
    }
    if (Result<void> r = what_.add(*device); !r) {
        KLOG_ERROR("%s: %s: not used: %s", what_.driver, node, to_string(r.error()));
        delete device;
        co_return nullptr;
    }
    KLOG_INFO("%s: %s: found (backend %s, domain %u)%s", what_.driver, node, probed->backend,
              probed->backend_id, walks_ > 1 ? ", hot-plugged" : "");
    ++added_;
    device->start();
    if (what_.added != nullptr) what_.added->set();
    co_return device;
}

}  // namespace keel::xenbus

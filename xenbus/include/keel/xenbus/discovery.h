// Discovery of one frontend class, for every driver, at boot and after it (hot-plug): watch
// device/<class>, and for every id there that is not known yet probe the node, construct the
// driver through a factory, init() it, register it and start() its supervisor. The boot walk is
// simply the first pass; after it discovery optionally waits (bounded) for the first
// connections and sets the class's "discovered" Event, then walks again on every change under
// device/<class> (`xl network-attach`, `xl block-attach`). One code path for both.
//
//   void start() {
//       xenbus::discover_devices<Netfront, register_device>("netfront", "vif", netfront_discovered());
//   }
//   KEEL_INIT(20, netfront, start);
//
// Bounded: at most max_devices ids of a class are known at once (a device, or an id that failed
// to probe, init or register); the rest are logged (once per change of their number) and left
// alone. An id that failed is not tried again on later events, only after it vanished from
// device/<class> and came back. An unplug (`xl network-detach`, `xl block-detach`) is the
// device's supervisor closing it and finding it gone (frontend.h); the driver object stays
// registered (registries never shrink: callers keep pointers) with its link down and its calls
// failing with Error::closed. An id that comes back after that (a later attach may be given the
// same id) is a new device: a new driver object, registered next to the dead one. It comes back
// when a walk saw it gone, or when its backend is online again (a detach and an attach between
// two walks; while libxl's detach is still removing the nodes, the backend's online is 0).
//
// The watch is registered again by XenStore::reconnect() after a resume in a new domain;
// xenstored then fires it once and the walk finds nothing new.
//
// DeviceWatcher is pure (host-tested with the fake xenstored); discover() is its guest wiring
// (xenbus/guest/discovery.cc: the guest's xenstore, grant table and Platform).
// Context: event loop only.
#pragma once

#include <cstddef>
#include <cstdint>

#include "keel/result.h"
#include "keel/task.h"
#include "keel/xen/grant_table.h"
#include "keel/xen/xenstore.h"
#include "keel/xenbus/frontend.h"
#include "keel/xenbus/platform.h"
#include "keel/xenbus/xenbus.h"

namespace keel::xenbus {

struct Discovery {
    const char* driver = "";  ///< log prefix, e.g. "netfront" (a literal: it outlives everything)
    const char* type = "";    ///< the class under device/, e.g. "vif"
    /// Construct the driver for a probed node, not yet init()ed. Devices live forever, so the
    /// heap is fine here.
    Frontend* (*make)(xen::XenStore& xs, const XenbusNode& node, xen::GrantTable& grants,
                      Platform& platform) = nullptr;
    /// Make an init()ed device visible to its callers (before its supervisor starts). An error
    /// leaves the device unused (it is destroyed).
    Result<void> (*add)(Frontend& device) = nullptr;
    /// Wait up to this long (one deadline shared by all devices of the boot walk) for the
    /// devices' first connections before setting `discovered`; 0: do not wait.
    std::uint64_t first_connect_timeout_ns = 0;
    /// Set once the boot walk has finished, with or without devices (also without xenstore).
    Event* discovered = nullptr;
    /// Optional: set each time a device was added (boot walk and hot-plug alike); whoever waits
    /// on it resets it and looks at the driver's registry again.
    Event* added = nullptr;
};

/// Discovery::make for a driver constructible as Driver(xs, node, grants, platform).
template <typename Driver>
Frontend* construct(xen::XenStore& xs, const XenbusNode& node, xen::GrantTable& grants, Platform& platform) {
    return new Driver(xs, node, grants, platform);
}
/// Discovery::add for a driver's registration function.
template <typename Driver, Result<void> (*Register)(Driver&)>
Result<void> add_as(Frontend& device) {
    return Register(static_cast<Driver&>(device));
}

/// Watches device/<type> and brings up every new device there (see the header comment).
/// Pinned. Destroying it stops watching; the devices it made are not destroyed (they are
/// registered and live forever).
class DeviceWatcher {
public:
    /// `grants` returns the grant table, set up on first use, or nullptr if there is none (the
    /// devices then stay unused, logged once per id).
    DeviceWatcher(const Discovery& what, xen::XenStore& xs, Platform& platform, xen::GrantTable* (*grants)());
    ~DeviceWatcher();
    DeviceWatcher(const DeviceWatcher&) = delete;
    DeviceWatcher& operator=(const DeviceWatcher&) = delete;

    /// Register the watch, run the boot walk, wait for the first connections, set
    /// `discovered`, then follow the watch. Once; the work runs from the loop.
    void start();

    /// Walks of device/<type> done (the boot walk is the first).
    std::uint64_t walks() const { return walks_; }
    /// Devices brought up and registered (boot and hot-plug).
    std::uint64_t added() const { return added_; }
    /// Ids that failed to probe, init or register (each counted once per appearance).
    std::uint64_t failed() const { return failed_; }
    /// True once the watch on device/<type> is registered (its request went out).
    bool watching() const { return watching_; }

private:
    /// One id of device/<type> we know: its device, or nullptr if it failed.
    struct Known {
        bool used = false;
        bool vanished = false;  ///< missing from a walk since it was brought up
        std::uint32_t id = 0;
        Frontend* device = nullptr;
    };

    Task<void> run();
    /// List device/<type>, forget ids that are gone for good, bring up the new ones. Returns
    /// the devices it brought up in `boot` (at most max_devices), for the first-connect wait.
    Task<std::size_t> walk(Frontend** boot);
    Task<Frontend*> bring_up(std::uint32_t id, xen::GrantTable& grants);
    /// A detached id still listed: is it a new attach (its backend online), not the detach
    /// itself still removing the nodes?
    Task<bool> attached_again(std::uint32_t id);
    Known* find(std::uint32_t id);
    static bool stopped(const Known& k) { return k.device == nullptr || !k.device->supervising(); }
    /// Unplugged: its supervisor stopped on its own (device gone or backend offline), not
    /// because it gave up on a hostile backend (that one is not brought up again unasked).
    static bool detached(const Known& k) {
        return k.device != nullptr && !k.device->supervising() && !k.device->given_up();
    }

    Discovery what_;
    xen::XenStore& xs_;
    Platform& platform_;
    xen::GrantTable* (*grants_)();
    Known known_[max_devices];
    std::size_t ignored_ = 0;  ///< ids beyond max_devices in the last walk (logged when it changes)
    bool no_grants_logged_ = false;
    bool started_ = false;
    bool watching_ = false;
    xen::WatchId watch_{};
    std::uint64_t walks_ = 0;
    std::uint64_t added_ = 0;
    std::uint64_t failed_ = 0;
    // Declared last, the task after the event: the task's frame waits on it.
    Event changed_;  ///< the watch fired since the last walk began
    Task<void> task_;
};

/// Guest only. Run a DeviceWatcher for the class (it lives forever).
void discover(const Discovery& what);

/// Guest only. discover() for a driver constructible as Driver(xs, node, grants, platform)
/// and registered by `Register`.
template <typename Driver, Result<void> (*Register)(Driver&)>
void discover_devices(const char* driver, const char* type, Event& discovered,
                      std::uint64_t first_connect_timeout_ns = 0, Event* added = nullptr) {
    discover({.driver = driver,
              .type = type,
              .make = &construct<Driver>,
              .add = &add_as<Driver, Register>,
              .first_connect_timeout_ns = first_connect_timeout_ns,
              .discovered = &discovered,
              .added = added});
}

}  // namespace keel::xenbus

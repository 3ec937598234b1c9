// Boot-time discovery of one frontend class, for every driver: list device/<class>/*, probe each
// node, construct the driver through a factory, init() it, register it, start() its supervisor,
// optionally wait (bounded) for the first connections, then set the class's "discovered" Event.
// Guest only (xenbus/guest/discovery.cc: the guest's xenstore, grant table and Platform).
//
//   void start() {
//       xenbus::discover_devices<Netfront, register_device>("netfront", "vif", netfront_discovered());
//   }
//   KEEL_INIT(20, netfront, start);
//
// Hot-plug is meant to re-run the same walk for ids that are not registered yet (not built).
#pragma once

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
    const char* driver = "";  ///< log prefix, e.g. "netfront"
    const char* type = "";    ///< the class under device/, e.g. "vif"
    /// Construct the driver for a probed node, not yet init()ed. Devices live forever, so the
    /// heap is fine here.
    Frontend* (*make)(xen::XenStore& xs, const XenbusNode& node, xen::GrantTable& grants,
                      Platform& platform) = nullptr;
    /// Make an init()ed device visible to its callers (before its supervisor starts). An error
    /// leaves the device unused.
    Result<void> (*add)(Frontend& device) = nullptr;
    /// Wait up to this long (one deadline shared by all devices) for the devices' first
    /// connections before setting `discovered`; 0: do not wait.
    std::uint64_t first_connect_timeout_ns = 0;
    /// Set once discovery has finished, with or without devices (also without xenstore).
    Event* discovered = nullptr;
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

/// Guest only. Run discovery as a Task (its xenstore requests go out when the loop runs).
void discover(const Discovery& what);

/// Guest only. discover() for a driver constructible as Driver(xs, node, grants, platform)
/// and registered by `Register`.
template <typename Driver, Result<void> (*Register)(Driver&)>
void discover_devices(const char* driver, const char* type, Event& discovered,
                      std::uint64_t first_connect_timeout_ns = 0) {
    discover({.driver = driver,
              .type = type,
              .make = &construct<Driver>,
              .add = &add_as<Driver, Register>,
              .first_connect_timeout_ns = first_connect_timeout_ns,
              .discovered = &discovered});
}

}  // namespace keel::xenbus

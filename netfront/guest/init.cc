// Guest wiring: discovery of device/vif/* through xenbus, at boot and hot-plugged ones after it
// (keel/xenbus/discovery.h). Each vif found gets options sized to the domain's memory
// (options_for_memory: full rings from 16 MiB up; keys published with Connected: what netback
// wants), is registered for the net layer, which netfront_added() tells, and handed to its
// connection supervisor.
#include "keel/init.h"
#include "keel/netfront/netfront.h"
#include "keel/system.h"
#include "keel/xenbus/discovery.h"

namespace keel::netfront {

Event& netfront_added() {
    static Event added;
    return added;
}

namespace {

xenbus::Frontend* make(xen::XenStore& xs, const XenbusNode& node, xen::GrantTable& grants,
                       xenbus::Platform& platform) {
    return new Netfront(xs, node, grants, platform, options_for_memory(ram_bytes()));
}

void start() {
    xenbus::discover({.driver = "netfront",
                      .type = "vif",
                      .make = &make,
                      .add = &xenbus::add_as<Netfront, register_device>,
                      .discovered = &netfront_discovered(),
                      .added = &netfront_added()});
}

}  // namespace
}  // namespace keel::netfront

KEEL_INIT(20, netfront, keel::netfront::start);

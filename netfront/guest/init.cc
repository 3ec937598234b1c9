// Guest wiring: discovery of device/vif/* through xenbus, at boot and hot-plugged ones after it
// (keel/xenbus/discovery.h). Each vif found gets default options (full rings, keys published
// with Connected: what netback wants), is registered for the net layer, which netfront_added()
// tells, and handed to its connection supervisor.
#include "keel/init.h"
#include "keel/netfront/netfront.h"
#include "keel/xenbus/discovery.h"

namespace keel::netfront {

Event& netfront_added() {
    static Event added;
    return added;
}

namespace {

void start() {
    xenbus::discover_devices<Netfront, register_device>("netfront", "vif", netfront_discovered(), 0,
                                                        &netfront_added());
}

}  // namespace
}  // namespace keel::netfront

KEEL_INIT(20, netfront, keel::netfront::start);

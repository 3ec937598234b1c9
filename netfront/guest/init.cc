// Guest wiring: boot-time discovery of device/vif/* through xenbus. Each vif found gets default
// options (full rings, keys published with Connected: what netback wants), is registered for
// the net layer and handed to its connection supervisor.
#include "keel/init.h"
#include "keel/netfront/netfront.h"
#include "keel/xenbus/discovery.h"

namespace keel::netfront {
namespace {

void start() { xenbus::discover_devices<Netfront, register_device>("netfront", "vif", netfront_discovered()); }

}  // namespace
}  // namespace keel::netfront

KEEL_INIT(20, netfront, keel::netfront::start);

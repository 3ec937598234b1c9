// Discovery of a frontend class (keel/xenbus/discovery.h) over the guest's xenstore, grant
// table and Platform: one DeviceWatcher per class, living forever.
#include "keel/xenbus/discovery.h"

#include "keel/log.h"
#include "keel/xenbus/store.h"

namespace keel::xenbus {
namespace {

xen::GrantTable* guest_grants() { return xen::init_grant_table().ok() ? &xen::grant_table() : nullptr; }

}  // namespace

void discover(const Discovery& what) {
    // The kernel connects xenstore before the init entries run. The walk runs as a task: its
    // requests go out now, their replies arrive once the loop runs.
    xen::XenStore* xs = xenstore();
    if (xs == nullptr) {
        KLOG_WARN("%s: no xenstore; no %s devices", what.driver, what.type);
        if (what.discovered != nullptr) what.discovered->set();
        return;
    }
    auto* watcher = new DeviceWatcher(what, *xs, guest_platform(), &guest_grants);  // lives forever
    watcher->start();
}

}  // namespace keel::xenbus

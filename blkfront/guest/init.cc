// Guest wiring: discovery of device/vbd/* through xenbus, at boot and hot-plugged ones after it
// (`xl block-attach`; keel/xenbus/discovery.h). Each disk found is registered for
// block::devices() and handed to its connection supervisor; block::discovered() is set once the
// boot disks connected or 30 s passed (a disk that connects later is still used; until then its
// calls fail with Error::closed). A detached disk (`xl block-detach`) stays in block::devices()
// and its calls fail with Error::closed. The disks' metrics are registered here too.
#include "keel/blkfront/blkfront.h"
#include "keel/init.h"
#include "keel/metrics.h"
#include "keel/xenbus/discovery.h"

namespace keel::blkfront {
namespace {

void start() {
    static metrics::Source source("blkfront", [](MetricsWriter& w) { write_metrics(w, blkfront_devices()); });
    metrics::add(source);
    xenbus::discover_devices<Blkfront, register_device>("blkfront", "vbd", block::discovered(), s(30));
}

}  // namespace
}  // namespace keel::blkfront

KEEL_INIT(21, blkfront, keel::blkfront::start);

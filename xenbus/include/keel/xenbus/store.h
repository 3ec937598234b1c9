// The guest's xenstore connection, for drivers (xenbus) and services. Guest only: defined in
// kernel/guest/start.cc, which connects it before the drivers' KEEL_INIT entries run.
#pragma once

#include "keel/xen/xenstore.h"

namespace keel {

/// nullptr when the toolstack offered no xenstore ring (HVM_PARAM_STORE_PFN).
xen::XenStore* xenstore();

}  // namespace keel

// The producer side of the PV console's out ring (xen/io/console.h) for platform-xen's own early
// output, before the console driver (console/, a layer above) exists: the PV start of day writes
// its lines here. Pure: works on any xencons_interface, so the host tests play xenconsoled.
#pragma once

#include <stdint.h>

#include <xen/io/console.h>

#include <string_view>

#include "keel/result.h"

namespace keel::xen {

/// Copy as much of `text` into ring.out as there is room for; returns how many bytes, 0 when
/// the ring is full (notify the backend, wait, retry). The bytes are written before out_prod is
/// published (release). Error::protocol if the backend's out_cons says more than the ring's
/// size is outstanding: the ring is broken, stop writing to it.
/// Context: the only producer of this ring.
Result<std::size_t> console_ring_put(volatile xencons_interface& ring, std::string_view text);

/// Whether the backend has consumed everything written (out_cons == out_prod, acquire).
bool console_ring_drained(const volatile xencons_interface& ring);

}  // namespace keel::xen

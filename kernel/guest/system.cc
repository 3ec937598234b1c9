// keel/system.h over platform-xen.
#include "keel/system.h"

#include <cstring>

#include "keel/xen/platform.h"

namespace keel {

HypervisorVersion hypervisor_version() {
    const xen::Version v = xen::xen_version();
    HypervisorVersion out{v.major, v.minor, {}};
    static_assert(sizeof out.extra == sizeof v.extra);
    std::memcpy(out.extra, v.extra, sizeof out.extra);
    return out;
}

std::uint64_t ram_bytes() { return xen::boot_info().ram_bytes(); }

std::uint64_t unix_time_ns() {
    const xen::WallClock boot = xen::wallclock();  // wall time at system time 0
    return boot.sec * 1'000'000'000ull + boot.nsec + xen::now_ns();
}

std::uint64_t random_seed() { return xen::random_seed(); }

const volatile std::uint64_t* page_table_root() { return xen::page_table_root(); }

}  // namespace keel

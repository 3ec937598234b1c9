// What services may know of the machine without knowing it is Xen: the hypervisor's version,
// memory, the wall clock and a random seed. Guest only (kernel/guest/system.cc); the layer below
// (platform-xen) is never included by services.
#pragma once

#include <cstdint>

namespace keel {

struct HypervisorVersion {
    unsigned major, minor;
    char extra[16];  ///< e.g. ".11" (NUL-terminated)
};
/// The version of Xen the guest runs on.
HypervisorVersion hypervisor_version();

/// RAM the domain was given, in bytes (in classic PV: as much of it as the page tables map).
std::uint64_t ram_bytes();

/// Where the live root page table can be read (read-only in every mode: a write faults). For
/// the faults service's write-page-table kind.
const volatile std::uint64_t* page_table_root();

/// Wall-clock time (ns since the Unix epoch) now: the hypervisor's wall clock at boot plus the
/// monotonic time since.
std::uint64_t unix_time_ns();

/// 64 bits for keys and seeds: RDRAND mixed with the TSC, or the TSC alone on CPUs without
/// RDRAND (guessable: callers that need secrecy should say so in their logs).
std::uint64_t random_seed();

}  // namespace keel

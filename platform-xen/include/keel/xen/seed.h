// Random seeds for the stack canary, lwIP's ISNs and hash keys. With RDRAND/RDSEED the CPU
// supplies the entropy; without them (some nested or older hosts) the TSC alone is guessable, so
// every value that differs between boots and domains goes in, mixed through SipHash. Pure:
// platform-xen/guest/boot.cc gathers the inputs.
#pragma once

#include <cstdint>

#include "keel/xen/start_info.h"

namespace keel::xen {

/// Everything a seed is made from. A source the CPU or Xen lacks is left 0.
struct SeedInputs {
    std::uint64_t rdrand, rdseed;         ///< CPU random numbers (0: none, or it failed)
    std::uint64_t tsc;                    ///< time-stamp counter now
    std::uint64_t pvclock_ns;             ///< Xen's monotonic time now (0 before shared_info)
    std::uint64_t wall_sec, wall_nsec;    ///< Xen's wall clock at boot
    std::uint8_t guest_handle[16];        ///< XENVER_guest_handle: the toolstack's UUID of this domain
    std::uint64_t start_info_paddr;       ///< where the toolstack put start_info
    std::uint64_t boot_hash;              ///< hash_boot_info() of what start_info said
    std::uint64_t stack_addr;             ///< an address on the caller's stack
    std::uint64_t counter;                ///< seeds taken so far: two in one tick still differ
};

/// SipHash-2-4 over every field of `in` (each byte of each field changes the result).
std::uint64_t mix_seed(const SeedInputs& in);

/// A hash of the validated boot facts: the memory map and the command line.
std::uint64_t hash_boot_info(const BootInfo& info);

}  // namespace keel::xen

// Xen's paravirtual clock: per-vCPU system time (struct vcpu_time_info in xen/xen.h) and the
// wallclock in shared_info. Both are written by Xen and read lock-free with a version counter.
#pragma once

#include <cstdint>

#include <xen/xen.h>

namespace keel::xen {

/// Nanoseconds for `tsc_delta` ticks: ((delta << shift), or delta >> -shift, as a 64-bit value,
/// exactly as Xen computes it) * mul_frac >> 32, with a 128-bit product. Shifts of 64 or more
/// in either direction give 0.
std::uint64_t pvclock_scale(std::uint64_t tsc_delta, std::uint32_t mul_frac, std::int8_t shift);

/// Nanoseconds since the domain booted: system_time + scale(tsc - tsc_timestamp), read under the
/// version protocol of xen.h (retry while the version is odd or changed during the read).
/// `rdtsc` reads the TSC; the guest passes plain RDTSC (ordered with LFENCE), never RDTSCP.
/// A TSC older than tsc_timestamp counts as no time elapsed.
/// Context: any; reads only this vCPU's time info.
std::uint64_t pvclock_read(const volatile vcpu_time_info& t, std::uint64_t (*rdtsc)());

/// Wall-clock time (seconds + nanoseconds since the Unix epoch) at which system time was 0.
/// The current time is this plus pvclock_read().
struct WallClock {
    std::uint64_t sec;
    std::uint32_t nsec;
};

/// Read wc_sec/wc_sec_hi/wc_nsec under wc_version (same protocol as vcpu_time_info).
WallClock wallclock_read(const volatile shared_info& s);

}  // namespace keel::xen

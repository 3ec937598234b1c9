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

/// The offset keel adds to pvclock so that its monotonic clock never goes backwards across a
/// resume in a new domain (xl restore, migration: the new host's system time may be anywhere).
/// `before_ns`: keel's clock (raw + `offset`) just before suspending; `raw_after_ns`: pvclock
/// right after the resume. Returns the new offset: unchanged when raw + offset is still at or
/// past `before_ns` (same host: the time the domain was away counts as elapsed), else the one
/// that makes the clock continue from `before_ns`.
std::uint64_t resume_clock_offset(std::uint64_t offset, std::uint64_t before_ns, std::uint64_t raw_after_ns);

/// keel's monotonic clock over pvclock. pvclock alone may step back a little: when Xen publishes
/// new time info, system_time + scale(tsc - tsc_timestamp) can land below a value read just
/// before (seen in nested Xen: a boot log stamped 24.100254 s, then 24.100253 s). Reads are
/// raw + offset, never below the last value read; resume() sets the offset after a resume in a
/// new domain so the clock continues from the last value read (resume_clock_offset).
/// Context: one vCPU; a read interrupted by another read at worst returns the same value twice.
class MonotonicClock {
public:
    std::uint64_t read(std::uint64_t raw_ns) {
        std::uint64_t v = raw_ns + offset_;
        if (v < last_) return last_;
        last_ = v;
        return v;
    }
    void resume(std::uint64_t raw_after_ns) { offset_ = resume_clock_offset(offset_, last_, raw_after_ns); }
    std::uint64_t offset() const { return offset_; }
    /// An absolute deadline on this clock in pvclock's time (for Xen's timers), never 0.
    std::uint64_t to_raw(std::uint64_t deadline_ns) const {
        return deadline_ns > offset_ ? deadline_ns - offset_ : 1;
    }

private:
    std::uint64_t offset_ = 0;
    std::uint64_t last_ = 0;
};

/// Wall-clock time (seconds + nanoseconds since the Unix epoch) at which system time was 0.
/// The current time is this plus pvclock_read().
struct WallClock {
    std::uint64_t sec;
    std::uint32_t nsec;
};

/// Read wc_sec/wc_sec_hi/wc_nsec under wc_version (same protocol as vcpu_time_info).
WallClock wallclock_read(const volatile shared_info& s);

}  // namespace keel::xen

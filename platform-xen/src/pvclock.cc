// pvclock: the scaling and version loops described at struct vcpu_time_info in xen/xen.h.
#include "keel/xen/pvclock.h"

#include <cstddef>

namespace keel::xen {

static_assert(sizeof(vcpu_time_info) == 32);
static_assert(offsetof(vcpu_time_info, version) == 0);
static_assert(offsetof(vcpu_time_info, tsc_timestamp) == 8);
static_assert(offsetof(vcpu_time_info, system_time) == 16);
static_assert(offsetof(vcpu_time_info, tsc_to_system_mul) == 24);
static_assert(offsetof(vcpu_time_info, tsc_shift) == 28);
static_assert(sizeof(vcpu_info) == 64);
static_assert(offsetof(vcpu_info, time) == 32);
static_assert(offsetof(shared_info, wc_version) == 0xc00);
static_assert(offsetof(shared_info, wc_sec) == 0xc04);
static_assert(offsetof(shared_info, wc_nsec) == 0xc08);
static_assert(offsetof(shared_info, wc_sec_hi) == 0xc0c);

namespace {

// Loads of Xen-written fields must not move across the version reads. x86 keeps loads in order;
// this keeps the compiler from reordering them too.
inline void read_barrier() { __atomic_thread_fence(__ATOMIC_ACQUIRE); }

inline void cpu_relax() {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
}

// The version rule of xen/xen.h (struct vcpu_time_info, shared_info's wc_version): Xen makes the
// version odd while it rewrites the record and even again when done, so `read` saw a consistent
// record when the version was even before it and unchanged after it.
template <typename Read>
auto read_consistent(const volatile std::uint32_t& version, Read read) {
    for (;;) {
        const std::uint32_t before = version;
        if (before & 1) {  // Xen is mid-update
            cpu_relax();
            continue;
        }
        read_barrier();
        const auto value = read();
        read_barrier();
        if (version == before) return value;
    }
}

}  // namespace

std::uint64_t pvclock_scale(std::uint64_t tsc_delta, std::uint32_t mul_frac, std::int8_t shift) {
    if (shift >= 64 || shift <= -64) return 0;
    if (shift >= 0)
        tsc_delta <<= shift;
    else
        tsc_delta >>= -shift;
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(tsc_delta) * mul_frac) >> 32);
}

std::uint64_t pvclock_read(const volatile vcpu_time_info& t, std::uint64_t (*rdtsc)()) {
    return read_consistent(t.version, [&] {
        const std::uint64_t stamp = t.tsc_timestamp;
        const std::uint64_t system_time = t.system_time;
        const std::uint32_t mul = t.tsc_to_system_mul;
        const std::int8_t shift = t.tsc_shift;
        const std::uint64_t tsc = rdtsc();
        const std::uint64_t delta = tsc > stamp ? tsc - stamp : 0;
        return system_time + pvclock_scale(delta, mul, shift);
    });
}

WallClock wallclock_read(const volatile shared_info& s) {
    return read_consistent(s.wc_version, [&] {
        const std::uint64_t lo = s.wc_sec;
        const std::uint64_t hi = s.wc_sec_hi;
        const std::uint32_t nsec = s.wc_nsec;
        return WallClock{lo | (hi << 32), nsec};
    });
}

std::uint64_t resume_clock_offset(std::uint64_t offset, std::uint64_t before_ns, std::uint64_t raw_after_ns) {
    if (raw_after_ns + offset >= before_ns) return offset;
    return before_ns - raw_after_ns;
}

}  // namespace keel::xen

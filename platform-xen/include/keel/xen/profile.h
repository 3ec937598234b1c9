// The sampling profiler's table (docs/profiling.md): each sample is the interrupted PC and the
// return addresses of up to max_depth - 1 frame-pointer frames above it; equal stacks share one
// entry with a count. add() runs in the timer interrupt: no allocation, no lock (one vCPU,
// interrupts off), bounded work; a full table counts the sample as dropped. report() runs
// from the loop and prints the functions that were on the CPU most (self samples, the PC's
// function) and the most frequent stacks, symbolized through the caller's function.
//
// Guest side (platform-xen/guest/profile_xen.cc): the command line's profile=HZ (1..1000)
// starts Xen's periodic timer at HZ and samples in the upcall; `xl sysrq DOMAIN p` prints the
// report on the console.
#pragma once

#include <cstddef>
#include <cstdint>

namespace keel::xen {

class StackProfile {
public:
    static constexpr unsigned max_depth = 8;
    struct Entry {
        std::uint64_t pcs[max_depth];
        std::uint32_t count;  ///< 0: a free slot
        std::uint8_t depth;
    };
    /// The function `pc` lies in: its start in *start, where the next one starts in *end (~0:
    /// none; else pc is in [start, end)) and its name in `name` (NUL-terminated, truncated to
    /// n); false if unknown.
    using Symbolizer = bool (*)(std::uint64_t pc, char* name, std::size_t n, std::uint64_t* start,
                                std::uint64_t* end);

    /// `slots` entries of caller-owned storage (zeroed here).
    StackProfile(Entry* table, std::size_t slots);

    /// One sample: pcs[0] the interrupted PC, then return addresses. depth 0 is ignored;
    /// depth above max_depth is cut.
    void add(const std::uint64_t* pcs, unsigned depth);
    std::uint64_t samples() const { return samples_; }
    std::uint64_t dropped() const { return dropped_; }
    std::size_t stacks() const { return used_; }

    /// Up to `top` functions by self samples, then up to `top` stacks, one line per call of
    /// `out`. Aggregating by function needs a scratch table; functions beyond its size are
    /// summed as "(other functions)". Aggregating asks `symbolize` once per function, not per
    /// stack (a lookup reads the symbol table from its start); then once per line printed.
    void report(void (*out)(const char* line), Symbolizer symbolize, unsigned top) const;

private:
    Entry* table_;
    std::size_t slots_;
    std::size_t used_ = 0;
    std::uint64_t samples_ = 0;
    std::uint64_t dropped_ = 0;
};

}  // namespace keel::xen

#include "keel/result.h"

namespace keel::xen {

// ---- guest only (platform-xen/guest/profile_xen.cc)

/// Start sampling `hz` times a second (1..1000: Xen's periodic timer takes 1 ms at least)
/// into `slots` entries at `table` (the caller's, kept for good): Error::invalid_argument
/// outside that, busy if already on, io if Xen refused the timer. The timer is set again after
/// a resume in a new domain.
Result<void> start_profiling(unsigned hz, StackProfile::Entry* table, std::size_t slots);
/// From the upcall (interrupts off): one sample of the interrupted code if a period has passed.
/// `readable` says whether a frame pointer may be followed.
void profile_tick(std::uint64_t rip, std::uint64_t rbp, bool (*readable)(std::uint64_t));
/// The report (top 10) on `out`, or one line saying how to turn profiling on.
void write_profile(void (*out)(const char* line));

}  // namespace keel::xen

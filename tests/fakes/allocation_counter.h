// Counts heap allocations, to prove a data path allocates nothing in steady state
// (allocation_counter.cc replaces the global operator new of the test executable).
#pragma once

#include <cstddef>

namespace keel::test {

/// Counts operator new calls while alive.
struct AllocationCounter {
    AllocationCounter();
    ~AllocationCounter();
    std::size_t count() const;
};

}  // namespace keel::test

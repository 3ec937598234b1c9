// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit hash for tables and sequence
// numbers an attacker must not predict. Written from the paper's description.
#pragma once

#include <cstddef>
#include <cstdint>

namespace keel {

struct SipKey {
    std::uint64_t k0 = 0, k1 = 0;
};

/// SipHash-2-4 of `n` bytes at `data` under `key` (little-endian, as the paper defines it).
std::uint64_t siphash24(const SipKey& key, const void* data, std::size_t n);

}  // namespace keel

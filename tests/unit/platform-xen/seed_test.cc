// Seeds without RDRAND: every input counts, so two boots that differ in anything differ.
#include "keel/xen/seed.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>

namespace keel::xen {
namespace {

SeedInputs typical() {
    SeedInputs in{};
    in.tsc = 123456789;
    in.pvclock_ns = 987654321;
    in.wall_sec = 1700000000;
    in.wall_nsec = 5000;
    for (int i = 0; i < 16; ++i) in.guest_handle[i] = static_cast<std::uint8_t>(i * 17);
    in.start_info_paddr = 0x2d9000;
    in.boot_hash = 0x1234;
    in.stack_addr = 0x1cfe80;
    return in;
}

TEST(Seed, EveryByteOfEveryInputChangesTheSeed) {
    const SeedInputs base = typical();
    const std::uint64_t s0 = mix_seed(base);
    std::set<std::uint64_t> seen{s0};
    for (std::size_t off = 0; off < sizeof(SeedInputs); ++off) {
        SeedInputs in = base;
        reinterpret_cast<unsigned char*>(&in)[off] ^= 0x01;
        const std::uint64_t s = mix_seed(in);
        EXPECT_NE(s, s0) << "byte " << off << " is not mixed";
        seen.insert(s);
    }
    EXPECT_EQ(seen.size(), sizeof(SeedInputs) + 1);
}

TEST(Seed, TwoBootsWithTheSameTscButOtherInputsDiffer) {
    // The old fallback was rdtsc * constant: same TSC, same canary. Now the domain's UUID, the
    // wall clock and where start_info sits make the difference.
    SeedInputs a = typical(), b = typical();
    b.guest_handle[0] ^= 0x80;
    EXPECT_NE(mix_seed(a), mix_seed(b));
    b = typical();
    b.wall_sec += 1;
    EXPECT_NE(mix_seed(a), mix_seed(b));
    b = typical();
    b.start_info_paddr += 0x1000;
    EXPECT_NE(mix_seed(a), mix_seed(b));
}

TEST(Seed, ConsecutiveSeedsDifferByTheCounter) {
    SeedInputs a = typical(), b = typical();
    b.counter = 1;
    EXPECT_NE(mix_seed(a), mix_seed(b));
}

TEST(Seed, BootHashCoversMemoryMapAndCommandLine) {
    BootInfo x{};
    x.region_count = 1;
    x.regions[0] = MemRegion{0, 32 << 20, 1};
    std::memcpy(x.cmdline.data(), "a=b", 4);
    x.cmdline_len = 3;
    BootInfo y = x;
    EXPECT_EQ(hash_boot_info(x), hash_boot_info(y));
    y.regions[0].length += 4096;
    EXPECT_NE(hash_boot_info(x), hash_boot_info(y));
    y = x;
    y.cmdline[2] = 'c';
    EXPECT_NE(hash_boot_info(x), hash_boot_info(y));
}

}  // namespace
}  // namespace keel::xen

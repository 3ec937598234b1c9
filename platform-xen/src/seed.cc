// Seed mixing (seed.h). The fields are copied one by one into a packed buffer so that padding
// never enters the hash and no field is left out by accident (the static_assert counts bytes).
#include "keel/xen/seed.h"

#include "keel/siphash.h"

namespace keel::xen {
namespace {

// A fixed key: the entropy is in the message; the key only makes the mixing keyed SipHash
// rather than a plain function an attacker could invert field by field.
constexpr SipKey mix_key{0x6b65656c2d736565ull, 0x642d6d69782d3131ull};

struct Packer {
    unsigned char buf[12 * 8];  // the fields of SeedInputs, packed
    std::size_t n = 0;
    void add(const void* p, std::size_t len) {
        __builtin_memcpy(buf + n, p, len);
        n += len;
    }
    void add(std::uint64_t v) { add(&v, sizeof v); }
};

}  // namespace

std::uint64_t mix_seed(const SeedInputs& in) {
    Packer p;
    p.add(in.rdrand);
    p.add(in.rdseed);
    p.add(in.tsc);
    p.add(in.pvclock_ns);
    p.add(in.wall_sec);
    p.add(in.wall_nsec);
    p.add(in.guest_handle, sizeof in.guest_handle);
    p.add(in.start_info_paddr);
    p.add(in.boot_hash);
    p.add(in.stack_addr);
    p.add(in.counter);
    static_assert(sizeof(SeedInputs) == sizeof(Packer::buf), "a new SeedInputs field: mix it here");
    return siphash24(mix_key, p.buf, p.n);
}

std::uint64_t hash_boot_info(const BootInfo& info) {
    std::uint64_t h = siphash24(mix_key, info.cmdline.data(), info.cmdline_len);
    for (std::size_t i = 0; i < info.region_count; ++i) {
        const MemRegion& r = info.regions[i];
        const std::uint64_t words[4] = {h, r.base, r.length, r.type};
        h = siphash24(mix_key, words, sizeof words);
    }
    return h;
}

}  // namespace keel::xen

// start_info as a hostile domain builder could lay it out: the input is a little guest-physical
// memory (the start_info address, then pages at addresses the input chooses) holding an
// hvm_start_info, a memory map and a command line with any pointers and counts. The parser must
// reject what is wrong with a reason and read nothing it did not ask for: every map() gets a
// fresh heap copy of exactly the bytes asked for, so ASan catches a read past them.
// The same memory is read as a classic PV bootstrap region too (pseudo-physical == virtual with
// VIRT_BASE 0): a start_info_t, its p2m list and the pages it names, for parse_pv_start_info and
// find_pv_console (seeds pv_*), with the image at a fixed place.
#include <cstring>
#include <memory>
#include <vector>

#include "fuzz_support.h"
#include "keel/xen/pv_start_info.h"
#include "keel/xen/start_info.h"

namespace {

using keel::xen::BootInfo;
using keel::xen::MemRegion;

// Input: u64 start_info address, then chunks of [u64 physical address][u16 length][bytes].
class FuzzPhys final : public keel::xen::PhysReader {
public:
    struct Chunk {
        std::uint64_t base;
        std::vector<std::uint8_t> bytes;
    };
    std::vector<Chunk> chunks;
    mutable std::vector<std::unique_ptr<std::uint8_t[]>> handed_out;

    const void* map(std::uint64_t paddr, std::uint64_t len) const override {
        if (len == 0 || len > (1u << 20)) return nullptr;
        for (const Chunk& c : chunks) {
            if (paddr < c.base || paddr - c.base > c.bytes.size() || len > c.bytes.size() - (paddr - c.base))
                continue;
            auto copy = std::make_unique<std::uint8_t[]>(len);
            std::memcpy(copy.get(), c.bytes.data() + (paddr - c.base), len);
            handed_out.push_back(std::move(copy));
            return handed_out.back().get();
        }
        return nullptr;
    }
};

std::uint64_t take_u64(const std::uint8_t*& p, std::size_t& n) {
    std::uint64_t v = 0;
    const std::size_t k = n < 8 ? n : 8;
    std::memcpy(&v, p, k);
    p += k;
    n -= k;
    return v;
}

// The PV parser over the same memory, and what it promises about what it accepted.
void check_pv(const FuzzPhys& mem, std::uint64_t si_va) {
    using keel::xen::PvBootInfo;
    constexpr keel::xen::PvLayout layout{0x10000, 0x20000};  // the image, as the pv_* seeds place it
    const char* why = nullptr;
    auto console = keel::xen::find_pv_console(mem, si_va, layout, &why);
    if (!console.ok()) CHECK(why != nullptr && why[0] != '\0');
    why = nullptr;
    auto r = keel::xen::parse_pv_start_info(mem, si_va, layout, &why);
    if (!r.ok()) {
        CHECK(why != nullptr && why[0] != '\0');
        return;
    }
    const PvBootInfo& b = r.value();
    CHECK(console.ok() && console.value().ring == b.console.ring &&
          console.value().evtchn == b.console.evtchn);
    CHECK(b.nr_pages >= 1 && b.nr_pages <= PvBootInfo::max_pages);
    CHECK(b.cmdline_len < PvBootInfo::max_cmdline && b.cmdline[b.cmdline_len] == '\0');
    CHECK(std::strlen(b.cmdline.data()) == b.cmdline_len);
    const std::uint64_t ram = b.ram_bytes();
    CHECK(b.start_info % 4096 == 0 && b.start_info >= layout.image_end && b.start_info + 4096 <= ram);
    CHECK(b.console.ring == b.console_pfn * 4096 && b.console.ring >= layout.image_end &&
          b.console.ring + 4096 <= ram);
    CHECK(b.store_pfn * 4096 >= layout.image_end && (b.store_pfn + 1) * 4096 <= ram);
    CHECK(b.store_pfn != b.console_pfn);
    CHECK(b.console.evtchn != 0 && b.console.evtchn < PvBootInfo::max_evtchn);
    CHECK(b.store_evtchn != 0 && b.store_evtchn < PvBootInfo::max_evtchn &&
          b.store_evtchn != b.console.evtchn);
    CHECK(b.shared_info_maddr != 0 && b.shared_info_maddr % 4096 == 0 && b.shared_info_maddr < (1ull << 52));
    CHECK(b.nr_pt_frames >= 4 && b.nr_pt_frames <= 512 && b.pt_base >= layout.image_end &&
          b.pt_base + b.nr_pt_frames * 4096 <= ram);
    CHECK(b.module_len == 0 || (b.module >= layout.image_end && b.module + b.module_len <= ram));
    // The p2m entries of the two rings are the mfns start_info named (the parser looked them up).
    auto p2m = [&](std::uint64_t pfn) {
        std::uint64_t mfn = 0;
        const void* p = mem.map(b.mfn_list + pfn * 8, 8);
        CHECK(p != nullptr);
        std::memcpy(&mfn, p, 8);
        return mfn;
    };
    CHECK(p2m(b.console_pfn) == b.console_mfn && p2m(b.store_pfn) == b.store_mfn);
    // The same memory read again as after a resume (parse_pv_resume_info's rules are a subset of
    // boot's): accepted, with boot's values.
    why = nullptr;
    auto resumed = keel::xen::parse_pv_resume_info(mem, b, b.nr_pages, &why);
    CHECK(resumed.ok());
    CHECK(resumed->shared_info_maddr == b.shared_info_maddr && resumed->store_evtchn == b.store_evtchn &&
          resumed->console_evtchn == b.console.evtchn);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzPhys mem;
    const std::uint64_t si_pa = take_u64(data, size);
    while (size >= 10 && mem.chunks.size() < 8) {
        const std::uint64_t base = take_u64(data, size);
        std::size_t len = data[0] | (std::size_t{data[1]} << 8);
        data += 2;
        size -= 2;
        if (len > size) len = size;
        mem.chunks.push_back({base, std::vector<std::uint8_t>(data, data + len)});
        data += len;
        size -= len;
    }

    check_pv(mem, si_pa);
    const char* why = nullptr;
    auto r = keel::xen::parse_start_info(mem, si_pa, &why);
    if (!r.ok()) {
        CHECK(why != nullptr && why[0] != '\0');  // every rejection says which rule failed
        return 0;
    }
    // What the parser promises about what it accepted.
    const BootInfo& b = r.value();
    CHECK(b.region_count >= 1 && b.region_count <= BootInfo::max_regions);
    CHECK(b.cmdline_len < BootInfo::max_cmdline && b.cmdline[b.cmdline_len] == '\0');
    CHECK(std::strlen(b.cmdline.data()) == b.cmdline_len);
    bool any_ram = false;
    for (std::size_t i = 0; i < b.region_count; ++i) {
        const MemRegion& m = b.regions[i];
        CHECK(m.length > 0 && m.base + m.length > m.base && m.base + m.length <= (1ull << 52));
        if (i > 0) CHECK(b.regions[i - 1].base <= m.base);
        if (m.type != 1) continue;
        any_ram = true;
        CHECK(m.base % 4096 == 0 && m.length % 4096 == 0);
        // RAM overlaps nothing.
        for (std::size_t j = 0; j < b.region_count; ++j) {
            const MemRegion& o = b.regions[j];
            if (j != i) CHECK(o.base >= m.base + m.length || o.base + o.length <= m.base);
        }
    }
    CHECK(any_ram);
    return 0;
}

// parse_start_info against hand-built start_info images in a fake guest-physical buffer.
#include "keel/xen/start_info.h"


#include <gtest/gtest.h>
#include <xen/arch-x86/hvm/start_info.h>
#include <xen/xen.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "refused.h"

namespace keel::xen {
namespace {

constexpr std::uint64_t mem_base = 0x10000;  // physical address of buf[0]; below is unreadable
constexpr std::uint64_t si_pa = 0x10000;
constexpr std::uint64_t map_pa = 0x11000;
constexpr std::uint64_t cmd_pa = 0x12000;

class FakePhys final : public PhysReader {
public:
    FakePhys() : buf(0x8000, 0) {}
    const void* map(std::uint64_t paddr, std::uint64_t len) const override {
        if (paddr < mem_base || len > buf.size() || paddr - mem_base > buf.size() - len) return nullptr;
        return buf.data() + (paddr - mem_base);
    }
    void put(std::uint64_t paddr, const void* data, std::size_t len) {
        std::memcpy(buf.data() + (paddr - mem_base), data, len);
    }
    std::uint64_t end() const { return mem_base + buf.size(); }
    std::vector<std::uint8_t> buf;
};

struct Entry {
    std::uint64_t addr, size;
    std::uint32_t type;
};

class StartInfoTest : public ::testing::Test {
protected:
    void SetUp() override {
        si.magic = XEN_HVM_START_MAGIC_VALUE;
        si.version = 1;
        si.flags = 0x5;
        si.rsdp_paddr = 0xfc000;
        si.cmdline_paddr = cmd_pa;
        set_cmdline("console=hvc0 net.ip=10.0.0.2");
        set_map({{0x100000, 0x3f00000, XEN_HVM_MEMMAP_TYPE_RAM},
                 {0xfc000000, 0x1000000, XEN_HVM_MEMMAP_TYPE_RESERVED},
                 {0, 0xa0000, XEN_HVM_MEMMAP_TYPE_RAM}});
    }
    void set_map(const std::vector<Entry>& entries) {
        for (std::size_t i = 0; i < entries.size(); ++i) {
            hvm_memmap_table_entry e{entries[i].addr, entries[i].size, entries[i].type, 0};
            mem.put(map_pa + i * sizeof(e), &e, sizeof(e));
        }
        si.memmap_paddr = map_pa;
        si.memmap_entries = static_cast<std::uint32_t>(entries.size());
    }
    void set_cmdline(const std::string& s) { mem.put(cmd_pa, s.c_str(), s.size() + 1); }
    Result<BootInfo> parse() {
        mem.put(si_pa, &si, sizeof(si));
        why = nullptr;
        return parse_start_info(mem, si_pa, &why);
    }
    void expect_error(const char* text) {
        auto r = parse();
        expect_refused(r, why, text);
    }

    FakePhys mem;
    hvm_start_info si{};
    const char* why = nullptr;
};

TEST_F(StartInfoTest, ValidStartInfoIsCopiedAndSorted) {
    auto r = parse();
    ASSERT_TRUE(r.ok()) << why;
    const BootInfo& b = r.value();
    EXPECT_EQ(b.version, 1u);
    EXPECT_EQ(b.flags, 0x5u);
    EXPECT_EQ(b.rsdp_paddr, 0xfc000u);
    ASSERT_EQ(b.region_count, 3u);
    EXPECT_EQ(b.regions[0].base, 0u);
    EXPECT_EQ(b.regions[0].length, 0xa0000u);
    EXPECT_EQ(b.regions[1].base, 0x100000u);
    EXPECT_EQ(b.regions[2].base, 0xfc000000u);
    EXPECT_EQ(b.regions[2].type, std::uint32_t{XEN_HVM_MEMMAP_TYPE_RESERVED});
    EXPECT_EQ(b.ram_bytes(), 0xa0000u + 0x3f00000u);
    EXPECT_EQ(b.cmdline_view(), "console=hvc0 net.ip=10.0.0.2");
    EXPECT_EQ(b.cmdline_len, b.cmdline_view().size());
    EXPECT_EQ(b.cmdline[b.cmdline_len], '\0');
}

TEST_F(StartInfoTest, LaterVersionsAreAccepted) {
    si.version = 2;
    auto r = parse();
    ASSERT_TRUE(r.ok()) << why;
    EXPECT_EQ(r->version, 2u);
}

TEST_F(StartInfoTest, NoCommandLineGivesEmptyString) {
    si.cmdline_paddr = 0;
    auto r = parse();
    ASSERT_TRUE(r.ok()) << why;
    EXPECT_EQ(r->cmdline_len, 0u);
    EXPECT_EQ(r->cmdline[0], '\0');
}

TEST_F(StartInfoTest, NullAddressIsRejected) {
    why = nullptr;
    auto r = parse_start_info(mem, 0, &why);
    ASSERT_FALSE(r.ok());
    EXPECT_STREQ(why, "start_info address is 0");
}

TEST_F(StartInfoTest, UnreadableStartInfoIsRejected) {
    why = nullptr;
    auto r = parse_start_info(mem, 0x1000, &why);
    ASSERT_FALSE(r.ok());
    EXPECT_STREQ(why, "start_info is not readable");
    // Version-0 part readable, the rest past the end of memory.
    hvm_start_info copy = si;
    mem.put(mem.end() - 48, &copy, 48);
    r = parse_start_info(mem, mem.end() - 48, &why);
    ASSERT_FALSE(r.ok());
    EXPECT_STREQ(why, "start_info is not readable");
}

TEST_F(StartInfoTest, NullWhyIsAllowed) {
    si.magic = 0;
    mem.put(si_pa, &si, sizeof(si));
    auto r = parse_start_info(mem, si_pa, nullptr);
    EXPECT_EQ(r.error(), Error::bad_input);
}

// start_info headers the parser must refuse: each case changes the valid one from SetUp.
TEST_F(StartInfoTest, BadHeadersAreRejected) {
    const std::uint64_t last_entry_readable = mem.end() - 24;  // the other two entries are not
    struct BadHeader {
        const char* name;
        std::function<void(hvm_start_info&)> change;
        const char* why;
    };
    const BadHeader cases[] = {
        {"wrong magic", [](auto& h) { h.magic = 0x336ec579; },
         "start_info magic is not XEN_HVM_START_MAGIC_VALUE (not a PVH boot?)"},
        {"version 0", [](auto& h) { h.version = 0; }, "no memory map in start_info (version 0)"},
        {"no entries", [](auto& h) { h.memmap_entries = 0; }, "no memory map in start_info (version 1)"},
        {"no map address", [](auto& h) { h.memmap_paddr = 0; }, "no memory map in start_info (version 1)"},
        {"no map address, later version",
         [](auto& h) {
             h.version = 7;
             h.memmap_paddr = 0;
         },
         "no memory map in start_info (version 3 or later)"},
        {"too many entries", [](auto& h) { h.memmap_entries = 129; }, "memory map has more than 128 entries"},
        {"map below memory", [](auto& h) { h.memmap_paddr = 0x2000; }, "memory map is not readable"},
        {"map past the end of memory", [&](auto& h) { h.memmap_paddr = last_entry_readable; },
         "memory map is not readable"},
    };
    const hvm_start_info valid = si;
    for (const BadHeader& c : cases) {
        SCOPED_TRACE(c.name);
        si = valid;
        c.change(si);
        expect_error(c.why);
    }
}

// Memory maps the parser must refuse, each with the reason it gives.
struct BadMap {
    const char* name;
    std::vector<Entry> entries;
    const char* why;
};

TEST_F(StartInfoTest, BadMemoryMapsAreRejected) {
    constexpr std::uint32_t ram = XEN_HVM_MEMMAP_TYPE_RAM;
    constexpr std::uint32_t reserved = XEN_HVM_MEMMAP_TYPE_RESERVED;
    const char* const ram_overlap = "a RAM region overlaps another memory map entry";
    const BadMap cases[] = {
        {"zero-length entry", {{0, 0xa0000, ram}, {0x100000, 0, reserved}}, "memory map entry has length 0"},
        {"wrapping entry",
         {{0, 0xa0000, ram}, {0xfffffffffffff000, 0x2000, reserved}},
         "memory map entry wraps past the end of the address space"},
        {"entry above the physical limit",
         {{0, 0xa0000, ram}, {(1ull << 52) - 0x1000, 0x2000, ram}},
         "memory map entry lies above the 52-bit physical address limit"},
        {"RAM overlapping reserved", {{0, 0x200000, ram}, {0x1ff000, 0x2000, reserved}}, ram_overlap},
        // Not adjacent after sorting: the reserved region spans past the next entry.
        {"RAM inside a wide reserved region",
         {{0x1000, 0x100000, reserved}, {0x2000, 0x1000, XEN_HVM_MEMMAP_TYPE_ACPI}, {0x10000, 0x1000, ram}},
         ram_overlap},
        {"RAM overlapping RAM", {{0, 0x200000, ram}, {0x100000, 0x200000, ram}}, ram_overlap},
        {"no RAM (a RAM entry of less than a page)",
         {{0xfc000000, 0x1000, reserved}, {0x100, 0x800, ram}},
         "memory map has no RAM (at least one whole page)"},
    };
    for (const BadMap& c : cases) {
        SCOPED_TRACE(c.name);
        set_map(c.entries);
        expect_error(c.why);
    }
}

TEST_F(StartInfoTest, OverlappingNonRamIsKept) {
    set_map({{0, 0x200000, XEN_HVM_MEMMAP_TYPE_RAM},
             {0xfc000000, 0x2000, XEN_HVM_MEMMAP_TYPE_RESERVED},
             {0xfc001000, 0x2000, XEN_HVM_MEMMAP_TYPE_ACPI}});
    auto r = parse();
    ASSERT_TRUE(r.ok()) << why;
    EXPECT_EQ(r->region_count, 3u);
}

TEST_F(StartInfoTest, TouchingRegionsOfOneTypeAreMerged) {
    set_map({{0x200000, 0x100000, XEN_HVM_MEMMAP_TYPE_RAM},
             {0, 0x100000, XEN_HVM_MEMMAP_TYPE_RAM},
             {0x100000, 0x100000, XEN_HVM_MEMMAP_TYPE_RAM},
             {0x300000, 0x1000, XEN_HVM_MEMMAP_TYPE_RESERVED}});
    auto r = parse();
    ASSERT_TRUE(r.ok()) << why;
    ASSERT_EQ(r->region_count, 2u);
    EXPECT_EQ(r->regions[0].base, 0u);
    EXPECT_EQ(r->regions[0].length, 0x300000u);
    EXPECT_EQ(r->regions[1].type, std::uint32_t{XEN_HVM_MEMMAP_TYPE_RESERVED});
}

TEST_F(StartInfoTest, UnalignedRamIsTrimmedToWholePages) {
    set_map({{0x800, 0x9f400, XEN_HVM_MEMMAP_TYPE_RAM},       // [0x800, 0x9fc00)
             {0x9fc00, 0x400, XEN_HVM_MEMMAP_TYPE_RESERVED},  // kept as given
             {0x100100, 0x800, XEN_HVM_MEMMAP_TYPE_RAM}});    // less than a page: dropped
    auto r = parse();
    ASSERT_TRUE(r.ok()) << why;
    ASSERT_EQ(r->region_count, 2u);
    EXPECT_EQ(r->regions[0].base, 0x1000u);
    EXPECT_EQ(r->regions[0].length, 0x9f000u - 0x1000u);
    EXPECT_EQ(r->regions[1].base, 0x9fc00u);
    EXPECT_EQ(r->regions[1].length, 0x400u);
    EXPECT_EQ(r->ram_bytes(), 0x9e000u);
}

std::vector<Entry> separate_regions(std::size_t n) {
    std::vector<Entry> v;
    for (std::size_t i = 0; i < n; ++i)  // gaps between regions: nothing merges
        v.push_back(
            {i * 0x10000, 0x1000,
             i % 2 ? std::uint32_t{XEN_HVM_MEMMAP_TYPE_RESERVED} : std::uint32_t{XEN_HVM_MEMMAP_TYPE_RAM}});
    return v;
}

TEST_F(StartInfoTest, SixtyFourRegionsFit) {
    set_map(separate_regions(64));
    auto r = parse();
    ASSERT_TRUE(r.ok()) << why;
    EXPECT_EQ(r->region_count, 64u);
    for (std::size_t i = 1; i < r->region_count; ++i) EXPECT_LT(r->regions[i - 1].base, r->regions[i].base);
}

TEST_F(StartInfoTest, SixtyFiveRegionsDoNot) {
    set_map(separate_regions(65));
    expect_error("memory map has more than 64 distinct regions");
}

TEST_F(StartInfoTest, ManyEntriesThatMergeFit) {
    std::vector<Entry> v;
    for (std::size_t i = 0; i < 128; ++i) v.push_back({(127 - i) * 0x1000, 0x1000, XEN_HVM_MEMMAP_TYPE_RAM});
    set_map(v);
    auto r = parse();
    ASSERT_TRUE(r.ok()) << why;
    ASSERT_EQ(r->region_count, 1u);
    EXPECT_EQ(r->regions[0].length, 128u * 0x1000);
}

TEST_F(StartInfoTest, LongestCommandLineFits) {
    set_cmdline(std::string(2047, 'x'));
    auto r = parse();
    ASSERT_TRUE(r.ok()) << why;
    EXPECT_EQ(r->cmdline_len, 2047u);
    EXPECT_EQ(r->cmdline[2047], '\0');
}

TEST_F(StartInfoTest, CommandLineTooLong) {
    std::string s(2048, 'y');
    mem.put(cmd_pa, s.data(), s.size());  // 2048 bytes, no NUL among them
    expect_error("command line longer than 2047 bytes or unterminated");
}

TEST_F(StartInfoTest, CommandLineUnterminatedAtEndOfMemory) {
    std::string s(16, 'z');
    mem.put(mem.end() - 16, s.data(), s.size());
    si.cmdline_paddr = mem.end() - 16;
    expect_error("command line is not readable");
}

TEST_F(StartInfoTest, ShortCommandLineNearEndOfMemory) {
    mem.put(mem.end() - 4, "abc", 4);  // a whole-2048-byte read would fail here
    si.cmdline_paddr = mem.end() - 4;
    auto r = parse();
    ASSERT_TRUE(r.ok()) << why;
    EXPECT_EQ(r->cmdline_view(), "abc");
}

TEST_F(StartInfoTest, UnreadableCommandLine) {
    si.cmdline_paddr = 0x3000;
    expect_error("command line is not readable");
}

}  // namespace
}  // namespace keel::xen

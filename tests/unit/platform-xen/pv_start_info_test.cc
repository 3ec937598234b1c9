// parse_pv_start_info and find_pv_console against a hand-built PV bootstrap region: a fake
// pseudo-physical memory laid out as xen.h's "Start-of-day memory layout" says (image, p2m,
// start_info, xenstore and console rings, page tables), then one field at a time made hostile.
#include "keel/xen/pv_start_info.h"

#include <gtest/gtest.h>
#include <stdint.h>
#include <xen/xen.h>

#include <cstring>
#include <string>
#include <vector>

#include "refused.h"

namespace keel::xen {
namespace {

constexpr std::uint64_t page = 4096;
constexpr std::uint64_t nr_pages = 64;          // 256 KiB of RAM: pfns [0, 64)
constexpr PvLayout layout{0x10000, 0x20000};    // the image
constexpr std::uint64_t mfn_list_va = 0x20000;  // 64 entries: one page
constexpr std::uint64_t si_va = 0x21000;
constexpr std::uint64_t store_pfn = 0x22, console_pfn = 0x23;
constexpr std::uint64_t pt_va = 0x24000;    // 4 frames
constexpr std::uint64_t mfn_base = 0x5000;  // p2m[pfn] = mfn_base + pfn
constexpr std::uint64_t shared_info_ma = 0x7777000;

// The bootstrap region: readable from 0 up to `limit` (the end of what the builder mapped).
class FakeRegion final : public PhysReader {
public:
    FakeRegion() : buf(nr_pages * page, 0), limit(nr_pages * page) {}
    const void* map(std::uint64_t va, std::uint64_t len) const override {
        ++maps;
        if (len == 0 || va + len < va || va + len > limit) return nullptr;
        return buf.data() + va;
    }
    void put(std::uint64_t va, const void* data, std::size_t len) { std::memcpy(buf.data() + va, data, len); }
    std::vector<std::uint8_t> buf;
    std::uint64_t limit;
    mutable unsigned maps = 0;
};

class PvStartInfoTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::memcpy(si.magic, "xen-3.0-x86_64", 15);
        si.nr_pages = nr_pages;
        si.shared_info = shared_info_ma;
        si.flags = 0;
        si.store_mfn = mfn_base + store_pfn;
        si.store_evtchn = 1;
        si.console.domU.mfn = mfn_base + console_pfn;
        si.console.domU.evtchn = 2;
        si.pt_base = pt_va;
        si.nr_pt_frames = 4;
        si.mfn_list = mfn_list_va;
        si.first_p2m_pfn = 0x20;
        si.nr_p2m_frames = 1;
        set_cmdline("greeting=hi name=\"keel admin\"");
        for (std::uint64_t pfn = 0; pfn < nr_pages; ++pfn) set_p2m(pfn, mfn_base + pfn);
    }
    void set_p2m(std::uint64_t pfn, std::uint64_t mfn) { mem.put(mfn_list_va + pfn * 8, &mfn, 8); }
    void set_cmdline(const std::string& s) {
        std::memset(si.cmd_line, 0, sizeof si.cmd_line);
        std::memcpy(si.cmd_line, s.data(), s.size() < sizeof si.cmd_line ? s.size() : sizeof si.cmd_line);
    }
    Result<PvBootInfo> parse() {
        mem.put(si_va, &si, sizeof si);
        why = nullptr;
        return parse_pv_start_info(mem, si_va, layout, &why);
    }
    void expect_error(const char* text) {
        auto r = parse();
        expect_refused(r, why, text);
    }

    FakeRegion mem;
    start_info_t si{};
    const char* why = nullptr;
};

TEST_F(PvStartInfoTest, AValidStartInfoIsCopiedWithTheRingsFoundThroughTheP2m) {
    auto r = parse();
    ASSERT_TRUE(r.ok()) << why;
    const PvBootInfo& b = r.value();
    EXPECT_EQ(b.start_info, si_va);
    EXPECT_EQ(b.nr_pages, nr_pages);
    EXPECT_EQ(b.ram_bytes(), nr_pages * page);
    EXPECT_EQ(b.shared_info_maddr, shared_info_ma);
    EXPECT_EQ(b.mfn_list, mfn_list_va);
    EXPECT_EQ(b.console_mfn, mfn_base + console_pfn);
    EXPECT_EQ(b.console_pfn, console_pfn);
    EXPECT_EQ(b.console.ring, console_pfn * page);
    EXPECT_EQ(b.console.evtchn, 2u);
    EXPECT_EQ(b.store_mfn, mfn_base + store_pfn);
    EXPECT_EQ(b.store_pfn, store_pfn);
    EXPECT_EQ(b.store_evtchn, 1u);
    EXPECT_EQ(b.pt_base, pt_va);
    EXPECT_EQ(b.nr_pt_frames, 4u);
    EXPECT_EQ(b.module, 0u);
    EXPECT_EQ(b.module_len, 0u);
    EXPECT_EQ(b.cmdline_view(), "greeting=hi name=\"keel admin\"");
    EXPECT_EQ(b.cmdline[b.cmdline_len], '\0');
}

TEST_F(PvStartInfoTest, TheConsoleIsFoundAloneWhenALaterFieldIsBad) {
    si.store_evtchn = 0;
    expect_error("xenstore event channel is 0 or not below 4096");
    auto c = find_pv_console(mem, si_va, layout, &why);
    ASSERT_TRUE(c.ok()) << why;
    EXPECT_EQ(c.value().ring, console_pfn * page);
    EXPECT_EQ(c.value().evtchn, 2u);
}

TEST_F(PvStartInfoTest, NoConsoleWithoutAValidMagic) {
    si.magic[8] = 'X';
    mem.put(si_va, &si, sizeof si);
    auto c = find_pv_console(mem, si_va, layout, &why);
    ASSERT_FALSE(c.ok());
    EXPECT_STREQ(why, "start_info magic is not \"xen-3.0-x86_64\" (not a 64-bit PV boot?)");
}

// ---- cmd_line: MAX_GUEST_CMDLINE bytes, not necessarily terminated ----

TEST_F(PvStartInfoTest, AFullCommandLineWithoutNulIsKeptWholeAndTerminated) {
    std::memset(si.cmd_line, 'a', sizeof si.cmd_line);
    auto r = parse();
    ASSERT_TRUE(r.ok()) << why;
    EXPECT_EQ(r.value().cmdline_len, std::size_t{MAX_GUEST_CMDLINE});
    EXPECT_EQ(r.value().cmdline[MAX_GUEST_CMDLINE], '\0');
    EXPECT_EQ(r.value().cmdline_view(), std::string(MAX_GUEST_CMDLINE, 'a'));
}

TEST_F(PvStartInfoTest, TheCommandLineEndsAtItsFirstNul) {
    set_cmdline(std::string("one\0two", 7));
    auto r = parse();
    ASSERT_TRUE(r.ok()) << why;
    EXPECT_EQ(r.value().cmdline_view(), "one");
}

TEST_F(PvStartInfoTest, AnEmptyCommandLineIsEmpty) {
    set_cmdline("");
    auto r = parse();
    ASSERT_TRUE(r.ok()) << why;
    EXPECT_EQ(r.value().cmdline_len, 0u);
}

// ---- start_info itself ----

TEST_F(PvStartInfoTest, StartInfoAtZeroIsRefused) {
    EXPECT_FALSE(parse_pv_start_info(mem, 0, layout, &why).ok());
    EXPECT_STREQ(why, "start_info address is 0");
}

TEST_F(PvStartInfoTest, AnUnalignedStartInfoIsRefused) {
    mem.put(si_va, &si, sizeof si);
    EXPECT_FALSE(parse_pv_start_info(mem, si_va + 8, layout, &why).ok());
    EXPECT_STREQ(why, "start_info is not page-aligned");
}

TEST_F(PvStartInfoTest, AnUnreadableStartInfoIsRefused) {
    EXPECT_FALSE(parse_pv_start_info(mem, nr_pages * page, layout, &why).ok());
    EXPECT_STREQ(why, "start_info is not readable");
}

TEST_F(PvStartInfoTest, OtherMagicsAreRefused) {
    for (const char* m : {"xen-3.0-x86_32p", "xen-3.0-x86_6", "XEN-3.0-x86_64", ""}) {
        std::memset(si.magic, 0, sizeof si.magic);
        std::memcpy(si.magic, m, std::strlen(m));
        expect_error("start_info magic is not \"xen-3.0-x86_64\" (not a 64-bit PV boot?)");
    }
    // The right text without its NUL is not the right magic either.
    std::memset(si.magic, 'x', sizeof si.magic);
    std::memcpy(si.magic, "xen-3.0-x86_64", 14);
    expect_error("start_info magic is not \"xen-3.0-x86_64\" (not a 64-bit PV boot?)");
}

TEST_F(PvStartInfoTest, TheInitialDomainIsRefused) {
    si.flags = SIF_INITDOMAIN | SIF_PRIVILEGED;
    expect_error("start_info says initial domain (SIF_INITDOMAIN): keel is never dom0");
}

TEST_F(PvStartInfoTest, OtherFlagsAreKept) {
    si.flags = SIF_PRIVILEGED | SIF_VIRT_P2M_4TOOLS;
    auto r = parse();
    ASSERT_TRUE(r.ok()) << why;
    EXPECT_EQ(r.value().flags, std::uint32_t{SIF_PRIVILEGED | SIF_VIRT_P2M_4TOOLS});
}

TEST_F(PvStartInfoTest, NrPagesMustHoldTheImageAndStayBelow1TiB) {
    si.nr_pages = 0;
    expect_error("nr_pages is 0");
    si.nr_pages = (std::uint64_t{1} << 28) + 1;
    expect_error("nr_pages is above 2^28 (1 TiB)");
    si.nr_pages = ~std::uint64_t{0};  // nr_pages * 4096 would wrap
    expect_error("nr_pages is above 2^28 (1 TiB)");
    si.nr_pages = layout.image_end / page - 1;
    expect_error("nr_pages is too few to hold the image");
}

TEST_F(PvStartInfoTest, StartInfoInsideTheImageIsRefused) {
    // The same bytes, but found at an address inside the image.
    mem.put(0x1f000, &si, sizeof si);
    EXPECT_FALSE(parse_pv_start_info(mem, 0x1f000, layout, &why).ok());
    EXPECT_STREQ(why, "start_info lies outside the domain's pages or inside the image");
}

TEST_F(PvStartInfoTest, StartInfoAboveNrPagesIsRefused) {
    si.nr_pages = si_va / page;  // RAM ends where start_info starts
    si.mfn_list = 0;             // (never reached)
    expect_error("start_info lies outside the domain's pages or inside the image");
}

// ---- mfn_list (the p2m) ----

TEST_F(PvStartInfoTest, AMisplacedMfnListIsRefused) {
    si.mfn_list = mfn_list_va + 8;
    expect_error("mfn_list is not page-aligned");
    si.mfn_list = 0x1f000;
    expect_error("mfn_list lies outside the domain's pages or inside the image");
    si.mfn_list = nr_pages * page;
    expect_error("mfn_list lies outside the domain's pages or inside the image");
    si.mfn_list = ~std::uint64_t{0xfff};  // wraps
    expect_error("mfn_list lies outside the domain's pages or inside the image");
    si.mfn_list = si_va;
    expect_error("mfn_list overlaps start_info");
}

TEST_F(PvStartInfoTest, AnUnreadableMfnListIsRefused) {
    mem.put(si_va, &si, sizeof si);
    // Readable start_info, but the reader stops inside the list.
    struct Cut final : PhysReader {
        const FakeRegion* inner;
        const void* map(std::uint64_t va, std::uint64_t len) const override {
            if (va < si_va && va + len > mfn_list_va + 256) return nullptr;
            return inner->map(va, len);
        }
    } cut;
    cut.inner = &mem;
    EXPECT_FALSE(parse_pv_start_info(cut, si_va, layout, &why).ok());
    EXPECT_STREQ(why, "mfn_list is not readable");
}

TEST_F(PvStartInfoTest, AnMfnAbove2To40IsRefused) {
    set_p2m(5, std::uint64_t{1} << 40);
    expect_error("mfn_list has an entry that is not a machine frame below 2^40");
    set_p2m(5, ~std::uint64_t{0});  // INVALID_P2M_ENTRY: no page, yet the builder counted it
    expect_error("mfn_list has an entry that is not a machine frame below 2^40");
}

TEST_F(PvStartInfoTest, AListLongerThanAPageIsReadAPageAtATime) {
    // 1024 pages: a two-page p2m, the console's mfn in its second page.
    const std::uint64_t big = 1024;
    mem.buf.assign(big * page, 0);
    mem.limit = big * page;
    si.nr_pages = big;
    for (std::uint64_t pfn = 0; pfn < big; ++pfn) set_p2m(pfn, mfn_base + pfn);
    // start_info, rings and tables move above the two-page list.
    const std::uint64_t base = 0x22000;
    si.console.domU.mfn = mfn_base + 0x300;
    si.store_mfn = mfn_base + (base >> 12) + 1;
    si.pt_base = base + 2 * page;
    mem.put(base, &si, sizeof si);
    auto r = parse_pv_start_info(mem, base, layout, &why);
    ASSERT_TRUE(r.ok()) << why;
    EXPECT_EQ(r.value().console_pfn, 0x300u);
}

// ---- the rings ----

TEST_F(PvStartInfoTest, ARingWhoseMfnIsNotOursIsRefused) {
    si.console.domU.mfn = 0x99999;
    expect_error("console mfn is not in mfn_list (not our page)");
    si.console.domU.mfn = mfn_base + console_pfn;
    si.store_mfn = 0x99999;
    expect_error("xenstore mfn is not in mfn_list (not our page)");
}

TEST_F(PvStartInfoTest, AnMfnListedTwiceIsRefused) {
    set_p2m(0x30, mfn_base + console_pfn);
    expect_error("console mfn occurs more than once in mfn_list");
    set_p2m(0x30, mfn_base + store_pfn);
    expect_error("xenstore mfn occurs more than once in mfn_list");
}

TEST_F(PvStartInfoTest, ARingInTheImageOrOnAnotherElementIsRefused) {
    si.console.domU.mfn = mfn_base + 0x18;  // pfn 0x18: inside the image
    expect_error("console ring lies outside the domain's pages or inside the image");
    si.console.domU.mfn = mfn_base + (si_va >> 12);
    expect_error("console ring overlaps start_info or mfn_list");
    si.console.domU.mfn = mfn_base + console_pfn;
    si.store_mfn = mfn_base + console_pfn;  // one page for both rings
    expect_error("xenstore ring overlaps start_info, mfn_list or the console ring");
    si.store_mfn = mfn_base + (mfn_list_va >> 12);
    expect_error("xenstore ring overlaps start_info, mfn_list or the console ring");
}

TEST_F(PvStartInfoTest, AnUnmappedRingPageIsRefused) {
    mem.limit = console_pfn * page;  // the bootstrap region ends before the console page
    mem.put(si_va, &si, sizeof si);
    EXPECT_FALSE(parse_pv_start_info(mem, si_va, layout, &why).ok());
    EXPECT_STREQ(why, "console ring page is not readable");
}

TEST_F(PvStartInfoTest, EventChannelsMustBeValidAndDistinct) {
    si.console.domU.evtchn = 0;
    expect_error("console event channel is 0 or not below 4096");
    si.console.domU.evtchn = 4096;
    expect_error("console event channel is 0 or not below 4096");
    si.console.domU.evtchn = 4095;
    si.store_evtchn = 0xffffffff;
    expect_error("xenstore event channel is 0 or not below 4096");
    si.store_evtchn = 4095;
    expect_error("xenstore and console share an event channel");
}

// ---- shared_info ----

TEST_F(PvStartInfoTest, SharedInfoMustBeAPageOfXensBelow2To52) {
    si.shared_info = 0;
    expect_error("shared_info is not a page-aligned machine address below 2^52");
    si.shared_info = shared_info_ma + 8;
    expect_error("shared_info is not a page-aligned machine address below 2^52");
    si.shared_info = std::uint64_t{1} << 52;
    expect_error("shared_info is not a page-aligned machine address below 2^52");
    si.shared_info = (mfn_base + 0x30) * page;  // one of our RAM frames
    expect_error("shared_info is one of our own RAM frames (in mfn_list)");
}

// ---- the bootstrap page tables ----

TEST_F(PvStartInfoTest, ThePageTablesMustBePlausibleAndApart) {
    si.pt_base = pt_va + 1;
    expect_error("pt_base is not page-aligned");
    si.pt_base = pt_va;
    si.nr_pt_frames = 3;
    expect_error("nr_pt_frames is not within 4..512 (one table per level at least)");
    si.nr_pt_frames = 513;
    expect_error("nr_pt_frames is not within 4..512 (one table per level at least)");
    si.nr_pt_frames = 4;
    si.pt_base = console_pfn * page;
    expect_error("bootstrap page tables overlap start_info, mfn_list or a ring");
    si.pt_base = (nr_pages - 2) * page;
    expect_error("bootstrap page tables lie outside the domain's pages or inside the image");
    si.pt_base = ~std::uint64_t{0xfff};  // wraps
    expect_error("bootstrap page tables lie outside the domain's pages or inside the image");
}

// ---- a module (initrd) ----

TEST_F(PvStartInfoTest, AModuleIsKeptWhenItLiesApart) {
    si.mod_start = 0x30000;
    si.mod_len = 0x1800;
    auto r = parse();
    ASSERT_TRUE(r.ok()) << why;
    EXPECT_EQ(r.value().module, 0x30000u);
    EXPECT_EQ(r.value().module_len, 0x1800u);
    si.flags = SIF_MOD_START_PFN;
    si.mod_start = 0x30;
    r = parse();
    ASSERT_TRUE(r.ok()) << why;
    EXPECT_EQ(r.value().module, 0x30000u);
}

TEST_F(PvStartInfoTest, AMisplacedModuleIsRefused) {
    si.mod_len = 0x1000;
    si.mod_start = 0x30008;
    expect_error("module is not page-aligned");
    si.mod_start = pt_va + page;
    expect_error("module overlaps another bootstrap element");
    si.mod_start = 0x30000;
    si.mod_len = nr_pages * page;
    expect_error("module lies outside the domain's pages or inside the image");
    si.mod_len = ~std::uint64_t{0};
    expect_error("module lies outside the domain's pages or inside the image");
    si.mod_len = 0x1000;
    si.mod_start = ~std::uint64_t{0xfff};
    expect_error("module lies outside the domain's pages or inside the image");
    si.flags = SIF_MOD_START_PFN;
    si.mod_start = ~std::uint64_t{0};
    expect_error("module pfn lies outside the domain's pages");
}

TEST_F(PvStartInfoTest, TheP2mFrameRangeMustLieInRam) {
    si.first_p2m_pfn = nr_pages;
    expect_error("first_p2m_pfn + nr_p2m_frames lies outside the domain's pages");
    si.first_p2m_pfn = 1;
    si.nr_p2m_frames = ~std::uint64_t{0};  // the sum would wrap
    expect_error("first_p2m_pfn + nr_p2m_frames lies outside the domain's pages");
    si.first_p2m_pfn = ~std::uint64_t{0};
    si.nr_p2m_frames = 0;  // none: the range is not used
    EXPECT_TRUE(parse().ok()) << why;
}

// After a resume in a new domain the toolstack has rewritten the p2m (every frame new) and
// start_info's first fields; keel checks them against the pfns boot found.
class PvResumeTest : public PvStartInfoTest {
protected:
    static constexpr std::uint64_t new_base = 0x90000;
    void SetUp() override {
        PvStartInfoTest::SetUp();
        auto r = parse();
        ASSERT_TRUE(r.ok()) << why;
        boot = r.value();
        for (std::uint64_t pfn = 0; pfn < nr_pages; ++pfn) set_p2m(pfn, new_base + pfn);
        si.shared_info = 0x8888000;
        si.store_mfn = new_base + store_pfn;
        si.store_evtchn = 3;
        si.console.domU.mfn = new_base + console_pfn;
        si.console.domU.evtchn = 4;
    }
    Result<PvResumeInfo> resume() {
        mem.put(si_va, &si, sizeof si);
        why = nullptr;
        return parse_pv_resume_info(mem, boot, min_pages, &why);
    }
    void expect_resume_error(const char* text) {
        auto r = resume();
        expect_refused(r, why, text);
    }
    PvBootInfo boot{};
    std::uint64_t min_pages = nr_pages;
};

TEST_F(PvResumeTest, TheNewSharedInfoAndPortsAreTaken) {
    auto r = resume();
    ASSERT_TRUE(r.ok()) << why;
    EXPECT_EQ(r->shared_info_maddr, 0x8888000u);
    EXPECT_EQ(r->store_evtchn, 3u);
    EXPECT_EQ(r->console_evtchn, 4u);
}

TEST_F(PvResumeTest, RingFramesMustBeTheP2msForTheSamePages) {
    si.store_mfn = mfn_base + store_pfn;  // the old host's frame
    expect_resume_error("start_info's xenstore frame after the resume is not the p2m's for its page");
    si.store_mfn = new_base + store_pfn;
    si.console.domU.mfn = new_base + store_pfn;  // another page's frame
    expect_resume_error("start_info's console frame after the resume is not the p2m's for its page");
}

TEST_F(PvResumeTest, PortsMustBeInRangeAndDistinct) {
    for (std::uint32_t bad : {0u, 4096u}) {
        si.store_evtchn = bad;
        expect_resume_error("start_info's event channels after the resume are out of range");
    }
    si.store_evtchn = 4;
    expect_resume_error("start_info's xenstore and console event channels after the resume are the same");
}

TEST_F(PvResumeTest, SharedInfoMagicAndSizeAreCheckedAgain) {
    for (std::uint64_t bad : {std::uint64_t{0}, std::uint64_t{0x8888001}, std::uint64_t{1} << 52}) {
        si.shared_info = bad;
        expect_resume_error("start_info's shared_info after the resume is not a page-aligned machine address below 2^52");
    }
    si.shared_info = 0x8888000;
    si.nr_pages = nr_pages + 1;
    expect_resume_error("start_info's nr_pages after the resume is above boot's or below the pages keel maps");
    si.nr_pages = nr_pages - 1;  // below what keel maps
    expect_resume_error("start_info's nr_pages after the resume is above boot's or below the pages keel maps");
    min_pages = nr_pages - 1;  // a p2m trimmed to what is mapped is fine
    EXPECT_TRUE(resume().ok()) << why;
    si.nr_pages = nr_pages;
    si.magic[4] = '4';
    expect_resume_error("start_info magic after the resume is not \"xen-3.0-x86_64\"");
}

TEST_F(PvResumeTest, AnUnreadableStartInfoIsRefused) {
    mem.limit = si_va;
    expect_resume_error("start_info is not readable after the resume");
}

}  // namespace
}  // namespace keel::xen

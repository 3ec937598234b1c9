// Validation of the classic PV start_info (xen/xen.h, "Start-of-day memory layout" and
// struct start_info). A domain builder that lies in any field gets a named refusal, never a
// guess: each rule that fails names itself through `why`.
#include "keel/xen/pv_start_info.h"

#include <stdint.h>

#include <xen/xen.h>

#include <cstddef>

namespace keel::xen {

// The x86_64 layout of start_info_t (xen.h with arch-x86/xen-x86_64.h: unsigned long and
// xen_pfn_t are 8 bytes).
static_assert(sizeof(start_info_t) == 1168);
static_assert(offsetof(start_info_t, magic) == 0);
static_assert(offsetof(start_info_t, nr_pages) == 32);
static_assert(offsetof(start_info_t, shared_info) == 40);
static_assert(offsetof(start_info_t, flags) == 48);
static_assert(offsetof(start_info_t, store_mfn) == 56);
static_assert(offsetof(start_info_t, store_evtchn) == 64);
static_assert(offsetof(start_info_t, console.domU.mfn) == 72);
static_assert(offsetof(start_info_t, console.domU.evtchn) == 80);
static_assert(offsetof(start_info_t, pt_base) == 88);
static_assert(offsetof(start_info_t, nr_pt_frames) == 96);
static_assert(offsetof(start_info_t, mfn_list) == 104);
static_assert(offsetof(start_info_t, mod_start) == 112);
static_assert(offsetof(start_info_t, mod_len) == 120);
static_assert(offsetof(start_info_t, cmd_line) == 128);
static_assert(offsetof(start_info_t, first_p2m_pfn) == 128 + MAX_GUEST_CMDLINE);
static_assert(offsetof(start_info_t, nr_p2m_frames) == 136 + MAX_GUEST_CMDLINE);
static_assert(PvBootInfo::max_cmdline == MAX_GUEST_CMDLINE + 1);

namespace {

constexpr std::uint64_t page_size = 4096;
constexpr std::uint64_t max_mfn = std::uint64_t{1} << 40;  // 52-bit machine addresses
constexpr std::uint64_t phys_limit = std::uint64_t{1} << 52;
constexpr std::uint64_t max_pt_frames = 512;
constexpr char magic[] = "xen-3.0-x86_64";  // what libxc writes for a 64-bit PV guest
constexpr std::uint64_t entries_per_chunk = page_size / sizeof(std::uint64_t);

Error fail(const char** why, const char* text) {
    if (why) *why = text;
    return Error::bad_input;
}

bool page_aligned(std::uint64_t v) { return v % page_size == 0; }
std::uint64_t page_up(std::uint64_t v) { return (v + page_size - 1) & ~(page_size - 1); }

// One bootstrap element: where it lies, and what to say when it is misplaced.
struct Element {
    std::uint64_t lo, hi;
    const char* outside;   // not within [image_end, nr_pages * 4096)
    const char* overlaps;  // overlaps an element checked before it
};

// What both entry points learn on the way to the console.
struct Stage {
    start_info_t si;
    std::uint64_t ram_end;
    std::uint64_t store_pfn = 0, console_pfn = 0;
    unsigned store_hits = 0, console_hits = 0, shared_info_hits = 0;
};

Result<void> place(const Element& e, std::uint64_t ram_end, const PvLayout& layout, const Element* before,
                   std::size_t nbefore, const char** why) {
    if (e.hi <= e.lo || e.lo < layout.image_end || e.hi > ram_end) return fail(why, e.outside);
    for (std::size_t i = 0; i < nbefore; ++i)
        if (e.lo < before[i].hi && before[i].lo < e.hi) return fail(why, e.overlaps);
    return {};
}

Result<void> read_start_info(const PhysReader& mem, std::uint64_t addr, const PvLayout& layout, Stage& s,
                             const char** why) {
    if (addr == 0) return fail(why, "start_info address is 0");
    if (!page_aligned(addr)) return fail(why, "start_info is not page-aligned");
    const void* raw = mem.map(addr, sizeof(start_info_t));
    if (!raw) return fail(why, "start_info is not readable");
    __builtin_memcpy(&s.si, raw, sizeof(start_info_t));
    if (__builtin_memcmp(s.si.magic, magic, sizeof(magic)) != 0)
        return fail(why, "start_info magic is not \"xen-3.0-x86_64\" (not a 64-bit PV boot?)");
    if (s.si.flags & SIF_INITDOMAIN)
        return fail(why, "start_info says initial domain (SIF_INITDOMAIN): keel is never dom0");
    if (s.si.nr_pages == 0) return fail(why, "nr_pages is 0");
    if (s.si.nr_pages > PvBootInfo::max_pages) return fail(why, "nr_pages is above 2^28 (1 TiB)");
    s.ram_end = s.si.nr_pages * page_size;
    if (layout.image_end > s.ram_end) return fail(why, "nr_pages is too few to hold the image");
    return {};
}

// Walks the p2m a page of entries at a time (a reader may map no more than that), checking
// every entry and counting where the console's, xenstore's and shared_info's frames occur.
Result<void> scan_mfn_list(const PhysReader& mem, Stage& s, const char** why) {
    const std::uint64_t n = s.si.nr_pages;
    const std::uint64_t shared_frame = s.si.shared_info / page_size;
    for (std::uint64_t first = 0; first < n; first += entries_per_chunk) {
        const std::uint64_t count = n - first < entries_per_chunk ? n - first : entries_per_chunk;
        const auto* p = static_cast<const unsigned char*>(mem.map(s.si.mfn_list + first * 8, count * 8));
        if (!p) return fail(why, "mfn_list is not readable");
        for (std::uint64_t i = 0; i < count; ++i) {
            std::uint64_t mfn;
            __builtin_memcpy(&mfn, p + i * 8, 8);
            if (mfn >= max_mfn)
                return fail(why, "mfn_list has an entry that is not a machine frame below 2^40");
            if (mfn == s.si.console.domU.mfn && s.console_hits++ == 0) s.console_pfn = first + i;
            if (mfn == s.si.store_mfn && s.store_hits++ == 0) s.store_pfn = first + i;
            if (mfn == shared_frame) ++s.shared_info_hits;
        }
    }
    return {};
}

// start_info, mfn_list and the console ring: enough for the early console.
Result<void> stage_console(const PhysReader& mem, std::uint64_t addr, const PvLayout& layout, Stage& s,
                           Element* placed, std::size_t& nplaced, const char** why) {
    TRY_VOID(read_start_info(mem, addr, layout, s, why));
    const start_info_t& si = s.si;
    placed[nplaced] = {addr, addr + page_size,
                       "start_info lies outside the domain's pages or inside the image", ""};
    TRY_VOID(place(placed[nplaced], s.ram_end, layout, placed, nplaced, why));
    ++nplaced;

    if (!page_aligned(si.mfn_list)) return fail(why, "mfn_list is not page-aligned");
    placed[nplaced] = {si.mfn_list, si.mfn_list + page_up(si.nr_pages * 8),
                       "mfn_list lies outside the domain's pages or inside the image",
                       "mfn_list overlaps start_info"};
    TRY_VOID(place(placed[nplaced], s.ram_end, layout, placed, nplaced, why));
    ++nplaced;
    TRY_VOID(scan_mfn_list(mem, s, why));

    if (s.console_hits == 0) return fail(why, "console mfn is not in mfn_list (not our page)");
    if (s.console_hits > 1) return fail(why, "console mfn occurs more than once in mfn_list");
    placed[nplaced] = {s.console_pfn * page_size, (s.console_pfn + 1) * page_size,
                       "console ring lies outside the domain's pages or inside the image",
                       "console ring overlaps start_info or mfn_list"};
    TRY_VOID(place(placed[nplaced], s.ram_end, layout, placed, nplaced, why));
    ++nplaced;
    if (!mem.map(s.console_pfn * page_size, page_size)) return fail(why, "console ring page is not readable");
    if (si.console.domU.evtchn == 0 || si.console.domU.evtchn >= PvBootInfo::max_evtchn)
        return fail(why, "console event channel is 0 or not below 4096");
    return {};
}

std::size_t copy_cmdline(const start_info_t& si, std::array<char, PvBootInfo::max_cmdline>& out) {
    std::size_t len = 0;
    while (len < MAX_GUEST_CMDLINE && si.cmd_line[len] != 0) {
        out[len] = static_cast<char>(si.cmd_line[len]);
        ++len;
    }
    out[len] = '\0';
    return len;
}

}  // namespace

Result<PvConsole> find_pv_console(const PhysReader& mem, std::uint64_t start_info, const PvLayout& layout,
                                  const char** why) {
    Stage s{};
    Element placed[3];
    std::size_t nplaced = 0;
    TRY_VOID(stage_console(mem, start_info, layout, s, placed, nplaced, why));
    return PvConsole{s.console_pfn * page_size, s.si.console.domU.evtchn};
}

Result<PvBootInfo> parse_pv_start_info(const PhysReader& mem, std::uint64_t start_info,
                                       const PvLayout& layout, const char** why) {
    Stage s{};
    Element placed[6];
    std::size_t nplaced = 0;
    TRY_VOID(stage_console(mem, start_info, layout, s, placed, nplaced, why));
    const start_info_t& si = s.si;

    if (s.store_hits == 0) return fail(why, "xenstore mfn is not in mfn_list (not our page)");
    if (s.store_hits > 1) return fail(why, "xenstore mfn occurs more than once in mfn_list");
    placed[nplaced] = {s.store_pfn * page_size, (s.store_pfn + 1) * page_size,
                       "xenstore ring lies outside the domain's pages or inside the image",
                       "xenstore ring overlaps start_info, mfn_list or the console ring"};
    TRY_VOID(place(placed[nplaced], s.ram_end, layout, placed, nplaced, why));
    ++nplaced;
    if (!mem.map(s.store_pfn * page_size, page_size)) return fail(why, "xenstore ring page is not readable");
    if (si.store_evtchn == 0 || si.store_evtchn >= PvBootInfo::max_evtchn)
        return fail(why, "xenstore event channel is 0 or not below 4096");
    if (si.store_evtchn == si.console.domU.evtchn)
        return fail(why, "xenstore and console share an event channel");

    if (si.shared_info == 0 || !page_aligned(si.shared_info) || si.shared_info >= phys_limit)
        return fail(why, "shared_info is not a page-aligned machine address below 2^52");
    if (s.shared_info_hits != 0) return fail(why, "shared_info is one of our own RAM frames (in mfn_list)");

    if (!page_aligned(si.pt_base)) return fail(why, "pt_base is not page-aligned");
    if (si.nr_pt_frames < 4 || si.nr_pt_frames > max_pt_frames)
        return fail(why, "nr_pt_frames is not within 4..512 (one table per level at least)");
    placed[nplaced] = {si.pt_base, si.pt_base + si.nr_pt_frames * page_size,
                       "bootstrap page tables lie outside the domain's pages or inside the image",
                       "bootstrap page tables overlap start_info, mfn_list or a ring"};
    TRY_VOID(place(placed[nplaced], s.ram_end, layout, placed, nplaced, why));
    ++nplaced;
    if (!mem.map(si.pt_base, si.nr_pt_frames * page_size))
        return fail(why, "bootstrap page tables are not readable");

    PvBootInfo info{};
    if (si.mod_len != 0) {
        std::uint64_t base = si.mod_start;
        if (si.flags & SIF_MOD_START_PFN) {
            if (base >= PvBootInfo::max_pages) return fail(why, "module pfn lies outside the domain's pages");
            base *= page_size;
        }
        if (!page_aligned(base)) return fail(why, "module is not page-aligned");
        if (si.mod_len > s.ram_end)
            return fail(why, "module lies outside the domain's pages or inside the image");
        placed[nplaced] = {base, base + page_up(si.mod_len),
                           "module lies outside the domain's pages or inside the image",
                           "module overlaps another bootstrap element"};
        TRY_VOID(place(placed[nplaced], s.ram_end, layout, placed, nplaced, why));
        ++nplaced;
        info.module = base;
        info.module_len = si.mod_len;
    }

    if (si.nr_p2m_frames != 0 &&
        (si.first_p2m_pfn >= si.nr_pages || si.nr_p2m_frames > si.nr_pages - si.first_p2m_pfn))
        return fail(why, "first_p2m_pfn + nr_p2m_frames lies outside the domain's pages");

    info.start_info = start_info;
    info.nr_pages = si.nr_pages;
    info.shared_info_maddr = si.shared_info;
    info.flags = si.flags;
    info.mfn_list = si.mfn_list;
    info.store_mfn = si.store_mfn;
    info.store_pfn = s.store_pfn;
    info.store_evtchn = si.store_evtchn;
    info.console = PvConsole{s.console_pfn * page_size, si.console.domU.evtchn};
    info.console_mfn = si.console.domU.mfn;
    info.console_pfn = s.console_pfn;
    info.pt_base = si.pt_base;
    info.nr_pt_frames = si.nr_pt_frames;
    info.cmdline_len = copy_cmdline(si, info.cmdline);
    return info;
}

Result<PvResumeInfo> parse_pv_resume_info(const PhysReader& mem, const PvBootInfo& boot, std::uint64_t min_pages,
                                          const char** why) {
    const void* raw = mem.map(boot.start_info, sizeof(start_info_t));
    if (!raw) return fail(why, "start_info is not readable after the resume");
    start_info_t si;
    __builtin_memcpy(&si, raw, sizeof si);
    if (__builtin_memcmp(si.magic, magic, sizeof(magic)) != 0)
        return fail(why, "start_info magic after the resume is not \"xen-3.0-x86_64\"");
    if (si.nr_pages > boot.nr_pages || si.nr_pages < min_pages)
        return fail(why, "start_info's nr_pages after the resume is above boot's or below the pages keel maps");
    if (si.shared_info == 0 || !page_aligned(si.shared_info) || si.shared_info >= phys_limit)
        return fail(why, "start_info's shared_info after the resume is not a page-aligned machine address below 2^52");
    auto p2m_entry = [&](std::uint64_t pfn) -> std::uint64_t {
        const void* e = mem.map(boot.mfn_list + pfn * sizeof(std::uint64_t), sizeof(std::uint64_t));
        std::uint64_t mfn = ~std::uint64_t{0};
        if (e) __builtin_memcpy(&mfn, e, sizeof mfn);
        return mfn;
    };
    if (si.store_mfn != p2m_entry(boot.store_pfn))
        return fail(why, "start_info's xenstore frame after the resume is not the p2m's for its page");
    if (si.console.domU.mfn != p2m_entry(boot.console_pfn))
        return fail(why, "start_info's console frame after the resume is not the p2m's for its page");
    if (si.store_evtchn == 0 || si.store_evtchn >= PvBootInfo::max_evtchn || si.console.domU.evtchn == 0 ||
        si.console.domU.evtchn >= PvBootInfo::max_evtchn)
        return fail(why, "start_info's event channels after the resume are out of range");
    if (si.store_evtchn == si.console.domU.evtchn)
        return fail(why, "start_info's xenstore and console event channels after the resume are the same");
    return PvResumeInfo{si.shared_info, si.store_evtchn, si.console.domU.evtchn};
}

}  // namespace keel::xen

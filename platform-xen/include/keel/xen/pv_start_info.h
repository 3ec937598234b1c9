// The classic 64-bit PV boot handoff (docs/pv.md): Xen enters the image at its
// XEN_ELFNOTE_ENTRY with %rsi = the virtual address of a `start_info_t` (xen/xen.h, "Start-of-day
// memory layout"). keel's notes say VIRT_BASE 0, so in the bootstrap region virtual address ==
// pseudo-physical address (pfn p at p * 4096), and a PhysReader over that region reads it.
// Everything in start_info and in the p2m list it points at is untrusted: validated field by
// field and copied, so nothing later reads the original again.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "keel/result.h"
#include "keel/xen/start_info.h"

namespace keel::xen {

/// Where the image lies (pseudo-physical, [image_start, image_end)): no bootstrap element may
/// overlap it, and the domain must have the pages to hold it.
struct PvLayout {
    std::uint64_t image_start, image_end;
};

/// What the early console needs: the ring page's address in the bootstrap region and its port.
struct PvConsole {
    std::uint64_t ring;  ///< pseudo-physical (= virtual) address of the xencons_interface page
    std::uint32_t evtchn;
};

/// Everything keel keeps from a PV start_info, validated and copied.
struct PvBootInfo {
    static constexpr std::size_t max_cmdline = 1024 + 1;                ///< MAX_GUEST_CMDLINE + our NUL
    static constexpr std::uint64_t max_pages = std::uint64_t{1} << 28;  ///< 1 TiB of RAM
    static constexpr std::uint32_t max_evtchn = 4096;                   ///< the 2-level ABI's ports (64 * 64)

    std::uint64_t start_info;         ///< its address (page-aligned)
    std::uint64_t nr_pages;           ///< RAM is pfns [0, nr_pages); no memory map in PV
    std::uint64_t shared_info_maddr;  ///< a machine address: map it, never read it as is
    std::uint32_t flags;              ///< SIF_xxx
    std::uint64_t mfn_list;           ///< the p2m: nr_pages machine frame numbers
    std::uint64_t store_mfn, store_pfn;
    std::uint32_t store_evtchn;
    PvConsole console;
    std::uint64_t console_mfn, console_pfn;
    std::uint64_t pt_base, nr_pt_frames;    ///< the bootstrap page tables (mapped read-only)
    std::uint64_t module, module_len;       ///< pseudo-physical address and length; 0, 0 if none
    std::array<char, max_cmdline> cmdline;  ///< NUL-terminated copy
    std::size_t cmdline_len;                ///< without the NUL

    std::uint64_t ram_bytes() const { return nr_pages * 4096; }
    std::string_view cmdline_view() const { return {cmdline.data(), cmdline_len}; }
};

/// Validate and copy the start_info_t at `start_info`. Rules, each failing with Error::bad_input
/// and, if `why` is not null, a static string naming it:
/// - start_info is page-aligned and readable; magic is "xen-3.0-x86_64" (NUL-terminated);
/// - not SIF_INITDOMAIN (its console union means something else, and keel is never dom0);
/// - 1 <= nr_pages <= max_pages, and the image lies within them;
/// - mfn_list is page-aligned and readable for nr_pages entries; every entry is a machine frame
///   below 2^40; the console and xenstore mfns each occur exactly once (their pfns are where
///   the pages are mapped), shared_info's frame not at all (it is Xen's page, not RAM);
/// - console and xenstore: pages readable and distinct, ports in [1, max_evtchn) and distinct;
/// - shared_info: page-aligned, not 0, below 2^52;
/// - the page tables: page-aligned, 4..512 frames (one per level at least), readable;
/// - a module (mod_len != 0; mod_start a pfn with SIF_MOD_START_PFN): page-aligned, within RAM;
/// - first_p2m_pfn + nr_p2m_frames within RAM;
/// - start_info, mfn_list, the two rings, the page tables and the module lie within RAM, above
///   the image, and overlap neither the image nor each other;
/// - cmd_line: up to MAX_GUEST_CMDLINE bytes, up to the first NUL; not necessarily terminated.
Result<PvBootInfo> parse_pv_start_info(const PhysReader& mem, std::uint64_t start_info,
                                       const PvLayout& layout, const char** why);

/// What start_info says again after a resume in a new domain (xen.h: its first fields are
/// filled in again; the rest is what the guest left there).
struct PvResumeInfo {
    std::uint64_t shared_info_maddr;
    std::uint32_t store_evtchn, console_evtchn;
};

/// Validate start_info after a resume, against what boot validated (`boot`): the magic again;
/// nr_pages not above boot's and not below `min_pages` (the pages keel maps: a toolstack may
/// restore a p2m trimmed to what the guest uses); shared_info a page-aligned machine address below 2^52, not 0; the
/// xenstore and console frames those the p2m (now the new host's, read at boot.mfn_list) gives
/// for the same pfns as at boot; the two ports in [1, max_evtchn) and distinct.
Result<PvResumeInfo> parse_pv_resume_info(const PhysReader& mem, const PvBootInfo& boot, std::uint64_t min_pages,
                                          const char** why);

/// Only what the early console needs (magic, nr_pages, mfn_list, the console's mfn and port),
/// under the same rules: when parse_pv_start_info fails for another field, the reason can
/// still be printed.
Result<PvConsole> find_pv_console(const PhysReader& mem, std::uint64_t start_info, const PvLayout& layout,
                                  const char** why);

}  // namespace keel::xen

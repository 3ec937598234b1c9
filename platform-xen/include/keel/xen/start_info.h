// The PVH boot handoff: Xen (or the toolstack) leaves a `struct hvm_start_info` in guest
// memory and passes its physical address in %ebx. Everything in it is untrusted input: it is
// validated field by field and copied out, so nothing later reads the original again.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "keel/result.h"

namespace keel::xen {

/// Read access to guest-physical memory. The guest implementation returns an identity-mapped
/// pointer below 4 GiB; tests return a pointer into a buffer.
struct PhysReader {
    virtual ~PhysReader() = default;
    /// A pointer to `len` readable bytes at `paddr`, or nullptr if any of them is not readable.
    /// The pointer may be unaligned.
    virtual const void* map(std::uint64_t paddr, std::uint64_t len) const = 0;
};

/// One entry of the memory map. `type` is an E820 type (XEN_HVM_MEMMAP_TYPE_RAM = 1, ...).
struct MemRegion {
    std::uint64_t base, length;
    std::uint32_t type;
};

/// Everything keel keeps from start_info, validated and copied.
struct BootInfo {
    static constexpr std::size_t max_regions = 64;
    static constexpr std::size_t max_cmdline = 2048;  ///< bytes, including the NUL

    /// Sorted by base. RAM regions are whole pages and overlap nothing; touching regions of the
    /// same type are merged.
    std::array<MemRegion, max_regions> regions;
    std::size_t region_count;
    std::array<char, max_cmdline> cmdline;  ///< NUL-terminated copy
    std::size_t cmdline_len;                ///< without the NUL
    std::uint64_t rsdp_paddr;               ///< 0 if Xen gave none
    std::uint32_t version, flags;           ///< start_info version and SIF_xxx flags

    /// Sum of the lengths of the RAM regions.
    std::uint64_t ram_bytes() const;
    std::string_view cmdline_view() const { return {cmdline.data(), cmdline_len}; }
};

/// Validate and copy the hvm_start_info at `start_info_paddr`.
/// Rules: the magic must match; version >= 1 with a memory map of 1..128 entries; every entry
/// non-empty, not wrapping and below the 52-bit physical limit; RAM overlaps nothing; RAM is
/// trimmed inward to whole 4 KiB pages (a RAM entry smaller than a page is dropped); at least
/// one page of RAM; at most max_regions regions after merging; the command line (if any) is
/// NUL-terminated within max_cmdline bytes. On error returns Error::bad_input and, if `why` is
/// not null, sets *why to a static string that says which rule failed.
Result<BootInfo> parse_start_info(const PhysReader& mem, std::uint64_t start_info_paddr, const char** why);

}  // namespace keel::xen

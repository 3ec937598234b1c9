// Guest-virtual to guest-physical translation: the x86-64 4-level page walk from cr3, through
// the Target's physical reads (Intel SDM vol. 3, 4.5 "4-level paging").
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "target.h"

namespace keel::gdbserver {

inline constexpr std::uint64_t kPageSize = 4096;

/// The guest-physical address of virtual address va under regs' paging mode, or nullopt when
/// va is not mapped (an entry not present, a non-canonical address, 5-level paging, or a
/// table the Target cannot read). Paging off (cr0.PG clear): va itself.
std::optional<std::uint64_t> translate(Target& target, const Registers& regs, std::uint64_t va);

/// Copies [va, va + len) through the walk, page by page. Returns how many bytes were copied:
/// fewer than len when a page on the way is not mapped (0: not even the first).
std::size_t read_virtual(Target& target, const Registers& regs, std::uint64_t va, void* buf, std::size_t len);
std::size_t write_virtual(Target& target, const Registers& regs, std::uint64_t va, const void* buf,
                          std::size_t len);

}  // namespace keel::gdbserver

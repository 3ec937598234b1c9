// Fault reports and backtraces for the console: what the trap handlers print before crashing
// the domain, and what panic prints. No allocation, no formatter from the kernel (this layer
// is below it): each line is built in a fixed buffer and handed to `out`.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace keel::xen {

/// Registers as the trap entry stub leaves them on the stack, r15 at the lowest address.
/// The stub pushes (after the CPU's ss, rsp, rflags, cs, rip and, for vectors without one, a
/// dummy error code 0) the vector, then rax, rbx, ..., r15, and passes the final rsp as the
/// TrapFrame pointer.
struct TrapFrame {
    std::uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
    std::uint64_t vector, error_code;
    std::uint64_t rip, cs, rflags, rsp, ss;  // pushed by the CPU
};
static_assert(sizeof(TrapFrame) == 22 * sizeof(std::uint64_t));
static_assert(__builtin_offsetof(TrapFrame, r15) == 0);
static_assert(__builtin_offsetof(TrapFrame, rbp) == 8 * sizeof(std::uint64_t));
static_assert(__builtin_offsetof(TrapFrame, rax) == 14 * sizeof(std::uint64_t));
static_assert(__builtin_offsetof(TrapFrame, vector) == 15 * sizeof(std::uint64_t));
static_assert(__builtin_offsetof(TrapFrame, error_code) == 16 * sizeof(std::uint64_t));
static_assert(__builtin_offsetof(TrapFrame, rip) == 17 * sizeof(std::uint64_t));
static_assert(__builtin_offsetof(TrapFrame, ss) == 21 * sizeof(std::uint64_t));

/// A stack guard range [lo, hi): a page fault with cr2 inside it is reported as a stack
/// overflow. lo == hi marks an unused slot.
struct GuardRange {
    std::uint64_t lo, hi;
};

/// Everything write_fault_report needs.
struct FaultContext {
    static constexpr std::size_t max_guards = 4;
    const TrapFrame* frame;
    std::uint64_t cr2;                     ///< read by the #PF handler; ignored for other vectors
    const std::uint8_t* ksyms;             ///< the .ksyms blob (keel_ksyms), or nullptr
    std::size_t ksyms_size;                ///< readable bytes at ksyms
    bool (*readable)(std::uint64_t addr);  ///< may the 8 bytes at addr be read? nullptr: none
    std::array<GuardRange, max_guards> guards;
    GuardRange tables;                     ///< the page tables: a write there is named as such
};

/// Frames a backtrace prints at most (frame #0, the faulting rip, included).
inline constexpr int max_backtrace_depth = 32;

/// Bits of the page-fault error code (Intel SDM vol. 3, 4.7).
inline constexpr std::uint64_t pf_present = 1u << 0;  ///< protection violation (else not present)
inline constexpr std::uint64_t pf_write = 1u << 1;
inline constexpr std::uint64_t pf_user = 1u << 2;
inline constexpr std::uint64_t pf_reserved = 1u << 3;  ///< reserved bit set in a paging entry
inline constexpr std::uint64_t pf_fetch = 1u << 4;     ///< instruction fetch
inline constexpr std::uint64_t pf_pkey = 1u << 5;
inline constexpr std::uint64_t pf_shadow_stack = 1u << 6;

/// One-line cause of a page fault: "write to a read-only page", "read of an unmapped page (null
/// pointer dereference)", "stack guard page hit (stack overflow)", ... (static string). Below
/// 64 KiB (never mapped) an unmapped access is a null pointer dereference; a write into
/// `tables` is a write to a page-table page.
const char* page_fault_cause(std::uint64_t error_code, std::uint64_t cr2,
                             const std::array<GuardRange, FaultContext::max_guards>& guards,
                             GuardRange tables = {});

/// Name and mnemonic of an exception vector: ("page fault", "#PF"). Vectors 32+ are
/// ("interrupt", "IRQ"); reserved ones ("reserved exception", "#??").
struct VectorName {
    const char* name;
    const char* mnemonic;
};
VectorName vector_name(std::uint64_t vector);

/// The fault report, one call of `out` per line (no trailing newline): the fault line
/// ("FAULT: page fault (#PF, vector 14) error=0x2: write to a read-only page"), the symbolized
/// rip, cr2 (for #PF), all registers, then the backtrace.
void write_fault_report(const FaultContext& ctx, void (*out)(const char* line));

/// "backtrace:" and one line per frame: #0 is `rip`, then the return addresses found by walking
/// the frame-pointer chain from `rbp` ([rbp] = caller's rbp, [rbp+8] = return address). Stops at
/// rbp == 0 or a zero return address (end of chain), or with a note at an unreadable or
/// misaligned frame, a frame that does not lie above the previous one (a loop or a corrupt
/// chain), or after max_backtrace_depth frames. Every word is checked with `readable` before
/// it is read.
void write_backtrace(std::uint64_t rbp, std::uint64_t rip, const std::uint8_t* ksyms, std::size_t ksyms_size,
                     bool (*readable)(std::uint64_t addr), void (*out)(const char* line));

}  // namespace keel::xen

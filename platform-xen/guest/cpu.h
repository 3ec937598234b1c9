// Small x86 helpers for platform-xen/guest (private to this folder).
#pragma once

#include <cstdint>

namespace keel::xen::cpu {

struct CpuidResult { std::uint32_t a, b, c, d; };
inline CpuidResult cpuid(std::uint32_t leaf, std::uint32_t sub = 0) {
    CpuidResult r;
    asm volatile("cpuid" : "=a"(r.a), "=b"(r.b), "=c"(r.c), "=d"(r.d) : "a"(leaf), "c"(sub));
    return r;
}
inline void wrmsr(std::uint32_t msr, std::uint64_t v) {
    asm volatile("wrmsr" ::"c"(msr), "a"(static_cast<std::uint32_t>(v)), "d"(static_cast<std::uint32_t>(v >> 32)));
}
inline std::uint64_t rdmsr(std::uint32_t msr) {
    std::uint32_t lo, hi;
    asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return (static_cast<std::uint64_t>(hi) << 32) | lo;
}
inline void outb(std::uint16_t port, std::uint8_t v) { asm volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
/// Plain rdtsc: rdtscp traps under QEMU TCG in nested Xen (see shared nested-xen notes).
inline std::uint64_t rdtsc() {
    std::uint32_t lo, hi;
    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (static_cast<std::uint64_t>(hi) << 32) | lo;
}
inline std::uint64_t read_cr0() { std::uint64_t v; asm volatile("mov %%cr0, %0" : "=r"(v)); return v; }
inline std::uint64_t read_cr2() { std::uint64_t v; asm volatile("mov %%cr2, %0" : "=r"(v)); return v; }
inline std::uint64_t read_cr3() { std::uint64_t v; asm volatile("mov %%cr3, %0" : "=r"(v)); return v; }
inline std::uint64_t read_cr4() { std::uint64_t v; asm volatile("mov %%cr4, %0" : "=r"(v)); return v; }
inline void write_cr0(std::uint64_t v) { asm volatile("mov %0, %%cr0" ::"r"(v) : "memory"); }
inline void write_cr3(std::uint64_t v) { asm volatile("mov %0, %%cr3" ::"r"(v) : "memory"); }
inline void write_cr4(std::uint64_t v) { asm volatile("mov %0, %%cr4" ::"r"(v) : "memory"); }
inline void cli() { asm volatile("cli" ::: "memory"); }
inline void sti() { asm volatile("sti" ::: "memory"); }
/// sti's one-instruction interrupt shadow makes "sti; hlt" atomic: an interrupt that became
/// pending after the check is taken right after hlt starts, so no wakeup is lost.
inline void sti_hlt() { asm volatile("sti; hlt" ::: "memory"); }
inline bool rdrand(std::uint64_t& out) {
    unsigned char ok;
    asm volatile("rdrand %0; setc %1" : "=r"(out), "=qm"(ok));
    return ok != 0;
}
inline bool rdseed(std::uint64_t& out) {
    unsigned char ok;
    asm volatile("rdseed %0; setc %1" : "=r"(out), "=qm"(ok));
    return ok != 0;
}
inline std::uint64_t read_rbp() { return reinterpret_cast<std::uint64_t>(__builtin_frame_address(0)); }

constexpr std::uint32_t msr_efer = 0xc0000080;

}  // namespace keel::xen::cpu

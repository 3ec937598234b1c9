// The debugged machine as the protocol sees it: pause, resume, one vCPU's registers and the
// guest's physical memory. xen_target.cc implements it with libxenctrl for a PVH domain;
// tests/unit/tools/gdbserver implements it in memory.
#pragma once

#include <cstddef>
#include <cstdint>

namespace keel::gdbserver {

/// The registers gdb's amd64 'g' packet carries (in this order, without a target description:
/// rax rbx rcx rdx rsi rdi rbp rsp r8..r15 rip eflags cs ss ds es fs gs), plus the control
/// registers the page walk needs.
struct Registers {
    std::uint64_t rax = 0, rbx = 0, rcx = 0, rdx = 0, rsi = 0, rdi = 0, rbp = 0, rsp = 0;
    std::uint64_t r8 = 0, r9 = 0, r10 = 0, r11 = 0, r12 = 0, r13 = 0, r14 = 0, r15 = 0;
    std::uint64_t rip = 0, rflags = 0;
    std::uint32_t cs = 0, ss = 0, ds = 0, es = 0, fs = 0, gs = 0;
    std::uint64_t cr0 = 0, cr3 = 0, cr4 = 0, efer = 0;
};

/// One debuggable guest. Every call may fail (the domain went away, a frame is not the
/// guest's): false, never an abort. Physical accesses never cross a 4 KiB frame.
class Target {
public:
    virtual ~Target() = default;
    /// Stops every vCPU. Calls are balanced with resume() by the caller.
    virtual bool pause() = 0;
    virtual bool resume() = 0;
    /// False once the domain no longer exists (it was destroyed or crashed).
    virtual bool alive() = 0;
    virtual bool registers(unsigned vcpu, Registers& out) = 0;
    /// Guest-physical memory: [gpa, gpa + len) lies inside one 4 KiB frame.
    virtual bool read_physical(std::uint64_t gpa, void* buf, std::size_t len) = 0;
    virtual bool write_physical(std::uint64_t gpa, const void* buf, std::size_t len) = 0;
};

}  // namespace keel::gdbserver

// Fault reports and frame-pointer backtraces. Runs in trap context on a possibly broken kernel:
// no allocation, bounded stack use, and no memory read without asking `readable` first.
#include "keel/xen/fault_report.h"

#include "keel/xen/ksyms.h"

namespace keel::xen {
namespace {

/// A tiny line formatter: strings, hex and decimal into a fixed buffer, silently truncated.
class Line {
public:
    Line& str(const char* s) {
        while (s && *s) put(*s++);
        return *this;
    }
    /// 0x followed by all 16 digits (registers line up).
    Line& hex16(std::uint64_t v) { return hex_digits(v, 16); }
    /// 0x followed by the significant digits only.
    Line& hex(std::uint64_t v) {
        int digits = 1;
        while (digits < 16 && (v >> (4 * digits)) != 0) ++digits;
        return hex_digits(v, digits);
    }
    Line& dec(std::uint64_t v) {
        char tmp[20];
        int n = 0;
        do {
            tmp[n++] = static_cast<char>('0' + v % 10);
            v /= 10;
        } while (v != 0);
        while (n > 0) put(tmp[--n]);
        return *this;
    }
    /// " <name+0xoff>" for the symbol at or below `addr`, or nothing when it has none. A name
    /// longer than the line's buffer is cut there (it ends in "..."), like the line itself.
    Line& symbol(const std::uint8_t* ksyms, std::size_t ksyms_size, std::uint64_t addr,
                 std::uint64_t extra_offset = 0) {
        char name[sizeof(buf_)];
        const std::optional<Symbol> s = symbolize(ksyms, ksyms_size, addr, name);
        if (s) str(" <").str(s->name).str("+").hex(s->offset + extra_offset).str(">");
        return *this;
    }
    const char* c_str() {
        buf_[len_] = '\0';
        return buf_;
    }

private:
    Line& hex_digits(std::uint64_t v, int digits) {
        str("0x");
        for (int i = digits - 1; i >= 0; --i) put("0123456789abcdef"[(v >> (4 * i)) & 0xf]);
        return *this;
    }
    void put(char c) {
        if (len_ + 1 < sizeof(buf_)) buf_[len_++] = c;
    }
    char buf_[256];
    std::size_t len_ = 0;
};

bool in_guard(std::uint64_t addr, const std::array<GuardRange, FaultContext::max_guards>& guards) {
    for (const GuardRange& g : guards)
        if (g.lo < g.hi && addr >= g.lo && addr < g.hi) return true;
    return false;
}

// Nothing is mapped below 64 KiB (address_space.h): a fault there is a null pointer plus an offset.
constexpr std::uint64_t null_page_end = 64 * 1024;

void reg_line(void (*out)(const char*), const char* n0, std::uint64_t v0, const char* n1, std::uint64_t v1,
              const char* n2, std::uint64_t v2, const char* n3, std::uint64_t v3) {
    Line l;
    l.str("  ").str(n0).hex16(v0).str(" ").str(n1).hex16(v1).str(" ").str(n2).hex16(v2);
    l.str(" ").str(n3).hex16(v3);
    out(l.c_str());
}

std::uint64_t load(std::uint64_t addr) { return *reinterpret_cast<const std::uint64_t*>(addr); }

}  // namespace

VectorName vector_name(std::uint64_t vector) {
    static constexpr VectorName names[32] = {
        {"divide error", "#DE"},
        {"debug exception", "#DB"},
        {"non-maskable interrupt", "NMI"},
        {"breakpoint", "#BP"},
        {"overflow", "#OF"},
        {"bound range exceeded", "#BR"},
        {"invalid opcode", "#UD"},
        {"device not available", "#NM"},
        {"double fault", "#DF"},
        {"coprocessor segment overrun", "#CSO"},
        {"invalid TSS", "#TS"},
        {"segment not present", "#NP"},
        {"stack-segment fault", "#SS"},
        {"general protection fault", "#GP"},
        {"page fault", "#PF"},
        {"reserved exception", "#??"},
        {"x87 floating-point error", "#MF"},
        {"alignment check", "#AC"},
        {"machine check", "#MC"},
        {"SIMD floating-point exception", "#XM"},
        {"virtualization exception", "#VE"},
        {"control protection exception", "#CP"},
        {"reserved exception", "#??"},
        {"reserved exception", "#??"},
        {"reserved exception", "#??"},
        {"reserved exception", "#??"},
        {"reserved exception", "#??"},
        {"reserved exception", "#??"},
        {"hypervisor injection exception", "#HV"},
        {"VMM communication exception", "#VC"},
        {"security exception", "#SX"},
        {"reserved exception", "#??"},
    };
    if (vector < 32) return names[vector];
    return {"interrupt", "IRQ"};
}

const char* page_fault_cause(std::uint64_t error_code, std::uint64_t cr2,
                             const std::array<GuardRange, FaultContext::max_guards>& guards, GuardRange tables) {
    // Most specific first: a guard hit is also "write to an unmapped page".
    if (in_guard(cr2, guards)) return "stack guard page hit (stack overflow)";
    if ((error_code & pf_write) && cr2 >= tables.lo && cr2 < tables.hi)
        return "write to a page-table page (page tables are read-only once built)";
    if (error_code & pf_reserved) return "reserved bit set in a page-table entry (corrupt page tables)";
    if (error_code & pf_pkey) return "protection-key violation";
    if (error_code & pf_shadow_stack) return "shadow-stack access violation";
    const bool present = error_code & pf_present;
    const bool null_page = cr2 < null_page_end;
    if (error_code & pf_fetch) {
        if (present) return "instruction fetch from a non-executable page";
        return null_page ? "instruction fetch from an unmapped page (call through a null pointer)"
                         : "instruction fetch from an unmapped page";
    }
    if (error_code & pf_write) {
        if (present) return "write to a read-only page";
        return null_page ? "write to an unmapped page (null pointer dereference)"
                         : "write to an unmapped page";
    }
    if (present) return "read of a page that denies reads (protection violation)";
    return null_page ? "read of an unmapped page (null pointer dereference)" : "read of an unmapped page";
}

void write_fault_report(const FaultContext& ctx, void (*out)(const char* line)) {
    if (!out) return;
    if (!ctx.frame) {
        out("FAULT: no trap frame");
        return;
    }
    const TrapFrame& f = *ctx.frame;
    const VectorName vn = vector_name(f.vector);
    {
        Line l;
        l.str("FAULT: ").str(vn.name).str(" (").str(vn.mnemonic).str(", vector ").dec(f.vector);
        l.str(") error=").hex(f.error_code);
        if (f.vector == 14) l.str(": ").str(page_fault_cause(f.error_code, ctx.cr2, ctx.guards, ctx.tables));
        out(l.c_str());
    }
    {
        Line l;
        l.str("  at rip=").hex16(f.rip).symbol(ctx.ksyms, ctx.ksyms_size, f.rip);
        out(l.c_str());
    }
    if (f.vector == 14) {
        Line l;
        l.str("  cr2=").hex16(ctx.cr2);
        out(l.c_str());
    }
    // A fetch fault right after a call or jump into data: the return address on top of the
    // stack names the caller, which the frame-pointer chain below would skip (it never ran a
    // prologue in the faulting "function").
    if (f.vector == 14 && (f.error_code & pf_fetch) != 0 && ctx.readable && ctx.readable(f.rsp)) {
        const std::uint64_t ret = load(f.rsp);
        Line l;
        l.str("  called from ").hex16(ret).symbol(ctx.ksyms, ctx.ksyms_size, ret - 1);
        out(l.c_str());
    }
    reg_line(out, "rax=", f.rax, "rbx=", f.rbx, "rcx=", f.rcx, "rdx=", f.rdx);
    reg_line(out, "rsi=", f.rsi, "rdi=", f.rdi, "rbp=", f.rbp, "rsp=", f.rsp);
    reg_line(out, "r8 =", f.r8, "r9 =", f.r9, "r10=", f.r10, "r11=", f.r11);
    reg_line(out, "r12=", f.r12, "r13=", f.r13, "r14=", f.r14, "r15=", f.r15);
    reg_line(out, "rip=", f.rip, "rfl=", f.rflags, "cs =", f.cs, "ss =", f.ss);
    write_backtrace(f.rbp, f.rip, ctx.ksyms, ctx.ksyms_size, ctx.readable, out);
}

void write_backtrace(std::uint64_t rbp, std::uint64_t rip, const std::uint8_t* ksyms, std::size_t ksyms_size,
                     bool (*readable)(std::uint64_t addr), void (*out)(const char* line)) {
    if (!out) return;
    out("backtrace:");
    {
        Line l;
        l.str("  #0  ").hex16(rip).symbol(ksyms, ksyms_size, rip);
        out(l.c_str());
    }
    std::uint64_t fp = rbp;
    for (int depth = 1;; ++depth) {
        if (fp == 0) return;  // the boot path starts the chain with rbp = 0
        if (fp & 7) {
            Line l;
            out(l.str("  (frame pointer ").hex(fp).str(" is misaligned; stopping)").c_str());
            return;
        }
        if (fp + 16 < fp || !readable || !readable(fp) || !readable(fp + 8)) {
            Line l;
            out(l.str("  (frame pointer ").hex(fp).str(" is not readable; stopping)").c_str());
            return;
        }
        const std::uint64_t next = load(fp);
        const std::uint64_t ret = load(fp + 8);
        if (ret == 0) return;
        if (depth == max_backtrace_depth) {
            Line l;
            out(l.str("  (stopped after ").dec(max_backtrace_depth).str(" frames)").c_str());
            return;
        }
        {
            // A return address points after its call; symbolize the call itself so a call
            // that ends a function is not blamed on the next one.
            Line l;
            l.str("  #").dec(static_cast<std::uint64_t>(depth)).str(depth < 10 ? "  " : " ").hex16(ret);
            l.symbol(ksyms, ksyms_size, ret - 1, 1);
            out(l.c_str());
        }
        if (next != 0 && next <= fp) {  // stacks grow down: callers' frames lie above
            Line l;
            out(l.str("  (next frame pointer ")
                    .hex(next)
                    .str(" is not above ")
                    .hex(fp)
                    .str("; loop or corrupt chain, stopping)")
                    .c_str());
            return;
        }
        fp = next;
    }
}

}  // namespace keel::xen

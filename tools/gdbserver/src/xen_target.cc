#include "xen_target.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

// Xen's toolstack headers declare C functions without extern "C"; they also need GNU C++
// (anonymous unions in xen/hvm/save.h): built with -std=gnu++20. xenctrl.h first: it sets
// up the guest-handle types the public headers use.
// clang-format off
extern "C" {
#include <xenctrl.h>
#include <xenforeignmemory.h>
#include <xen/hvm/save.h>
}
// clang-format on

namespace keel::gdbserver {

struct XenTarget::Handles {
    xc_interface* xch = nullptr;
    xenforeignmemory_handle* fmem = nullptr;
    ~Handles() {
        if (fmem) xenforeignmemory_close(fmem);
        if (xch) xc_interface_close(xch);
    }
};

XenTarget::XenTarget(std::uint32_t domid, std::unique_ptr<Handles> h) : domid_(domid), h_(std::move(h)) {}
XenTarget::~XenTarget() = default;

std::unique_ptr<XenTarget> XenTarget::open(std::uint32_t domid, std::string& why) {
    auto h = std::make_unique<Handles>();
    h->xch = xc_interface_open(nullptr, nullptr, 0);
    if (!h->xch) {
        why = "xc_interface_open failed (not dom0, or not root?)";
        return nullptr;
    }
    h->fmem = xenforeignmemory_open(nullptr, 0);
    if (!h->fmem) {
        why = "xenforeignmemory_open failed (is xen-privcmd loaded?)";
        return nullptr;
    }
    xc_dominfo_t info{};
    if (xc_domain_getinfo(h->xch, domid, 1, &info) != 1 || info.domid != domid) {
        why = "no domain " + std::to_string(domid);
        return nullptr;
    }
    auto t = std::unique_ptr<XenTarget>(new XenTarget(domid, std::move(h)));
    t->pv_ = !info.hvm;
    return t;
}

bool XenTarget::pause() { return xc_domain_pause(h_->xch, domid_) == 0; }
bool XenTarget::resume() { return xc_domain_unpause(h_->xch, domid_) == 0; }

bool XenTarget::alive() {
    xc_dominfo_t info{};
    return xc_domain_getinfo(h_->xch, domid_, 1, &info) == 1 && info.domid == domid_ && !info.dying &&
           !info.crashed && !info.shutdown;
}

namespace {

// The general registers, rip and rflags: the same names in the HVM save record (hvm_hw_cpu) and
// in a PV vCPU's cpu_user_regs.
template <typename Saved>
void copy_gprs(const Saved& r, Registers& out) {
    out.rax = r.rax, out.rbx = r.rbx, out.rcx = r.rcx, out.rdx = r.rdx;
    out.rsi = r.rsi, out.rdi = r.rdi, out.rbp = r.rbp, out.rsp = r.rsp;
    out.r8 = r.r8, out.r9 = r.r9, out.r10 = r.r10, out.r11 = r.r11;
    out.r12 = r.r12, out.r13 = r.r13, out.r14 = r.r14, out.r15 = r.r15;
    out.rip = r.rip, out.rflags = r.rflags;
}

}  // namespace

// A classic PV guest (64-bit): its registers from xc_vcpu_getcontext. It always runs in long
// mode with 4-level paging (the control registers the walk checks are set so), and its page
// tables and cr3 name machine frames, which is also what xenforeignmemory_map takes for a PV
// domain: the walk's "physical" addresses are machine addresses here, unchanged.
bool XenTarget::pv_registers(unsigned vcpu, Registers& out) {
    vcpu_guest_context_any_t ctx{};
    if (vcpu > 0xffff || xc_vcpu_getcontext(h_->xch, domid_, vcpu, &ctx) != 0) return false;
    const auto& r = ctx.x64.user_regs;
    out = Registers{};
    copy_gprs(r, out);
    out.cs = r.cs, out.ss = r.ss, out.ds = r.ds, out.es = r.es, out.fs = r.fs, out.gs = r.gs;
    constexpr std::uint64_t cr0_pe = 1, cr0_pg = 1ull << 31, cr4_pae = 1ull << 5, efer_lme = 1ull << 8,
                            efer_lma = 1ull << 10;
    out.cr0 = cr0_pe | cr0_pg;
    out.cr4 = cr4_pae;
    out.efer = efer_lme | efer_lma;
    out.cr3 = ctx.x64.ctrlreg[3];  // xen_pfn_to_cr3 on x86_64: the root's mfn << 12
    return true;
}

bool XenTarget::registers(unsigned vcpu, Registers& out) {
    if (pv_) return pv_registers(vcpu, out);
    hvm_hw_cpu c{};
    if (vcpu > 0xffff || xc_domain_hvm_getcontext_partial(h_->xch, domid_, HVM_SAVE_CODE(CPU),
                                                          static_cast<uint16_t>(vcpu), &c, sizeof c) != 0)
        return false;
    out = Registers{};
    copy_gprs(c, out);
    out.cs = c.cs_sel, out.ss = c.ss_sel, out.ds = c.ds_sel, out.es = c.es_sel, out.fs = c.fs_sel,
    out.gs = c.gs_sel;
    out.cr0 = c.cr0, out.cr3 = c.cr3, out.cr4 = c.cr4, out.efer = c.msr_efer;
    return true;
}

bool XenTarget::access(std::uint64_t gpa, void* buf, std::size_t len, bool write) {
    const std::uint64_t off = gpa & (XC_PAGE_SIZE - 1);
    if (len == 0) return true;
    if (off + len > XC_PAGE_SIZE) return false;
    xen_pfn_t gfn = gpa >> XC_PAGE_SHIFT;
    int err = 0;
    void* page =
        xenforeignmemory_map(h_->fmem, domid_, write ? PROT_READ | PROT_WRITE : PROT_READ, 1, &gfn, &err);
    if (!page) return false;
    if (err == 0) {
        if (write)
            std::memcpy(static_cast<char*>(page) + off, buf, len);
        else
            std::memcpy(buf, static_cast<const char*>(page) + off, len);
    }
    xenforeignmemory_unmap(h_->fmem, page, 1);
    return err == 0;
}

bool XenTarget::read_physical(std::uint64_t gpa, void* buf, std::size_t len) {
    return access(gpa, buf, len, false);
}

bool XenTarget::write_physical(std::uint64_t gpa, const void* buf, std::size_t len) {
    return access(gpa, const_cast<void*>(buf), len, true);
}

}  // namespace keel::gdbserver

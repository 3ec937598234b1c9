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
    if (!info.hvm) {
        // A PV guest's registers come from xc_vcpu_getcontext and its page tables hold machine
        // frames: not done (keel boots as PVH).
        why = "domain " + std::to_string(domid) + " is PV; only PVH/HVM guests are supported";
        return nullptr;
    }
    return std::unique_ptr<XenTarget>(new XenTarget(domid, std::move(h)));
}

bool XenTarget::pause() { return xc_domain_pause(h_->xch, domid_) == 0; }
bool XenTarget::resume() { return xc_domain_unpause(h_->xch, domid_) == 0; }

bool XenTarget::alive() {
    xc_dominfo_t info{};
    return xc_domain_getinfo(h_->xch, domid_, 1, &info) == 1 && info.domid == domid_ && !info.dying &&
           !info.crashed && !info.shutdown;
}

bool XenTarget::registers(unsigned vcpu, Registers& out) {
    hvm_hw_cpu c{};
    if (vcpu > 0xffff || xc_domain_hvm_getcontext_partial(h_->xch, domid_, HVM_SAVE_CODE(CPU),
                                                          static_cast<uint16_t>(vcpu), &c, sizeof c) != 0)
        return false;
    out = Registers{};
    out.rax = c.rax, out.rbx = c.rbx, out.rcx = c.rcx, out.rdx = c.rdx;
    out.rsi = c.rsi, out.rdi = c.rdi, out.rbp = c.rbp, out.rsp = c.rsp;
    out.r8 = c.r8, out.r9 = c.r9, out.r10 = c.r10, out.r11 = c.r11;
    out.r12 = c.r12, out.r13 = c.r13, out.r14 = c.r14, out.r15 = c.r15;
    out.rip = c.rip, out.rflags = c.rflags;
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

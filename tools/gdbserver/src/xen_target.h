// Target for a PVH (HVM) or classic 64-bit PV domain through Xen's toolstack libraries, run in
// dom0 as root: libxenctrl for pause/unpause and the vCPU state (PVH: the HVM save record CPU,
// xen/hvm/save.h; PV: xc_vcpu_getcontext), libxenforeignmemory to map guest frames (guest
// frames in PVH, machine frames in PV: what the page tables hold either way). No gdbsx, no
// hypervisor debugger support needed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "target.h"

namespace keel::gdbserver {

class XenTarget final : public Target {
public:
    /// Opens the libraries and checks that domid exists. On failure: nullptr and why.
    static std::unique_ptr<XenTarget> open(std::uint32_t domid, std::string& why);
    ~XenTarget() override;

    bool pause() override;
    bool resume() override;
    bool alive() override;
    bool registers(unsigned vcpu, Registers& out) override;
    bool read_physical(std::uint64_t gpa, void* buf, std::size_t len) override;
    bool write_physical(std::uint64_t gpa, const void* buf, std::size_t len) override;

private:
    struct Handles;
    XenTarget(std::uint32_t domid, std::unique_ptr<Handles> h);
    bool access(std::uint64_t gpa, void* buf, std::size_t len, bool write);
    bool pv_registers(unsigned vcpu, Registers& out);

    std::uint32_t domid_;
    bool pv_ = false;
    std::unique_ptr<Handles> h_;
};

}  // namespace keel::gdbserver

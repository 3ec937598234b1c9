// Target for a PVH (HVM) domain through Xen's toolstack libraries, run in dom0 as root:
// libxenctrl for pause/unpause and the vCPU state (the HVM save record CPU, xen/hvm/save.h),
// libxenforeignmemory to map guest frames. No gdbsx, no hypervisor debugger support needed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "target.h"

namespace keel::gdbserver {

class XenTarget final : public Target {
public:
    /// Opens the libraries and checks that domid exists and is HVM/PVH. On failure: nullptr
    /// and why.
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

    std::uint32_t domid_;
    std::unique_ptr<Handles> h_;
};

}  // namespace keel::gdbserver

// A bounded list of devices of one kind, for the layer above the code that finds them (netfront's
// vifs for the net layer, blkfront's disks, block::devices()). Pure and header-only.
//
//   Registry<Netfront, 8> g_vifs;
//   TRY_VOID(g_vifs.add(nic));  for (Netfront* n : g_vifs.devices()) ...
//
// Context: event loop only. Devices live forever once added (callers keep pointers).
#pragma once

#include <cstddef>
#include <span>

#include "keel/result.h"

namespace keel {

template <typename Device, std::size_t N>
class Registry {
public:
    static constexpr std::size_t capacity = N;

    /// In the order they were added (discovery: xenstore order).
    std::span<Device* const> devices() const { return {devices_, count_}; }
    /// Error::no_space beyond N.
    Result<void> add(Device& device) {
        if (count_ == N) return Error::no_space;
        devices_[count_++] = &device;
        return {};
    }
    /// Forget every device (tests).
    void clear() { count_ = 0; }

private:
    Device* devices_[N] = {};
    std::size_t count_ = 0;
};

}  // namespace keel

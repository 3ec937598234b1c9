// The devices of one frontend class that discovery found, for the layer above (the net layer
// takes netfront's, block:: takes blkfront's). Pure and header-only.
//
//   xenbus::Registry<Netfront> g_vifs;
//   TRY_VOID(g_vifs.add(nic));  for (Netfront* n : g_vifs.devices()) ...
//
// Context: event loop only. Devices live forever once added (callers keep pointers).
#pragma once

#include <cstddef>
#include <span>

#include "keel/result.h"

namespace keel::xenbus {

/// The most devices of one class a guest takes (ids beyond are logged and left alone).
inline constexpr std::size_t max_devices = 8;

template <typename Device, std::size_t N = max_devices>
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

}  // namespace keel::xenbus

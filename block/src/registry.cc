// The disks of block::devices(): added by the drivers at discovery, read by services.
#include "keel/block/block.h"

namespace keel::block {
namespace {
Device* g_devices[max_devices];
std::size_t g_count = 0;
}  // namespace

std::span<Device* const> devices() { return {g_devices, g_count}; }

Event& discovered() {
    static Event event;
    return event;
}

Result<void> add_device(Device& device) {
    if (g_count == max_devices) return Error::no_space;
    g_devices[g_count++] = &device;
    return {};
}

void clear_devices() {
    g_count = 0;
    discovered().reset();
}

}  // namespace keel::block

// The disks of block::devices(): added by the drivers at discovery, read by services.
#include "keel/block/block.h"

#include "keel/registry.h"

namespace keel::block {
namespace {
Registry<Device, max_devices> g_registry;
}  // namespace

std::span<Device* const> devices() { return g_registry.devices(); }

Event& discovered() {
    static Event event;
    return event;
}

Result<void> add_device(Device& device) { return g_registry.add(device); }

void clear_devices() {
    g_registry.clear();
    discovered().reset();
}

}  // namespace keel::block

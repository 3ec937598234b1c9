// Link-time registration of driver start-up functions, so the kernel starts the frontends
// above it without knowing them (arrows point down). Run in `order`, after memory, the event
// loop and logging are up and before the service starts.
#pragma once

namespace keel {

// 16-byte aligned and sized, so the linker packs the entries of all objects without gaps
// (GCC aligns 16-byte globals to 16 on x86-64; link.ld aligns the table start to match).
struct alignas(16) InitEntry {
    const char* name;
    void (*fn)();
};

}  // namespace keel

/// KEEL_INIT(10, console, start_console): order is two digits (00-99); lower runs first.
#define KEEL_INIT(order, name, fn)                                                        \
    [[gnu::used, gnu::section(".keel_init." #order)]] static const ::keel::InitEntry \
        keel_init_##name = {#name, fn}

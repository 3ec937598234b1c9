// For fuzz targets that play a Xen daemon against a client on an event channel: the channel
// does nothing (the target steps the client itself) but count the client's waits.
#pragma once

#include "keel/function.h"
#include "keel/xen/event_channel.h"

namespace keel::fuzz {

struct Port final : xen::EventChannel {
    unsigned waits = 0;
    void notify() override {}
    void wait() override { ++waits; }
    void set_handler(Function<void()>) override {}
};

}  // namespace keel::fuzz

// What a driver needs from one event channel. The guest implementation (xen::Port) issues
// hypercalls; tests/unit has fakes that play the other end.
#pragma once

#include <cstdint>

#include "keel/function.h"

namespace keel::xen {

/// One bound event channel, seen from a frontend driver.
/// Context: all methods run in the event loop (never from the upcall).
class EventChannel {
public:
    virtual ~EventChannel() = default;
    /// Tell the other end that something changed in the shared page (EVTCHNOP_send).
    virtual void notify() = 0;
    /// Block the vCPU until this port is pending (or 1 s passes), then clear it. Only for paths
    /// that cannot yield (console output when the ring is full); everything else uses
    /// set_handler. Other ports' events wait meanwhile (delayed, not lost).
    virtual void wait() = 0;
    /// Run `handler` from the event loop each time the port fires (replaces any earlier one).
    virtual void set_handler(Function<void()> handler) = 0;
};

}  // namespace keel::xen

// The service API: what an application implements. One service per image.
//
//   class Hello final : public keel::Service {
//       keel::Task<int> run(const keel::CommandLine& args) override { ...; co_return 0; }
//   };
//   KEEL_SERVICE(Hello)
#pragma once

#include "keel/cmdline.h"
#include "keel/task.h"

namespace keel {

class Service {
public:
    virtual ~Service() = default;
    /// The service body, started once the kernel is up, with the parsed guest command line
    /// (xl `cmdline = "..."`). When it returns, the guest powers off: 0 cleanly
    /// (on_poweroff applies), anything else as a crash (on_crash applies).
    virtual Task<int> run(const CommandLine& args) = 0;
    /// `xl shutdown` / `xl reboot` asked the guest to stop: make run() return soon. The kernel
    /// waits up to stop_timeout_ns for it, then powers off (or reboots) anyway.
    virtual void stop() {}
};

/// How long the kernel waits for run() to return after stop().
inline constexpr std::uint64_t stop_timeout_ns = 10'000'000'000ull;

/// Ask the kernel to power the guest off once the current work yields (as if run() returned).
void request_poweroff(int status);

/// What the toolstack asked for (`xl shutdown` / `xl reboot`).
enum class StopReason { poweroff, reboot };
/// Call the service's stop(), then power off or reboot when run() returns (or after
/// stop_timeout_ns). Later requests are ignored: the first one decides. xenbus/'s control
/// watch calls it; guest only.
void request_stop(StopReason reason);

}  // namespace keel

/// Registers the image's service. Exactly one per image.
#define KEEL_SERVICE(Type)                         \
    keel::Service& keel_service_instance() {       \
        static Type instance;                      \
        return instance;                           \
    }

keel::Service& keel_service_instance();

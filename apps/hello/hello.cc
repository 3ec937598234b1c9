// hello: prints the Xen version it runs on, its memory and its command line, then powers off.
// With `wait` on the command line it stays up until `xl shutdown` (or `xl reboot`).
#include "keel/log.h"
#include "keel/service.h"
#include "keel/xen/platform.h"

namespace {

class Hello final : public keel::Service {
public:
    keel::Task<int> run(const keel::CommandLine& args) override {
        const auto v = keel::xen::xen_version();
        const auto& boot = keel::xen::boot_info();
        KLOG_INFO("hello from keel on Xen %u.%u%s", v.major, v.minor, v.extra);
        KLOG_INFO("memory: %lu MiB", static_cast<unsigned long>(boot.ram_bytes() >> 20));
        KLOG_INFO("command line: \"%.*s\" (%zu words)", static_cast<int>(args.text().size()), args.text().data(),
                  args.size());
        if (args.has("wait")) {
            KLOG_INFO("waiting for xl shutdown");
            co_await stopped_.wait();
            KLOG_INFO("hello: stop requested, leaving");
        }
        co_return 0;
    }
    void stop() override { stopped_.set(); }

private:
    keel::Event stopped_;
};

}  // namespace

KEEL_SERVICE(Hello)

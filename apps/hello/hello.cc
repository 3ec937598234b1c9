// hello: prints the Xen version it runs on, its memory and its command line, then powers off.
// With `wait` on the command line it stays up until `xl shutdown` (or `xl reboot`).
#include "keel/console/console.h"
#include "keel/log.h"
#include "keel/service.h"
#include "keel/system.h"

namespace {

class Hello final : public keel::Service {
public:
    keel::Task<int> run(const keel::CommandLine& args) override {
        const auto v = keel::hypervisor_version();
        KLOG_INFO("hello from keel on Xen %u.%u%s", v.major, v.minor, v.extra);
        KLOG_INFO("memory: %lu MiB", static_cast<unsigned long>(keel::ram_bytes() >> 20));
        KLOG_INFO("command line: \"%.*s\" (%zu words)", static_cast<int>(args.text().size()), args.text().data(),
                  args.size());
        if (args.has("wait")) {
            // Lines typed in `xl console` are echoed to the log.
            if (auto* console = keel::console::active()) {
                console->set_input_handler([this](std::string_view bytes) { on_input(bytes); });
            }
            KLOG_INFO("waiting for xl shutdown");
            co_await stopped_.wait();
            KLOG_INFO("hello: stop requested, leaving");
        }
        co_return 0;
    }
    void stop() override { stopped_.set(); }

private:
    void on_input(std::string_view bytes) {
        for (char c : bytes) {
            if (c == '\r' || c == '\n') {
                if (line_len_ > 0) KLOG_INFO("console input: %.*s", static_cast<int>(line_len_), line_);
                line_len_ = 0;
            } else if (line_len_ < sizeof(line_)) {
                line_[line_len_++] = c;
            }
        }
    }

    char line_[128];
    std::size_t line_len_ = 0;
    keel::Event stopped_;
};

}  // namespace

KEEL_SERVICE(Hello)

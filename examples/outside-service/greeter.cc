// greeter: prints where it runs, brings the network up from its command line (ip=ADDR/PREFIX
// gw=ADDR, else DHCP) and answers every TCP connection on port 7 (port=N) with one line, until
// xl shutdown. Built outside keel's tree, against the installed SDK (CMakeLists.txt).
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

#include "keel/log.h"
#include "keel/net/net.h"
#include "keel/net/serve.h"
#include "keel/service.h"
#include "keel/system.h"
#include "keel/task.h"
#include "keel/timer.h"

namespace {

constexpr std::string_view greeting = "hello from greeter, a keel service built outside the tree\n";

class Greeter final : public keel::Service {
public:
    keel::Task<int> run(const keel::CommandLine& args) override {
        const auto v = keel::hypervisor_version();
        KLOG_INFO("greeter: built outside the tree, running on Xen %u.%u%s", v.major, v.minor, v.extra);
        const char* why = nullptr;
        auto cfg = keel::net::parse_config(args, &why);
        if (!cfg.ok()) {
            KLOG_ERROR("greeter: bad network configuration: %s", why ? why : keel::to_string(cfg.error()));
            co_return 1;
        }
        const auto port = args.get_uint("port", 7, 1, 65535);
        if (!port) {
            KLOG_ERROR("greeter: bad command line: want port=1..65535");
            co_return 1;
        }
        const auto listen_port = static_cast<std::uint16_t>(*port);
        auto listener = co_await keel::net::start_listening(cfg.value(), listen_port, "greeter");
        if (!listener.ok()) co_return 1;  // (start_listening logged why)
        listener_ = std::move(listener.value());
        KLOG_INFO("greeter: listening on port %u", listen_port);
        keel::spawn(keel::net::serve(listener_, 16, conns_, "greeter", [this](keel::net::TcpStream s) {
            ++greeted_;
            return greet(std::move(s));
        }));
        co_await stopped_.wait();
        KLOG_INFO("greeter: stopping, connections greeted: %lu", static_cast<unsigned long>(greeted_));
        co_return 0;
    }

    void stop() override { stopped_.set(); }

private:
    static keel::Task<void> greet(keel::net::TcpStream conn) {
        const auto bytes = std::as_bytes(std::span(greeting.data(), greeting.size()));
        auto written = co_await conn.write_for(bytes, keel::s(5));
        if (!written.ok()) {
            KLOG_WARN("greeter: write failed: %s", keel::to_string(written.error()));
            conn.abort();
            co_return;
        }
        (void)co_await conn.close();
    }

    keel::net::TcpListener listener_;
    keel::net::ServeCounters conns_;
    std::uint64_t greeted_ = 0;
    keel::Event stopped_;
};

}  // namespace

KEEL_SERVICE(Greeter)

// httpd: an HTTP/1.1 server (GET, HEAD, keep-alive) for the static pages in site.cc and
// /metrics in the Prometheus text format. Network setup from the command line: ip=ADDR/PREFIX
// gw=ADDR for a static address, else DHCP. port=N (default 80), max-conns=N (default 256; more
// are refused at once), request-timeout=S (default 10: a request's first byte to its last),
// idle-timeout=S (default 15: keep-alive with no request), write-timeout=S (default 30: a
// whole response).
#include <cstddef>
#include <cstdint>

#include "conn.h"
#include "http.h"
#include "keel/log.h"
#include "keel/metrics.h"
#include "keel/net/net.h"
#include "keel/net/serve.h"
#include "keel/service.h"
#include "keel/timer.h"
#include "site.h"

namespace keel::httpd {
namespace {

class Httpd final : public Service {
public:
    Task<int> run(const CommandLine& args) override {
        const char* why = nullptr;
        auto cfg = net::parse_config(args, &why);
        if (!cfg.ok()) {
            KLOG_ERROR("httpd: bad network configuration: %s", why ? why : to_string(cfg.error()));
            co_return 1;
        }
        const auto port = args.get_uint("port", 80, 1, 65535);
        const auto max_conns = args.get_uint("max-conns", 256, 1, 4096);
        const auto request_s = args.get_uint("request-timeout", 10, 1, 3600);
        const auto idle_s = args.get_uint("idle-timeout", 15, 1, 3600);
        const auto write_s = args.get_uint("write-timeout", 30, 1, 3600);
        if (!port || !max_conns || !request_s || !idle_s || !write_s) {
            KLOG_ERROR("httpd: bad command line: want port=1..65535, max-conns=1..4096 and "
                       "request-timeout, idle-timeout, write-timeout=1..3600 (seconds)");
            co_return 1;
        }
        limits_ = {s(*request_s), s(*idle_s), s(*write_s)};
        port_ = static_cast<std::uint16_t>(*port);
        max_conns_ = static_cast<unsigned>(*max_conns);

        auto listener = co_await net::start_listening(cfg.value(), port_, "httpd");
        if (!listener.ok()) co_return 1;
        listener_ = std::move(listener.value());
        router_.set_metrics("/metrics", [this](MetricsWriter& w) { write_metrics(w); });
        KLOG_INFO("httpd: serving on port %u (at most %u connections; timeouts: request %lu s, idle %lu s, "
                  "write %lu s)",
                  port_, max_conns_, static_cast<unsigned long>(*request_s), static_cast<unsigned long>(*idle_s),
                  static_cast<unsigned long>(*write_s));
        spawn(net::serve(listener_, max_conns_, conns_, "httpd",
                         [this](net::TcpStream s) {
                             return http::serve_connection(std::move(s), router_, options_, limits_);
                         }));
        co_await stopped_.wait();
        KLOG_INFO("httpd: stopping after %lu requests", static_cast<unsigned long>(stats_.requests));
        co_return 0;
    }

    void stop() override { stopped_.set(); }

private:
    // Every component's families (kernel, console, netfront, net, ...: keel/metrics.h), then
    // httpd's own.
    void write_metrics(MetricsWriter& w) {
        metrics::write_all(w);
        w.gauge("keel_http_connections", "HTTP connections being served.", conns_.open);
        w.counter("keel_http_refused_connections_total", "Connections refused over max-conns.", conns_.refused);
        w.counter("keel_http_refused_memory_connections_total",
                  "Connections refused while the heap was under the serve reserve.", conns_.refused_memory);
        http::write_metrics(w, stats_);
    }

    http::Router router_{site()};
    http::Stats stats_{};
    net::TcpListener listener_;
    Event stopped_;
    std::uint16_t port_ = 80;
    unsigned max_conns_ = 256;
    net::ServeCounters conns_;
    http::SessionOptions options_{.stats = &stats_};
    http::ConnLimits limits_;
};

}  // namespace
}  // namespace keel::httpd

KEEL_SERVICE(keel::httpd::Httpd)

// httpd: an HTTP/1.1 server (GET, HEAD, keep-alive) for the static pages in site.cc and
// /metrics in the Prometheus text format. Network setup from the command line: ip=ADDR/PREFIX
// gw=ADDR for a static address, else DHCP. port=N (default 80), max-conns=N (default 256; more
// are refused at once), request-timeout=S (default 10: a request's first byte to its last),
// idle-timeout=S (default 15: keep-alive with no request), write-timeout=S (default 30: a
// whole response).
#include <cstddef>

#include "conn.h"
#include "http.h"
#include "keel/console/console.h"
#include "keel/heap.h"
#include "keel/log.h"
#include "keel/net/net.h"
#include "keel/net/serve.h"
#include "keel/net/stats.h"
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
        router_.set_metrics("/metrics", [this](http::MetricsWriter& w) { write_metrics(w); });
        started_ns_ = loop().now();
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
    void write_metrics(http::MetricsWriter& w) {
        const auto& ns = net::stats();
        w.gauge("keel_uptime_seconds", "Seconds since the service started.",
                static_cast<std::int64_t>((loop().now() - started_ns_) / 1'000'000'000ull));
        w.gauge("keel_heap_in_use_bytes", "Heap bytes handed out.", static_cast<std::int64_t>(global_heap().in_use()));
        const net::LinkStats ls = net::link_stats();
        w.counter("keel_netfront_rx_packets_total", "Frames received.", ls.rx_packets);
        w.counter("keel_netfront_rx_bytes_total", "Bytes received.", ls.rx_bytes);
        w.counter("keel_netfront_tx_packets_total", "Frames sent.", ls.tx_packets);
        w.counter("keel_netfront_tx_bytes_total", "Bytes sent.", ls.tx_bytes);
        w.counter("keel_netfront_rx_gso_total", "Frames received as TCP super-segments (GSO).", ls.rx_gso);
        w.counter("keel_netfront_tx_gso_total", "Frames sent as TCP super-segments (GSO).", ls.tx_gso);
        w.counter("keel_net_tx_gso_segments_total", "TCP segments merged into the super-segments sent.",
                  ns.tx_gso_segments);
        w.counter("keel_netfront_drops_total", "Frames dropped (both directions).", ls.drops);
        w.counter("keel_netfront_errors_total", "Backend errors and protocol violations.", ls.errors);
        w.counter("keel_netfront_rx_missed_events_total", "Rx responses the watchdog found without an event.",
                  ls.rx_missed_events);
        w.counter("keel_netfront_rx_ring_empty_total", "Watchdog ticks that found no rx buffer posted.",
                  ls.rx_ring_empty);
        w.counter("keel_netfront_resets_total", "Device resets for a misbehaving backend.", ls.resets);
        w.gauge("keel_netfront_given_up", "Devices given up on after a reset storm or failed handshakes.",
                static_cast<std::int64_t>(ls.given_up));
        w.gauge("keel_netfront_held_pages", "Pages the backend still maps, out of use until it lets go.",
                static_cast<std::int64_t>(ls.held_pages));
        w.gauge("keel_tcp_open_connections", "TCP connections open.", static_cast<std::int64_t>(ns.tcp_open));
        w.gauge("keel_http_connections", "HTTP connections being served.",
                static_cast<std::int64_t>(conns_.open));
        w.counter("keel_http_refused_connections_total", "Connections refused over max-conns.",
                  conns_.refused);
        if (const auto* c = console::active()) {
            w.counter("keel_console_dropped_bytes_total", "Console output dropped while xenconsoled lagged.",
                      c->stats().dropped_bytes);
        }
        http::write_metrics(w, stats_);
    }

    http::Router router_{site()};
    http::Stats stats_{};
    net::TcpListener listener_;
    Event stopped_;
    std::uint16_t port_ = 80;
    unsigned max_conns_ = 256;
    net::ServeCounters conns_;
    std::uint64_t started_ns_ = 0;
    http::SessionOptions options_{.stats = &stats_};
    http::ConnLimits limits_;
};

}  // namespace
}  // namespace keel::httpd

KEEL_SERVICE(keel::httpd::Httpd)

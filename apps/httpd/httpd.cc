// httpd: an HTTP/1.1 server (GET, HEAD, keep-alive) for the static pages in site.cc and
// /metrics in the Prometheus text format. Network setup from the command line: ip=ADDR/PREFIX
// gw=ADDR for a static address, else DHCP. port=N (default 80), max-conns=N (default 256).
#include <cstddef>

#include "http.h"
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

constexpr std::uint64_t idle_timeout_ns = 15'000'000'000ull;     // keep-alive connections
constexpr std::uint64_t request_timeout_ns = 10'000'000'000ull;  // a request's header block
constexpr std::uint64_t write_timeout_ns = 30'000'000'000ull;

std::span<const std::byte> as_bytes(std::span<const char> s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

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
        if (!port || !max_conns) {
            KLOG_ERROR("httpd: bad command line: want port=1..65535 and max-conns=1..4096");
            co_return 1;
        }
        port_ = static_cast<std::uint16_t>(*port);
        max_conns_ = static_cast<unsigned>(*max_conns);

        auto listener = co_await net::start_listening(cfg.value(), port_, "httpd");
        if (!listener.ok()) co_return 1;
        listener_ = std::move(listener.value());
        router_.set_metrics("/metrics", [this](http::MetricsWriter& w) { write_metrics(w); });
        started_ns_ = loop().now();
        KLOG_INFO("httpd: serving on port %u (at most %u connections)", port_, max_conns_);
        spawn(net::serve(listener_, max_conns_, conns_, "httpd",
                         [this](net::TcpStream s) { return serve_conn(std::move(s)); }));
        co_await stopped_.wait();
        KLOG_INFO("httpd: stopping after %lu requests", static_cast<unsigned long>(stats_.requests));
        co_return 0;
    }

    void stop() override { stopped_.set(); }

private:
    // One connection: feed received bytes to the session, send what it produces, close when it
    // says so. Buffers are allocated once per connection, never per request.
    Task<void> serve_conn(net::TcpStream s) {
        auto* storage = new http::SessionStorage<>();
        auto* in = new std::array<char, 4096>();
        http::SessionOptions options;
        options.stats = &stats_;
        http::Session session(router_, storage->buffers(), options);
        std::size_t have = 0, off = 0;
        bool eof = false;
        for (;;) {
            while (session.state() == http::SessionState::writing) {
                auto out = session.output();
                auto w = co_await s.write_for(as_bytes(out), write_timeout_ns);
                if (!w.ok()) {
                    s.abort();
                    goto done;
                }
                session.sent(out.size());
            }
            if (session.state() == http::SessionState::closed) {
                co_await linger_and_close(s, *in);
                break;
            }
            if (off < have) {
                off += session.feed(std::span<const char>(in->data() + off, have - off));
                continue;
            }
            if (eof) {
                (void)co_await s.close();
                break;
            }
            off = have = 0;
            const auto timeout = session.state() == http::SessionState::idle ? idle_timeout_ns : request_timeout_ns;
            auto r = co_await s.read_for(std::as_writable_bytes(std::span<char>(*in)), timeout);
            if (!r.ok()) {
                if (r.error() == Error::timed_out) {
                    session.timed_out();
                    continue;
                }
                s.abort();
                break;
            }
            if (r.value() == 0) {
                eof = true;
                session.end_of_input();
                continue;
            }
            have = r.value();
        }
    done:
        delete in;
        delete storage;
    }

    // Closing with unread input makes TCP send a reset, which can destroy the response before
    // the client read it (an error answered mid-request, e.g. 414/431). So: send our FIN at
    // once behind the response (clients that read to the end of the connection, like ab with
    // HTTP/1.0, finish now), then read and drop what the client still sends until it closes
    // too, for a bounded time and amount, and close.
    static Task<void> linger_and_close(net::TcpStream& s, std::array<char, 4096>& scratch) {
        constexpr std::uint64_t linger_ns = 2'000'000'000ull;  // at most, in all
        if (!s.shutdown_write().ok()) {
            s.abort();
            co_return;
        }
        const std::uint64_t deadline = loop().now() + linger_ns;
        for (std::size_t drained = 0; drained < 256 * 1024;) {
            const std::uint64_t now = loop().now();
            if (now >= deadline) break;
            auto r = co_await s.read_for(std::as_writable_bytes(std::span<char>(scratch)), deadline - now);
            if (!r.ok() || r.value() == 0) break;
            drained += r.value();
        }
        (void)co_await s.close();
    }

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
        w.gauge("keel_tcp_open_connections", "TCP connections open.", static_cast<std::int64_t>(ns.tcp_open));
        w.gauge("keel_http_connections", "HTTP connections being served.",
                static_cast<std::int64_t>(conns_.open));
        w.counter("keel_http_refused_connections_total", "Connections refused over max-conns.",
                  conns_.refused);
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
};

}  // namespace
}  // namespace keel::httpd

KEEL_SERVICE(keel::httpd::Httpd)

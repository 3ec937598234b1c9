// kvstore: a key-value server for redis-cli and redis-benchmark (RESP2) that keeps its data in
// an append-only log on the first PV disk: a write is answered only once its log record is
// durable, and a restart replays the log. A read-only disk is served as it is, refusing writes
// (READONLY); without a disk it keeps everything in memory.
// Command line: ip=ADDR/PREFIX gw=ADDR (else DHCP), port=N (default 6379), max-conns=N (256),
// maxmemory=BYTES[k|m|g] (keys and values; default from the domain's memory, see
// kv::default_max_memory). Writes over it are answered -OOM, as Redis does.
// Deadlines (kv/conn.h), each fixed when its phase starts (later bytes never move it), so a
// trickling, silent or stalled client cannot hold its connection slot: command-timeout=S (10:
// a command's first byte to its last, and a new connection to its first byte), timeout=S
// (Redis's idle timeout between commands; 0, the default, keeps idle clients), write-timeout=S
// (30: replies the client does not read). Big commands and replies get 1 s more per 16 KiB. A
// connection past one is reset and counted (INFO timed_out_connections). Not yet served: a
// client that sends a pipeline bigger than the buffers before reading any reply (kvstore stops
// reading while its replies are over the high-water mark): it is reset at the write deadline.
// metrics-port=N (default 9100; 0: none) serves GET /metrics over HTTP (Prometheus text: every
// component's families, keel/metrics.h, and kvstore's own, kv::write_metrics) with httpd's HTTP
// core and its limits and deadlines; at most 16 connections there.
#include <cstdint>
#include <optional>

// "http.h" and "conn.h" are httpd's HTTP core (apps/httpd/http: keel_http, keel_http_conn).
#include "conn.h"
#include "http.h"
#include "keel/block/block.h"
#include "keel/log.h"
#include "keel/loop.h"
#include "keel/metrics.h"
#include "keel/net/net.h"
#include "keel/net/serve.h"
#include "keel/net/tcp.h"
#include "keel/service.h"
#include "keel/system.h"
#include "keel/task.h"
#include "keel/timer.h"
#include "kv/conn.h"
#include "kv/server.h"

namespace keel {
namespace {

class KvStore final : public Service {
public:
    Task<int> run(const CommandLine& args) override {
        const char* why = nullptr;
        auto cfg = net::parse_config(args, &why);
        const auto port = args.get_uint("port", 6379, 1, 65535);
        const auto max_conns = args.get_uint("max-conns", 256, 1, 4096);
        const auto command_s = args.get_uint("command-timeout", 10, 1, 3600);
        const auto idle_s = args.get_uint("timeout", 0, 0, 86400);
        const auto write_s = args.get_uint("write-timeout", 30, 1, 3600);
        const auto metrics_port = args.get_uint("metrics-port", 9100, 0, 65535);
        const auto maxmemory = args.get("maxmemory");
        const auto max_memory = maxmemory ? kv::parse_memory(*maxmemory) : std::nullopt;
        if (!cfg.ok() || !port || !max_conns || (maxmemory && !max_memory) || !command_s || !idle_s ||
            !write_s || !metrics_port || *metrics_port == *port) {
            KLOG_ERROR("kvstore: bad command line: %s",
                       why ? why
                           : "want port=1..65535, max-conns=1..4096, maxmemory=BYTES[k|m|g], "
                             "command-timeout=1..3600, timeout=0..86400, write-timeout=1..3600, "
                             "metrics-port=0..65535 (not port)");
            co_return 1;
        }
        limits_ = {s(*command_s), s(*idle_s), s(*write_s)};
        max_conns_ = static_cast<unsigned>(*max_conns);
        server_.emplace(config(max_memory ? *max_memory : kv::default_max_memory(ram_bytes(), max_conns_)),
                        [] { return unix_time_ns(); });
        KLOG_INFO("kvstore: maxmemory %llu bytes (%s)",
                  static_cast<unsigned long long>(server_->store().max_memory()),
                  max_memory ? "command line" : "from the domain's memory");

        co_await block::discovered().wait();
        const auto disks = block::devices();
        block::Device* disk = disks.empty() ? nullptr : disks[0];
        if (disk == nullptr) {
            KLOG_WARN("kvstore: no disk: data lives in memory only (add disk = [...] to the xl config)");
        } else {
            const auto& g = disk->geometry();
            KLOG_INFO("kvstore: disk %.*s: %lu sectors of %u bytes%s", static_cast<int>(disk->name().size()),
                      disk->name().data(), static_cast<unsigned long>(g.sectors), g.sector_size,
                      g.read_only ? ", read-only" : "");
        }
        auto replay = co_await server_->open(disk);
        if (!replay.ok()) {
            const char* detail = server_->failure();
            KLOG_ERROR("kvstore: cannot open the log: %s%s%s%s", to_string(replay.error()), detail[0] ? " (" : "", detail,
                       detail[0] ? ")" : "");
            co_return 1;
        }
        if (server_->log() != nullptr && server_->log()->read_only()) {
            KLOG_WARN("kvstore: the disk is read-only: serving its %lu keys, refusing every write",
                      static_cast<unsigned long>(server_->store().size()));
        }

        auto listener =
            co_await net::start_listening(cfg.value(), static_cast<std::uint16_t>(*port), "kvstore");
        if (!listener.ok()) co_return 1;
        listener_ = std::move(listener.value());
        KLOG_INFO("kvstore: serving on port %lu (%lu keys)", static_cast<unsigned long>(*port),
                  static_cast<unsigned long>(server_->store().size()));
        if (*metrics_port != 0) {
            auto ml = net::TcpListener::listen(static_cast<std::uint16_t>(*metrics_port), 16);
            if (!ml.ok()) {
                KLOG_ERROR("kvstore: cannot listen on metrics port %lu: %s",
                           static_cast<unsigned long>(*metrics_port), to_string(ml.error()));
                co_return 1;
            }
            metrics_listener_ = std::move(ml.value());
            metrics_router_.set_metrics("/metrics", [this](MetricsWriter& w) { write_metrics(w); });
            KLOG_INFO("kvstore: metrics on port %lu (GET /metrics)", static_cast<unsigned long>(*metrics_port));
            spawn(net::serve(metrics_listener_, max_metrics_conns, metrics_conns_, "kvstore metrics",
                             [this](net::TcpStream s) {
                                 return http::serve_connection(std::move(s), metrics_router_, metrics_options_,
                                                               metrics_limits_);
                             }));
        }
        spawn(net::serve(listener_, max_conns_, conns_, "kvstore",
                         [this](net::TcpStream s) { return kv::serve_connection(std::move(s), *server_, limits_); }));
        co_await server_->background();  // until stop(); a failed disk keeps serving reads
        listener_ = net::TcpListener();
        metrics_listener_ = net::TcpListener();
        if (server_->failed()) {
            KLOG_ERROR("kvstore: the log failed: %s; a restart replays what is durable", server_->failure());
            co_return 1;
        }
        KLOG_INFO("kvstore: stopping with %lu keys", static_cast<unsigned long>(server_->store().size()));
        co_return 0;
    }

    void stop() override {
        if (server_) server_->stop();
    }

private:
    static kv::Config config(std::uint64_t max_memory) {
        kv::Config c;
        c.store.max_memory = max_memory;
        c.store.seed0 = random_seed();  // hash flooding needs the key
        c.store.seed1 = random_seed();
        c.log.format_id = random_seed();  // records of an earlier life of the disk never verify
        return c;
    }

    // Every component's families (keel/metrics.h), then kvstore's: the store and log
    // (kv::write_metrics), its connection loop's refusals, and the metrics port's HTTP counters.
    void write_metrics(MetricsWriter& w) {
        metrics::write_all(w);
        kv::write_metrics(w, *server_);
        w.counter("keel_kvstore_refused_connections_total", "Connections refused over max-conns.", conns_.refused);
        w.counter("keel_kvstore_refused_memory_connections_total",
                  "Connections refused while the heap was under the serve reserve.", conns_.refused_memory);
        w.gauge("keel_http_connections", "HTTP connections being served (the metrics port).", metrics_conns_.open);
        w.counter("keel_http_refused_connections_total", "Connections refused over max-conns.", metrics_conns_.refused);
        w.counter("keel_http_refused_memory_connections_total",
                  "Connections refused while the heap was under the serve reserve.", metrics_conns_.refused_memory);
        http::write_metrics(w, metrics_stats_);
    }

    static constexpr unsigned max_metrics_conns = 16;

    std::optional<kv::Server> server_;  // built once the command line is read
    net::TcpListener listener_;
    net::ServeCounters conns_;
    unsigned max_conns_ = 256;
    kv::ConnLimits limits_;
    // The metrics port: httpd's HTTP core, with httpd's default limits and deadlines.
    http::Router metrics_router_{http::Site{}};
    http::Stats metrics_stats_{};
    http::SessionOptions metrics_options_{.stats = &metrics_stats_};
    http::ConnLimits metrics_limits_{};
    net::TcpListener metrics_listener_;
    net::ServeCounters metrics_conns_;
};

}  // namespace
}  // namespace keel

KEEL_SERVICE(keel::KvStore)

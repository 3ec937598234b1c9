// keel::kv — the pure core of the kvstore service: a key-value server speaking RESP2 (enough
// for redis-cli and redis-benchmark) with an append-only log on a block device.
//
//   resp.h    CommandParser (incremental, limits), ReplyWriter
//   store.h   Store: the keys in memory, with expiry
//   log.h     Log: the durable log on a block::Device (replay, group commit, compaction)
//   engine.h  Engine: the commands; Config; Stats
//   server.h  Server (store + log + engine + background work) and Session (one connection)
//
// How a service wires it (see apps/kvstore/kvstore.cc; the per-connection loop is kv/conn.h):
//
//   config.store.seed0/seed1 = <unpredictable>;      // hash seed (TSC, RDRAND)
//   config.log.format_id = <unpredictable>;           // identifies a log formatted now
//   kv::Server server(config, clock);                 // clock: Unix time in ns
//   auto replay = co_await server.open(block::devices()[0]);   // or nullptr: memory only
//   if (!replay.ok()) { KLOG_ERROR("kvstore: %s", server.failure()); co_return 1; }
//   spawn(accept_loop());                             // kv::serve_connection() per connection
//   co_await server.background();                     // expiry sweeps + compaction, until stop()
//   co_return server.failed() ? 1 : 0;                // a failed log: crash, a restart replays it
//   ...
//   void stop() override { server.stop(); }
//
// Feeding everything that has arrived before committing is what makes pipelined commands (and
// all connections waiting at the same time) share one write + flush.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "keel/block/block.h"
#include "keel/prometheus.h"
#include "keel/result.h"
#include "keel/task.h"
#include "kv/engine.h"
#include "kv/log.h"
#include "kv/resp.h"
#include "kv/store.h"

namespace keel::kv {

/// The server-wide state: the store, the log (if any), the engine and its counters.
/// Context: loop only.
class Server {
public:
    Server(const Config& config, Clock clock);
    /// Must not run while background() or a session's commit() is suspended.
    ~Server() = default;
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// Open the log on `disk` and replay it into the store (see Log::open for the errors;
    /// failure() says more). nullptr keeps everything in memory only. Call once, first.
    Task<Result<ReplayReport>> open(block::Device* disk);

    /// Expires keys in the background and compacts the log when it has grown, until stop().
    /// Run it once (spawn or co_await).
    Task<void> background();
    /// Make background() return (after a compaction in progress).
    void stop() { stop_.set(); }

    /// The log failed (a disk error, a disk that failed for good): replies that depend on it
    /// are never sent, writes are refused ("-ERR disk failed: ..."), reads are still served
    /// from memory (they may show writes that were never acknowledged). A restart replays
    /// what is durable.
    bool failed() const { return log_.has_value() && log_->failed() != Error::ok; }
    /// A sentence for the console about the failure ("" if none).
    const char* failure() const { return log_.has_value() ? log_->failure() : ""; }

    Engine& engine() { return engine_; }
    Store& store() { return store_; }
    Log* log() { return log_.has_value() ? &*log_ : nullptr; }
    const Log* log() const { return log_.has_value() ? &*log_ : nullptr; }
    Stats& stats() { return engine_.stats(); }
    const Config& config() const { return config_; }

private:
    Config config_;
    Store store_;
    std::optional<Log> log_;
    Engine engine_;
    Event stop_;
};

/// kvstore's own metric families (kv/metrics.cc), what INFO reports: keel_kvstore_* (clients,
/// commands, keyspace, memory used and maxmemory, the log). The service adds them to
/// metrics::write_all() on its /metrics page.
void write_metrics(MetricsWriter& w, Server& server);

enum class SessionState : std::uint8_t {
    reading,  ///< feed() takes input (send output() meanwhile, after commit())
    writing,  ///< output() must be sent first: over the high-water mark, or closing after it
    closed,   ///< everything is sent: close the connection
};

/// One connection: bytes in, replies out. kv/conn.h drives it over TCP.
///   feed(data)       runs every complete command in `data`; returns how much it took (all of
///                    it unless the output passed the high-water mark or the session closes)
///   needs_commit()   the output depends on log records not yet durable: co_await commit()
///                    before sending it (an error: the log failed, abort the connection)
///   output()/sent(n) what to send, and how much of it went out
///   end_of_input()   the peer closed its side: closed once the output is sent
/// A protocol error is answered ("-ERR Protocol error: ...") and the session then closes, as
/// after QUIT.
class Session {
public:
    /// Takes its input buffer (Config::input_bytes) from the heap, fallibly: see ok().
    explicit Session(Server& server);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    /// False: the heap had no room for the input buffer; refuse the connection (counted in
    /// INFO's rejected_connections). Nothing else may be called then.
    bool ok() const { return !in_.empty(); }
    /// Where the connection's bytes are read into.
    std::span<char> input() { return {in_.data(), in_.size()}; }

    std::size_t feed(std::span<const char> data);
    std::size_t feed(std::string_view data) { return feed(std::span<const char>(data.data(), data.size())); }

    bool needs_commit() const;
    Task<Result<void>> commit();

    std::span<const char> output() const { return {out_.data() + out_off_, out_.size() - out_off_}; }
    /// n bytes of output() were sent; more than output().size() counts as all of it.
    void sent(std::size_t n);

    void end_of_input() { input_ended_ = true; }
    SessionState state() const;

    /// Part of a command has been fed, not all of it.
    bool mid_command() const { return !parser_.idle(); }
    /// Commands whose first byte has been fed so far: a new value means a new command started.
    std::uint64_t commands_started() const { return started_; }

private:
    Server& server_;
    CommandParser parser_;
    Bytes in_;
    Bytes out_;
    std::size_t out_off_ = 0;
    std::uint64_t lsn_ = 0;  // log records the output depends on
    std::uint64_t started_ = 0;
    bool closing_ = false;
    bool input_ended_ = false;
};

}  // namespace keel::kv

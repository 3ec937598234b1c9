// The command engine: runs parsed commands against the Store, writes their RESP2 replies, and
// appends every change to the Log (when there is one). Replies and error texts follow Redis 7
// where clients or people may look at them.
//
// Commands: PING, ECHO, GET, SET (NX XX GET EX PX EXAT PXAT KEEPTTL), DEL, EXISTS, INCR, DECR,
// INCRBY, DECRBY, MGET, MSET, TTL, PTTL, DBSIZE, KEYS, FLUSHALL, INFO, COMMAND (DOCS, COUNT,
// INFO: empty answers, enough for redis-cli), CONFIG GET, SELECT 0, QUIT. Values are strings
// only, so there is no WRONGTYPE.
//
// Changes are applied in memory first and appended to the log right after, in the same call:
// the reply must not leave before Log::commit() covers Log::appended_lsn() (Session does this).
// A change that the log cannot take (full, failed, read-only) is refused before it touches
// memory, so memory never holds what the log could not record.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "keel/ascii.h"
#include "keel/function.h"
#include "kv/log.h"
#include "kv/resp.h"
#include "kv/store.h"

namespace keel::kv {

/// Nanoseconds of Unix time (the service: Xen's wall clock + pvclock; tests: a fake).
using Clock = Function<std::uint64_t()>;

/// Everything tunable, from the service's command line.
struct Config {
    Limits limits{};                            ///< protocol limits
    std::size_t max_key_bytes = 64 * 1024;      ///< SET & co. refuse longer keys
    std::size_t max_value_bytes = 512 * 1024;   ///< ... and longer values
    std::size_t output_high_water = 64 * 1024;  ///< a session stops running commands above this
    std::size_t input_bytes = 16 * 1024;        ///< each connection's input buffer
    std::size_t max_output_bytes =
        64u << 20;  ///< a reply that would grow a session's output past this is refused
    std::uint64_t sweep_interval_ns = 100'000'000;  ///< Server::background(): expiry sweep period
    std::size_t sweep_buckets = 1024;               ///< ... buckets per sweep
    StoreOptions store{};
    LogOptions log{};
};

/// maxmemory (keys, values and the index: Store::memory()) when the command line does not set
/// it: the domain's RAM less 16 MiB for the image, lwIP, the drivers and the log, and less
/// 32 KiB per connection for its buffers and tasks, so that a full store still leaves the heap
/// room to serve (and refuse) connections. At least 1 MiB.
std::uint64_t default_max_memory(std::uint64_t ram_bytes, unsigned max_conns);
/// A "maxmemory=" value as Redis writes it: bytes, or with a k/kb/m/mb/g/gb suffix (1024-based,
/// any case). nullopt if malformed, 0 or over 2^48.
std::optional<std::uint64_t> parse_memory(std::string_view text);

/// Counters for INFO. Sessions and the engine update them; loop only.
struct Stats {
    std::uint64_t started_ns = 0;
    std::uint64_t connections_received = 0;
    std::uint64_t connected = 0;
    std::uint64_t commands = 0;
    std::uint64_t error_replies = 0;
    std::uint64_t protocol_errors = 0;
    std::uint64_t rejected_connections = 0;  ///< no memory for their buffers
    std::uint64_t timed_out_connections = 0;  ///< command, idle or write deadline passed (kv/conn.h)
    std::uint64_t keyspace_hits = 0;
    std::uint64_t keyspace_misses = 0;
};

using Args = std::span<const std::string_view>;

class Engine {
public:
    enum class Outcome : std::uint8_t {
        reply,  ///< the reply was appended; go on
        close,  ///< the reply was appended; close the connection after it (QUIT)
    };

    /// `log` may be null (memory only). All references must outlive the engine.
    Engine(Store& store, Log* log, Clock clock, const Config& config);
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    /// Run one command (args[0] is its name, args is not empty) and append its reply to `out`.
    /// If the reply cannot be built (out of memory, or over the output limit), what was
    /// written is removed again and an error takes its place; if even that does not fit,
    /// `out` is back where it was and ok() of a fresh writer would fail as well: close.
    Outcome execute(Args args, Bytes& out);

    /// Attach the log once it is open (Server::open).
    void set_log(Log* log) { log_ = log; }

    std::uint64_t now() { return clock_(); }
    Store& store() { return store_; }
    Log* log() { return log_; }
    Stats& stats() { return stats_; }
    const Config& config() const { return config_; }

private:
    struct Command;
    static const Command commands[];

    bool check_key(std::string_view key, ReplyWriter& out);
    bool check_value(std::string_view value, ReplyWriter& out);
    bool reserve_log(std::size_t payload, ReplyWriter& out);
    /// After reserve_log(): store the key and log it as a one-operation record; false (with
    /// the out-of-memory reply) when the store cannot take it.
    bool set_and_log(std::string_view key, std::string_view value, std::uint64_t expire_ns, ReplyWriter& out);
    /// TTL (seconds, rounded) and PTTL (milliseconds): -2 without the key, -1 without expiry.
    void reply_ttl(std::string_view key, ReplyWriter& out, bool seconds);
    /// After reserve_log(): log the deletion of `key` as a one-operation record.
    void log_del(std::string_view key);

    void ping(Args a, ReplyWriter& out);
    void echo(Args a, ReplyWriter& out);
    void get(Args a, ReplyWriter& out);
    void set(Args a, ReplyWriter& out);
    void del(Args a, ReplyWriter& out);
    void exists(Args a, ReplyWriter& out);
    void incr(Args a, ReplyWriter& out);
    void decr(Args a, ReplyWriter& out);
    void incrby(Args a, ReplyWriter& out);
    void decrby(Args a, ReplyWriter& out);
    void add(std::string_view key, std::int64_t delta, ReplyWriter& out);
    void mget(Args a, ReplyWriter& out);
    void mset(Args a, ReplyWriter& out);
    void ttl(Args a, ReplyWriter& out);
    void pttl(Args a, ReplyWriter& out);
    void dbsize(Args a, ReplyWriter& out);
    void keys(Args a, ReplyWriter& out);
    void flushall(Args a, ReplyWriter& out);
    void info(Args a, ReplyWriter& out);
    void command(Args a, ReplyWriter& out);
    void config(Args a, ReplyWriter& out);
    void select(Args a, ReplyWriter& out);
    void quit(Args a, ReplyWriter& out);

    Store& store_;
    Log* log_;
    Clock clock_;
    Config config_;
    Stats stats_{};
};

}  // namespace keel::kv

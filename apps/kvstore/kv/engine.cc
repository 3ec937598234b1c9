// Engine: the command table and the commands. See engine.h for the list and the rule about
// memory and the log.
#include "kv/engine.h"

#include <cstdarg>

#include "keel/format.h"
#include "kv/glob.h"

namespace keel::kv {
namespace {

constexpr std::uint64_t ns_per_ms = 1'000'000ull;
constexpr std::uint64_t ns_per_s = 1'000'000'000ull;
constexpr std::int64_t int64_max = 0x7fffffffffffffffll;
constexpr std::int64_t int64_min = -int64_max - 1;

constexpr std::string_view not_an_integer = "ERR value is not an integer or out of range";
constexpr std::string_view syntax_error = "ERR syntax error";
constexpr std::string_view oom_error = "OOM command not allowed when used memory > 'maxmemory'.";

// How much of a format() result of `n` landed in a buffer of `room` bytes (NUL excluded).
std::size_t written(int n, std::size_t room) {
    if (n < 0 || room == 0) return 0;
    return static_cast<std::size_t>(n) < room ? static_cast<std::size_t>(n) : room - 1;
}

// Text for INFO: "name:value\r\n" lines built with printf formatting into a growing buffer.
class InfoText {
public:
    void section(std::string_view title) {
        if (!text_.empty()) put("\r\n");
        put("# ");
        put(title);
        put("\r\n");
    }
    void line(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
        char buf[256];
        va_list ap;
        va_start(ap, fmt);
        const int n = vformat(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        put({buf, written(n, sizeof(buf))});
        put("\r\n");
    }
    void put(std::string_view s) { ok_ = ok_ && text_.append(s.data(), s.size()); }
    bool ok() const { return ok_; }
    std::string_view text() const { return {text_.data(), text_.size()}; }

private:
    Bytes text_;
    bool ok_ = true;
};

unsigned long long ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }

}  // namespace

std::uint64_t default_max_memory(std::uint64_t ram_bytes, unsigned max_conns) {
    constexpr std::uint64_t floor = 1u << 20;
    const std::uint64_t reserve = (16u << 20) + std::uint64_t{max_conns} * (32u << 10);
    return ram_bytes > reserve + floor ? ram_bytes - reserve : floor;
}

std::optional<std::uint64_t> parse_memory(std::string_view text) {
    std::size_t digits = 0;
    std::uint64_t n = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
        if (n > (std::uint64_t{1} << 48)) return std::nullopt;
        n = n * 10 + static_cast<std::uint64_t>(text[digits++] - '0');
    }
    std::string_view unit = text.substr(digits);
    if (digits == 0 || unit.size() > 2) return std::nullopt;
    unsigned shift = 0;
    if (!unit.empty()) {
        const char c = ascii_lower(unit[0]);
        shift = c == 'k' ? 10 : c == 'm' ? 20 : c == 'g' ? 30 : 0;
        if (shift == 0 || (unit.size() == 2 && ascii_lower(unit[1]) != 'b')) return std::nullopt;
    }
    if (n == 0 || n > (std::uint64_t{1} << (48 - shift))) return std::nullopt;
    return n << shift;
}

struct Engine::Command {
    std::string_view name;
    int arity;  // > 0: exactly; < 0: at least -arity (the name counts)
    void (Engine::*run)(Args, ReplyWriter&);
};

// Most frequent first: the lookup is a linear scan.
const Engine::Command Engine::commands[] = {
    {"get", 2, &Engine::get},          {"set", -3, &Engine::set},           {"ping", -1, &Engine::ping},
    {"incr", 2, &Engine::incr},        {"mset", -3, &Engine::mset},         {"mget", -2, &Engine::mget},
    {"del", -2, &Engine::del},         {"exists", -2, &Engine::exists},     {"decr", 2, &Engine::decr},
    {"incrby", 3, &Engine::incrby},    {"decrby", 3, &Engine::decrby},      {"echo", 2, &Engine::echo},
    {"ttl", 2, &Engine::ttl},          {"pttl", 2, &Engine::pttl},          {"dbsize", 1, &Engine::dbsize},
    {"keys", 2, &Engine::keys},        {"flushall", -1, &Engine::flushall}, {"info", -1, &Engine::info},
    {"command", -1, &Engine::command}, {"config", -2, &Engine::config},     {"select", 2, &Engine::select},
    {"quit", -1, &Engine::quit},
};

Engine::Engine(Store& store, Log* log, Clock clock, const Config& config)
    : store_(store), log_(log), clock_(static_cast<Clock&&>(clock)), config_(config) {}

Engine::Outcome Engine::execute(Args a, Bytes& out) {
    ++stats_.commands;
    const std::size_t mark = out.size();
    ReplyWriter w(out);
    Outcome outcome = Outcome::reply;
    const Command* cmd = nullptr;
    for (const Command& c : commands) {
        if (iequals(c.name, a[0])) {
            cmd = &c;
            break;
        }
    }
    if (cmd == nullptr) {
        // "ERR unknown command 'x', with args beginning with: 'a' 'b' " (Redis 7), cut short.
        char buf[400];
        std::size_t len =
            written(format(buf, sizeof(buf), "ERR unknown command '%.*s', with args beginning with: ",
                           static_cast<int>(a[0].size() < 128 ? a[0].size() : 128), a[0].data()),
                    sizeof(buf));
        for (std::size_t i = 1; i < a.size() && len < 256; ++i) {
            len += written(format(buf + len, sizeof(buf) - len, "'%.*s' ",
                                  static_cast<int>(a[i].size() < 64 ? a[i].size() : 64), a[i].data()),
                           sizeof(buf) - len);
        }
        w.error({buf, len});
    } else if ((cmd->arity > 0 && a.size() != static_cast<std::size_t>(cmd->arity)) ||
               (cmd->arity < 0 && a.size() < static_cast<std::size_t>(-cmd->arity))) {
        w.errorf("ERR wrong number of arguments for '%.*s' command", static_cast<int>(cmd->name.size()),
                 cmd->name.data());
    } else {
        (this->*cmd->run)(a, w);
        if (cmd->run == &Engine::quit) outcome = Outcome::close;
    }
    if (!w.ok()) {
        out.truncate(mark);
        ReplyWriter e(out);
        e.error("ERR the reply does not fit in the output buffer (out of memory or over the output limit)");
        if (!e.ok()) {
            out.truncate(mark);
            return Outcome::close;
        }
    }
    if (out.size() > mark && out[mark] == '-') ++stats_.error_replies;
    return outcome;
}

// ---------------------------------------------------------------------------------------------
// Checks shared by the writing commands

bool Engine::check_key(std::string_view key, ReplyWriter& out) {
    if (key.size() <= config_.max_key_bytes) return true;
    out.errorf("ERR key is too large (%zu bytes, the limit is %zu)", key.size(), config_.max_key_bytes);
    return false;
}

bool Engine::check_value(std::string_view value, ReplyWriter& out) {
    if (value.size() <= config_.max_value_bytes) return true;
    out.errorf("ERR value is too large (%zu bytes, the limit is %zu)", value.size(), config_.max_value_bytes);
    return false;
}

bool Engine::set_and_log(std::string_view key, std::string_view value, std::uint64_t expire_ns,
                         ReplyWriter& out) {
    if (!store_.set(key, value, expire_ns).ok()) {
        out.error(oom_error);
        return false;
    }
    if (log_ != nullptr) {
        log_->begin();
        log_->add_set(key, value, expire_ns);
        log_->end();
    }
    return true;
}

void Engine::log_del(std::string_view key) {
    if (log_ == nullptr) return;
    log_->begin();
    log_->add_del(key);
    log_->end();
}

bool Engine::reserve_log(std::size_t payload, ReplyWriter& out) {
    if (log_ == nullptr) return true;
    const Result<void> r = log_->reserve(payload);
    if (r.ok()) return true;
    switch (r.error()) {
        case Error::no_space:
            out.error("ERR disk full: the append-only log has no room for this write");
            break;
        case Error::invalid_argument:
            out.error("ERR the command is too large for the append-only log");
            break;
        case Error::no_memory:
            out.error(oom_error);
            break;
        case Error::permission:
            out.error("READONLY the disk is read-only");
            break;
        default:
            out.errorf("ERR disk failed: the append-only log cannot be written (%s); writes are refused, reads "
                       "are served from memory",
                       to_string(r.error()));
            break;
    }
    return false;
}

// ---------------------------------------------------------------------------------------------
// Commands

void Engine::ping(Args a, ReplyWriter& out) {
    if (a.size() > 2) {
        out.error("ERR wrong number of arguments for 'ping' command");
    } else if (a.size() == 2) {
        out.bulk(a[1]);
    } else {
        out.simple("PONG");
    }
}

void Engine::echo(Args a, ReplyWriter& out) { out.bulk(a[1]); }

void Engine::quit(Args, ReplyWriter& out) { out.simple("OK"); }

void Engine::get(Args a, ReplyWriter& out) {
    const Entry* e = store_.find(a[1], now());
    if (e == nullptr) {
        ++stats_.keyspace_misses;
        out.null();
    } else {
        ++stats_.keyspace_hits;
        out.bulk(e->value());
    }
}

void Engine::set(Args a, ReplyWriter& out) {
    const std::string_view key = a[1], value = a[2];
    const std::uint64_t t = now();
    bool nx = false, xx = false, get_old = false, keep_ttl = false, has_expire = false;
    std::uint64_t expire = 0;
    for (std::size_t i = 3; i < a.size(); ++i) {
        const std::string_view opt = a[i];
        if (iequals(opt, "nx") && !xx) {
            nx = true;
        } else if (iequals(opt, "xx") && !nx) {
            xx = true;
        } else if (iequals(opt, "get")) {
            get_old = true;
        } else if (iequals(opt, "keepttl") && !has_expire) {
            keep_ttl = true;
        } else if ((iequals(opt, "ex") || iequals(opt, "px") || iequals(opt, "exat") ||
                    iequals(opt, "pxat")) &&
                   !has_expire && !keep_ttl && i + 1 < a.size()) {
            std::int64_t v = 0;
            if (!parse_int(a[++i], v)) {
                out.error(not_an_integer);
                return;
            }
            const bool seconds = iequals(opt, "ex") || iequals(opt, "exat");
            const bool absolute = iequals(opt, "exat") || iequals(opt, "pxat");
            const std::uint64_t unit = seconds ? ns_per_s : ns_per_ms;
            const std::uint64_t from = absolute ? 0 : t;
            if (v <= 0 || static_cast<std::uint64_t>(v) > (~0ull - from) / unit) {
                out.error("ERR invalid expire time in 'set' command");
                return;
            }
            expire = from + static_cast<std::uint64_t>(v) * unit;
            has_expire = true;
        } else {
            out.error(syntax_error);
            return;
        }
    }
    if (!check_key(key, out) || !check_value(value, out)) return;
    const Entry* old = store_.find(key, t);
    if ((nx && old != nullptr) || (xx && old == nullptr)) {
        if (get_old && old != nullptr) {
            out.bulk(old->value());
        } else {
            out.null();
        }
        return;
    }
    if (keep_ttl && old != nullptr) expire = old->expire_ns();
    const bool expired_already = has_expire && expire <= t;  // EXAT/PXAT in the past
    if (!reserve_log(expired_already ? Log::del_bytes(key.size()) : Log::set_bytes(key.size(), value.size()),
                     out)) {
        return;
    }
    if (get_old) {
        if (old != nullptr) {
            out.bulk(old->value());  // before the entry is replaced
        } else {
            out.null();
        }
    }
    if (expired_already) {
        // Set and expired at once: what is left is no key.
        if (store_.erase(key)) log_del(key);
    } else {
        if (!set_and_log(key, value, expire, out)) return;
    }
    if (!get_old) out.simple("OK");
}

void Engine::del(Args a, ReplyWriter& out) {
    std::size_t payload = 0;
    for (std::size_t i = 1; i < a.size(); ++i) payload += Log::del_bytes(a[i].size());
    if (!reserve_log(payload, out)) return;
    const std::uint64_t t = now();
    if (log_ != nullptr) log_->begin();
    std::int64_t deleted = 0;
    for (std::size_t i = 1; i < a.size(); ++i) {
        if (store_.find(a[i], t) == nullptr) continue;  // absent or just expired: not counted
        store_.erase(a[i]);
        if (log_ != nullptr) log_->add_del(a[i]);
        ++deleted;
    }
    if (log_ != nullptr) log_->end();
    out.integer(deleted);
}

void Engine::exists(Args a, ReplyWriter& out) {
    const std::uint64_t t = now();
    std::int64_t n = 0;
    for (std::size_t i = 1; i < a.size(); ++i) n += store_.find(a[i], t) != nullptr ? 1 : 0;
    out.integer(n);
}

void Engine::incr(Args a, ReplyWriter& out) { add(a[1], 1, out); }
void Engine::decr(Args a, ReplyWriter& out) { add(a[1], -1, out); }

void Engine::incrby(Args a, ReplyWriter& out) {
    std::int64_t v = 0;
    if (!parse_int(a[2], v)) {
        out.error(not_an_integer);
        return;
    }
    add(a[1], v, out);
}

void Engine::decrby(Args a, ReplyWriter& out) {
    std::int64_t v = 0;
    if (!parse_int(a[2], v)) {
        out.error(not_an_integer);
        return;
    }
    if (v == int64_min) {
        out.error("ERR decrement would overflow");
        return;
    }
    add(a[1], -v, out);
}

void Engine::add(std::string_view key, std::int64_t delta, ReplyWriter& out) {
    if (!check_key(key, out)) return;
    const Entry* old = store_.find(key, now());
    std::int64_t cur = 0;
    if (old != nullptr && !parse_int(old->value(), cur)) {
        out.error(not_an_integer);
        return;
    }
    if ((delta > 0 && cur > int64_max - delta) || (delta < 0 && cur < int64_min - delta)) {
        out.error("ERR increment or decrement would overflow");
        return;
    }
    const std::int64_t next = cur + delta;
    char text[24];
    const std::string_view value(text, format_int(next, text));
    const std::uint64_t expire = old != nullptr ? old->expire_ns() : 0;  // INCR keeps the TTL
    if (!reserve_log(Log::set_bytes(key.size(), value.size()), out)) return;
    if (!set_and_log(key, value, expire, out)) return;
    out.integer(next);
}

void Engine::mget(Args a, ReplyWriter& out) {
    const std::uint64_t t = now();
    out.array(a.size() - 1);
    for (std::size_t i = 1; i < a.size() && out.ok(); ++i) {
        const Entry* e = store_.find(a[i], t);
        if (e != nullptr) {
            ++stats_.keyspace_hits;
            out.bulk(e->value());
        } else {
            ++stats_.keyspace_misses;
            out.null();
        }
    }
}

void Engine::mset(Args a, ReplyWriter& out) {
    if (a.size() % 2 == 0) {
        out.error("ERR wrong number of arguments for 'mset' command");
        return;
    }
    std::size_t payload = 0;
    for (std::size_t i = 1; i < a.size(); i += 2) {
        if (!check_key(a[i], out) || !check_value(a[i + 1], out)) return;
        payload += Log::set_bytes(a[i].size(), a[i + 1].size());
    }
    if (!reserve_log(payload, out)) return;
    // One record for all pairs: after a crash either all of them are back or none.
    if (log_ != nullptr) log_->begin();
    bool oom = false;
    for (std::size_t i = 1; i < a.size() && !oom; i += 2) {
        if (!store_.set(a[i], a[i + 1], 0).ok()) {
            oom = true;  // the pairs set so far stay, and are logged
        } else if (log_ != nullptr) {
            log_->add_set(a[i], a[i + 1], 0);
        }
    }
    if (log_ != nullptr) log_->end();
    if (oom) {
        out.error(oom_error);
    } else {
        out.simple("OK");
    }
}

void Engine::ttl(Args a, ReplyWriter& out) { reply_ttl(a[1], out, true); }

void Engine::pttl(Args a, ReplyWriter& out) { reply_ttl(a[1], out, false); }

void Engine::reply_ttl(std::string_view key, ReplyWriter& out, bool seconds) {
    const std::uint64_t t = now();
    const Entry* e = store_.find(key, t);
    if (e == nullptr) {
        out.integer(-2);
    } else if (e->expire_ns() == 0) {
        out.integer(-1);
    } else {
        const std::uint64_t ms = (e->expire_ns() - t) / ns_per_ms;
        out.integer(static_cast<std::int64_t>(seconds ? (ms + 500) / 1000 : ms));
    }
}

void Engine::dbsize(Args, ReplyWriter& out) { out.integer(static_cast<std::int64_t>(store_.size())); }

void Engine::keys(Args a, ReplyWriter& out) {
    const std::string_view pattern = a[1];
    const bool all = pattern == "*";
    const std::uint64_t t = now();
    auto live_match = [&](const Entry& e) {
        return (e.expire_ns() == 0 || e.expire_ns() > t) && (all || glob_match(pattern, e.key()));
    };
    std::size_t n = 0;
    store_.for_each([&](const Entry& e) { n += live_match(e) ? 1 : 0; });
    out.array(n);
    store_.for_each([&](const Entry& e) {
        if (out.ok() && live_match(e)) out.bulk(e.key());
    });
}

void Engine::flushall(Args a, ReplyWriter& out) {
    if (a.size() > 2 || (a.size() == 2 && !iequals(a[1], "async") && !iequals(a[1], "sync"))) {
        out.error(syntax_error);
        return;
    }
    if (!reserve_log(Log::flush_all_bytes(), out)) return;
    store_.clear();
    if (log_ != nullptr) {
        log_->begin();
        log_->add_flush_all();
        log_->end();
    }
    out.simple("OK");
}

void Engine::select(Args a, ReplyWriter& out) {
    std::int64_t db = 0;
    if (!parse_int(a[1], db)) {
        out.error(not_an_integer);
    } else if (db != 0) {
        out.error("ERR DB index is out of range");
    } else {
        out.simple("OK");
    }
}

// redis-cli asks "COMMAND DOCS" at start for its hints; an empty answer means "no docs".
void Engine::command(Args a, ReplyWriter& out) {
    if (a.size() == 1 || iequals(a[1], "docs")) {
        out.array(0);
    } else if (iequals(a[1], "count") && a.size() == 2) {
        out.integer(static_cast<std::int64_t>(sizeof(commands) / sizeof(commands[0])));
    } else if (iequals(a[1], "info")) {
        out.array(a.size() - 2);
        for (std::size_t i = 2; i < a.size(); ++i) out.null_array();
    } else {
        out.errorf("ERR unknown subcommand or wrong number of arguments for '%.*s'. Try COMMAND HELP.",
                   static_cast<int>(a[1].size() < 64 ? a[1].size() : 64), a[1].data());
    }
}

// redis-benchmark asks "CONFIG GET save" and "CONFIG GET appendonly" at start.
void Engine::config(Args a, ReplyWriter& out) {
    if (!iequals(a[1], "get")) {
        if (iequals(a[1], "set")) {
            out.error("ERR CONFIG SET is not supported: the configuration is the guest's command line");
        } else {
            out.errorf("ERR unknown subcommand '%.*s'. Try CONFIG HELP.",
                       static_cast<int>(a[1].size() < 64 ? a[1].size() : 64), a[1].data());
        }
        return;
    }
    if (a.size() < 3) {
        out.error("ERR wrong number of arguments for 'config|get' command");
        return;
    }
    char maxmemory[24], bulk_len[24];
    const std::string_view params[][2] = {
        {"save", ""},
        {"appendonly", log_ != nullptr ? "yes" : "no"},
        {"appendfsync", "always"},
        {"databases", "1"},
        {"maxmemory", {maxmemory, format_int(static_cast<std::int64_t>(store_.max_memory()), maxmemory)}},
        {"maxmemory-policy", "noeviction"},
        {"proto-max-bulk-len",
         {bulk_len, format_int(static_cast<std::int64_t>(config_.limits.max_bulk_bytes), bulk_len)}},
        {"timeout", "0"},
    };
    constexpr std::size_t count = sizeof(params) / sizeof(params[0]);
    bool hit[count] = {};
    std::size_t n = 0;
    for (std::size_t i = 2; i < a.size(); ++i) {
        // Parameter names are lowercase; patterns match case-insensitively.
        char pat[128];
        if (a[i].size() > sizeof(pat)) continue;
        for (std::size_t k = 0; k < a[i].size(); ++k) pat[k] = ascii_lower(a[i][k]);
        for (std::size_t p = 0; p < count; ++p) {
            if (!hit[p] && glob_match({pat, a[i].size()}, params[p][0])) {
                hit[p] = true;
                ++n;
            }
        }
    }
    out.array(2 * n);
    for (std::size_t p = 0; p < count; ++p) {
        if (!hit[p]) continue;
        out.bulk(params[p][0]);
        out.bulk(params[p][1]);
    }
}

void Engine::info(Args a, ReplyWriter& out) {
    auto wanted = [&](std::string_view section) {
        if (a.size() == 1) return true;
        for (std::size_t i = 1; i < a.size(); ++i) {
            if (iequals(a[i], section) || iequals(a[i], "all") || iequals(a[i], "default") ||
                iequals(a[i], "everything")) {
                return true;
            }
        }
        return false;
    };
    const std::uint64_t t = now();
    InfoText info;
    if (wanted("server")) {
        const std::uint64_t up = t > stats_.started_ns ? (t - stats_.started_ns) / ns_per_s : 0;
        info.section("Server");
        info.line("redis_version:7.0.0");
        info.line("keel_kvstore_version:1");
        info.line("redis_mode:standalone");
        info.line("os:keel (Xen PVH unikernel)");
        info.line("arch_bits:64");
        info.line("uptime_in_seconds:%llu", ull(up));
        info.line("uptime_in_days:%llu", ull(up / 86400));
    }
    if (wanted("clients")) {
        info.section("Clients");
        info.line("connected_clients:%llu", ull(stats_.connected));
        info.line("rejected_connections:%llu", ull(stats_.rejected_connections));
        info.line("timed_out_connections:%llu", ull(stats_.timed_out_connections));
    }
    if (wanted("memory")) {
        info.section("Memory");
        info.line("used_memory:%llu", ull(store_.memory()));
        info.line("maxmemory:%llu", ull(store_.max_memory()));
        info.line("maxmemory_policy:noeviction");
    }
    if (wanted("persistence")) {
        info.section("Persistence");
        info.line("loading:0");
        info.line("aof_enabled:%d", log_ != nullptr ? 1 : 0);
        if (log_ != nullptr) {
            const LogStats s = log_->stats();
            info.line("aof_rewrite_in_progress:%d", s.compacting ? 1 : 0);
            info.line("aof_rewrites:%llu", ull(s.compactions));
            info.line("aof_last_write_status:%s", log_->failed() == Error::ok ? "ok" : "err");
            info.line("aof_current_size:%llu", ull(s.log_bytes));
            info.line("keel_log_device:%.*s", static_cast<int>(log_->device().name().size()),
                      log_->device().name().data());
            info.line("keel_log_region:%u", s.region);
            info.line("keel_log_region_bytes:%llu", ull(s.region_bytes));
            info.line("keel_log_live_bytes:%llu", ull(s.live_bytes));
            info.line("keel_log_epoch:%llu", ull(s.epoch));
            info.line("keel_log_appended_records:%llu", ull(s.appended_lsn));
            info.line("keel_log_durable_records:%llu", ull(s.durable_lsn));
            info.line("keel_log_commits:%llu", ull(s.commits));
            info.line("keel_log_bytes_written:%llu", ull(s.bytes_written));
            info.line("keel_log_compactions_aborted:%llu", ull(s.compactions_aborted));
            info.line("keel_log_replayed_records:%llu", ull(s.replay.records));
            info.line("keel_log_replay_end_offset:%llu", ull(s.replay.end_offset));
            info.line("keel_log_replay_end:%s", to_string(s.replay.end));
            if (log_->failed() != Error::ok) info.line("keel_log_failure:%s", log_->failure());
        }
    }
    if (wanted("stats")) {
        info.section("Stats");
        info.line("total_connections_received:%llu", ull(stats_.connections_received));
        info.line("total_commands_processed:%llu", ull(stats_.commands));
        info.line("total_error_replies:%llu", ull(stats_.error_replies));
        info.line("keel_protocol_errors:%llu", ull(stats_.protocol_errors));
        info.line("keyspace_hits:%llu", ull(stats_.keyspace_hits));
        info.line("keyspace_misses:%llu", ull(stats_.keyspace_misses));
        info.line("expired_keys:%llu", ull(store_.expired_total()));
    }
    if (wanted("keyspace")) {
        info.section("Keyspace");
        if (store_.size() != 0) {
            info.line("db0:keys=%zu,expires=%zu,avg_ttl=0", store_.size(), store_.expiring());
        }
    }
    if (!info.ok()) {
        out.error(oom_error);
        return;
    }
    out.bulk(info.text());
}

}  // namespace keel::kv

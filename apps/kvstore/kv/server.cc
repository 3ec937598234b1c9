// Server and Session: the glue between the parser, the engine and the log.
#include "kv/server.h"

#include "keel/log.h"

namespace keel::kv {

Server::Server(const Config& config, Clock clock)
    : config_(config), store_(config.store), engine_(store_, nullptr, static_cast<Clock&&>(clock), config) {}

Task<Result<ReplayReport>> Server::open(block::Device* disk) {
    stats().started_ns = engine_.now();
    if (disk == nullptr) co_return ReplayReport{};
    log_.emplace(*disk, store_, config_.log);
    auto r = co_await log_->open(engine_.now());
    if (!r.ok()) co_return r.error();
    engine_.set_log(&*log_);
    co_return r;
}

Task<void> Server::background() {
    while (!stop_.is_set()) {
        (void)co_await stop_.wait_for(config_.sweep_interval_ns);
        if (stop_.is_set()) break;
        store_.sweep(engine_.now(), config_.sweep_buckets);
        Log* log = this->log();
        if (log == nullptr || log->failed() != Error::ok) continue;  // reads are still served
        if (log->wants_compaction()) {
            const LogStats before = log->stats();
            auto r = co_await log->compact(engine_.now());
            if (r.ok()) {
                KLOG_INFO("kvstore: compacted the log from %llu to %llu bytes (region %u)",
                          static_cast<unsigned long long>(before.log_bytes),
                          static_cast<unsigned long long>(log->stats().log_bytes), log->stats().region);
            } else if (log->failed() == Error::ok) {
                KLOG_WARN("kvstore: log compaction gave up: %s", to_string(r.error()));
            }
        }
    }
}

Session::Session(Server& server) : server_(server), parser_(server.config().limits) {
    out_.set_limit(server.config().max_output_bytes);
    if (!in_.resize(server.config().input_bytes)) ++server_.stats().rejected_connections;
    ++server_.stats().connections_received;
    ++server_.stats().connected;
}

Session::~Session() { --server_.stats().connected; }

std::size_t Session::feed(std::span<const char> data) {
    if (closing_ || input_ended_) return data.size();  // nothing more is read
    std::size_t used = 0;
    bool ran = false;
    while (used < data.size() && out_.size() - out_off_ < server_.config().output_high_water) {
        if (parser_.idle()) ++started_;
        const ParseResult r = parser_.feed(data.subspan(used));
        used += r.consumed;
        if (r.state == ParseState::incomplete) break;
        if (r.state == ParseState::error) {
            ++server_.stats().protocol_errors;
            ReplyWriter w(out_);
            w.error(parser_.error());
            closing_ = true;
            used = data.size();
            break;
        }
        ran = true;
        const Engine::Outcome outcome = server_.engine().execute(parser_.args(), out_);
        parser_.reset();
        if (outcome == Engine::Outcome::close) {
            closing_ = true;
            used = data.size();
            break;
        }
    }
    // Whatever the commands saw may rest on records not yet durable (also other sessions'):
    // the output waits for all of them. Once the log has failed nothing more becomes durable:
    // what runs from then on answers from memory (writes are refused) without waiting.
    const Log* log = server_.log();
    if (ran && log != nullptr && log->failed() == Error::ok) lsn_ = log->appended_lsn();
    return used;
}

bool Session::needs_commit() const {
    const Log* log = static_cast<const Server&>(server_).log();
    return log != nullptr && lsn_ > log->durable_lsn();
}

Task<Result<void>> Session::commit() {
    Log* log = server_.log();
    if (log == nullptr) co_return Result<void>{};
    co_return co_await log->commit(lsn_);
}

void Session::sent(std::size_t n) {
    out_off_ += n < out_.size() - out_off_ ? n : out_.size() - out_off_;
    if (out_off_ == out_.size()) {
        out_.clear();
        out_off_ = 0;
        out_.shrink_if_empty(256 * 1024);
    }
}

SessionState Session::state() const {
    const bool pending = out_off_ < out_.size();
    if ((closing_ || input_ended_) && !pending) return SessionState::closed;
    if (closing_ || input_ended_ || out_.size() - out_off_ >= server_.config().output_high_water) {
        return SessionState::writing;
    }
    return SessionState::reading;
}

}  // namespace keel::kv

// The connection glue (conn.h).
#include "kv/conn.h"

#include <cstddef>
#include <span>

#include "keel/log.h"
#include "keel/loop.h"

namespace keel::kv {
namespace {

// A deadline passed: one line per 100, so a flood cannot flood the console too.
void timed_out(Server& server, const char* why) {
    const auto n = ++server.stats().timed_out_connections;
    if (n % 100 == 1)
        KLOG_WARN("kvstore: closing a connection: %s (%llu so far)", why, static_cast<unsigned long long>(n));
}

}  // namespace

Task<void> serve_connection(net::TcpStream s, Server& server, const ConnLimits& limits) {
    Session session(server);
    if (!session.ok()) {
        // Out of heap: this connection goes, the ones being served stay.
        if (server.stats().rejected_connections % 100 == 1) {
            KLOG_WARN("kvstore: refusing a connection: no memory for its buffers (%llu refused so far)",
                      static_cast<unsigned long long>(server.stats().rejected_connections));
        }
        s.abort();
        co_return;
    }
    const std::span<char> in = session.input();
    std::size_t have = 0, off = 0;
    // The command in progress (Session::mid_command) started when feed() took its first byte:
    // its deadline runs from then (not from when its bytes arrived: writing earlier replies is
    // our time, not the client's), plus 1 s per min_rate bytes fed since.
    std::uint64_t command_start = loop().now();  // before the first byte: the accept
    std::uint64_t command_bytes = 0;
    const auto grace = [&limits](std::uint64_t bytes) { return bytes * 1'000'000'000ull / limits.min_rate; };
    for (;;) {
        if (off < have && session.state() == SessionState::reading) {
            const std::uint64_t started = session.commands_started();
            const std::size_t n = session.feed(std::span<const char>(in.data() + off, have - off));
            off += n;
            if (session.commands_started() != started) {
                command_start = loop().now();
                command_bytes = 0;
            }
            command_bytes += n;  // may count the end of earlier commands too: generous by one read
            continue;
        }
        if (!session.output().empty()) {
            if (session.needs_commit()) {
                if (!(co_await session.commit()).ok()) {
                    s.abort();  // the log failed: these replies must never be sent
                    co_return;
                }
            }
            // Everything ready now goes out in time, however slowly the client reads.
            const std::uint64_t write_deadline = loop().now() + limits.write_ns + grace(session.output().size());
            while (!session.output().empty()) {
                const std::uint64_t now = loop().now();
                auto out = session.output();
                // Never co_await inside a conditional expression: g++ 12 miscompiles it (docs/cxx-subset.md).
                Result<std::size_t> w = Error::timed_out;
                if (now < write_deadline) w = co_await s.write_for(std::as_bytes(out), write_deadline - now);
                if (!w.ok()) {
                    if (w.error() == Error::timed_out) timed_out(server, "its replies were not read");
                    s.abort();
                    co_return;
                }
                session.sent(out.size());
            }
            continue;
        }
        if (session.state() == SessionState::closed) {
            (void)co_await s.close();
            co_return;
        }
        if (off < have) continue;  // writing: the output above makes room first

        // Everything that arrived is fed: wait for more, within the deadline that applies.
        std::uint64_t deadline = 0;
        const char* why = "idle";
        const bool any_input = session.commands_started() != 0;  // every byte fed starts or continues one
        if (session.mid_command() || !any_input) {
            deadline = command_start + limits.command_ns + grace(command_bytes);
            why = any_input ? "a command did not arrive whole in time" : "no command in time after connecting";
        } else if (limits.idle_ns != 0) {
            deadline = loop().now() + limits.idle_ns;
        }
        const auto buf = std::as_writable_bytes(in);
        const std::uint64_t now = loop().now();
        Result<std::size_t> r = Error::timed_out;
        if (deadline == 0 || (now >= deadline && s.buffered() != 0)) {
            r = co_await s.read(buf);  // data already here is read even past the deadline
        } else if (now < deadline) {
            r = co_await s.read_for(buf, deadline - now);
        }
        if (!r.ok()) {
            if (r.error() == Error::timed_out) timed_out(server, why);
            s.abort();
            co_return;
        }
        if (r.value() == 0) {
            session.end_of_input();
        } else {
            have = r.value();
            off = 0;
        }
    }
}

}  // namespace keel::kv

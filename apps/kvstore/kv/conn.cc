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
    // The command in progress (Session::mid_command) started in the data of the last read that
    // began a command: its deadline is fixed then and moved by nothing but its completion.
    std::uint64_t last_data_at = 0;
    std::uint64_t command_deadline = 0;
    std::uint64_t deadline_for = 0;  // Session::commands_started() when command_deadline was set
    for (;;) {
        if (off < have && session.state() == SessionState::reading) {
            off += session.feed(std::span<const char>(in.data() + off, have - off));
            continue;
        }
        if (!session.output().empty()) {
            if (session.needs_commit() && !(co_await session.commit()).ok()) {
                s.abort();  // the log failed: these replies must never be sent
                co_return;
            }
            // Everything ready now goes out within write_ns, however slowly the client reads.
            const std::uint64_t write_deadline = loop().now() + limits.write_ns;
            while (!session.output().empty()) {
                const std::uint64_t now = loop().now();
                auto out = session.output();
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
        if (session.mid_command()) {
            if (command_deadline == 0 || deadline_for != session.commands_started()) {
                command_deadline = last_data_at + limits.command_ns;
                deadline_for = session.commands_started();
            }
            deadline = command_deadline;
            why = "a command did not arrive whole in time";
        } else {
            command_deadline = 0;
            if (limits.idle_ns != 0) deadline = loop().now() + limits.idle_ns;
        }
        const auto buf = std::as_writable_bytes(in);
        const std::uint64_t now = loop().now();
        // Never co_await inside a conditional expression: g++ 12 miscompiles it (docs/cxx-subset.md).
        Result<std::size_t> r = Error::timed_out;
        if (deadline == 0) {
            r = co_await s.read(buf);
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
            last_data_at = loop().now();
        }
    }
}

}  // namespace keel::kv

// The connection glue (conn.h).
#include "conn.h"

#include <array>
#include <cstddef>
#include <new>

#include "keel/loop.h"

namespace keel::http {
namespace {

std::span<const std::byte> as_bytes(std::span<const char> s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// Closing with unread input makes TCP send a reset, which can destroy the response before
// the client read it (an error answered mid-request, e.g. 414/431). So: send our FIN at
// once behind the response (clients that read to the end of the connection, like ab with
// HTTP/1.0, finish now), then read and drop what the client still sends until it closes
// too, for a bounded time and amount, and close.
Task<void> linger_and_close(net::TcpStream& s, std::array<char, 4096>& scratch) {
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

// One segment for a response's head and body, and its FIN on the last one when the connection
// closes after it (a short response then takes one frame, not three).
net::WriteEnd write_end(const Session& session) {
    switch (session.output_end()) {
    case Session::OutputEnd::more: return net::WriteEnd::more;
    case Session::OutputEnd::then_close: return net::WriteEnd::shutdown;
    case Session::OutputEnd::flush: break;
    }
    return net::WriteEnd::send;
}

// A metrics page larger than the session's scratch: one buffer of max_dynamic_body bytes,
// allocated (fallibly: none means a 500) when the first such page is asked for on the
// connection, and kept until it closes.
struct LargeScratch {
    char* data = nullptr;

    static std::span<char> get(void* ctx) {
        auto* self = static_cast<LargeScratch*>(ctx);
        if (self->data == nullptr)
            self->data = static_cast<char*>(::operator new (max_dynamic_body, std::nothrow_t{}));
        return self->data == nullptr ? std::span<char>() : std::span<char>(self->data, max_dynamic_body);
    }
};

}  // namespace

Task<void> serve_connection(net::TcpStream s, Router& router, const SessionOptions& options, const ConnLimits& limits) {
    // Buffers are allocated once per connection, never per request.
    auto* storage = new SessionStorage<>();
    auto* in = new std::array<char, 4096>();
    LargeScratch large;
    SessionBuffers buffers = storage->buffers();
    buffers.more_scratch = {&LargeScratch::get, &large};
    Session session(router, buffers, options);
    Stats* stats = options.stats;
    std::size_t have = 0, off = 0;
    bool eof = false;
    // Each deadline is fixed when its phase starts (a request's first byte, the end of a
    // response, a response's first byte) and never moved by later bytes: a client that trickles
    // holds its slot for a bounded time.
    std::uint64_t idle_deadline = loop().now() + limits.idle_ns;
    std::uint64_t request_deadline = 0;  // 0: no request started
    for (;;) {
        if (session.state() == SessionState::writing) {
            const std::uint64_t write_deadline = loop().now() + limits.write_ns;
            while (session.state() == SessionState::writing) {
                const std::uint64_t now = loop().now();
                auto out = session.output();
                Result<std::size_t> w = Error::timed_out;
                if (now < write_deadline) w = co_await s.write_for(as_bytes(out), write_deadline - now, write_end(session));
                if (!w.ok()) {
                    if (w.error() == Error::timed_out && stats) ++stats->write_timeouts;
                    s.abort();
                    goto done;
                }
                session.sent(out.size());
            }
            request_deadline = 0;
            idle_deadline = loop().now() + limits.idle_ns;
        }
        if (session.state() == SessionState::closed) {
            co_await linger_and_close(s, *in);
            break;
        }
        if (off < have) {
            off += session.feed(std::span<const char>(in->data() + off, have - off));
            if (session.state() == SessionState::reading && request_deadline == 0)
                request_deadline = loop().now() + limits.request_ns;
            continue;
        }
        if (eof) {
            (void)co_await s.close();
            break;
        }
        off = have = 0;
        const bool reading = session.state() == SessionState::reading;
        const std::uint64_t deadline = reading ? request_deadline : idle_deadline;
        const std::uint64_t now = loop().now();
        Result<std::size_t> r = Error::timed_out;
        if (now < deadline) r = co_await s.read_for(std::as_writable_bytes(std::span<char>(*in)), deadline - now);
        if (!r.ok()) {
            if (r.error() == Error::timed_out) {
                if (stats) ++(reading ? stats->request_timeouts : stats->idle_timeouts);
                session.timed_out();  // reading: a 408, then closed; idle: closed
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
        // The request starts with the first byte that arrives after the previous one ended.
        if (!reading && request_deadline == 0) request_deadline = loop().now() + limits.request_ns;
    }
done:
    ::operator delete(large.data);
    delete in;
    delete storage;
}

}  // namespace keel::http

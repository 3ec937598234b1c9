// TCP for coroutines: TcpListener and TcpStream over lwIP's raw API.
//
//   auto listener = TRY(TcpListener::listen(80));
//   for (;;) {
//       auto conn = co_await listener.accept();          // Result<TcpStream>
//       if (!conn) break;
//       spawn(serve(std::move(*conn)));
//   }
//   Task<void> serve(TcpStream s) {
//       std::byte buf[2048];
//       for (;;) {
//           auto n = co_await s.read_for(buf, s(30));      // Result<size_t>, 0 = peer closed
//           if (!n || *n == 0) break;
//           if (!co_await s.write({buf, *n})) break;      // waits for send-buffer space
//       }
//       (void)co_await s.close();                         // graceful; aborts on timeout
//   }
//
// Handles are move-only and own the connection. Dropping one closes the connection (FIN, or a
// reset if lwIP cannot queue the FIN); an operation in flight on it then completes with
// Error::cancelled and never touches it again. Errors: Error::closed (reset by the peer, or
// the connection died), Error::timed_out, Error::cancelled, Error::busy (a second read or
// write while one is pending), Error::no_memory, Error::not_found (no route), Error::exists
// (port in use). Context: loop only; every callback from lwIP only records what happened and
// wakes the waiting task from the loop, never inline.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>

#include "keel/loop.h"
#include "keel/net/addr.h"
#include "keel/net/waiter.h"
#include "keel/result.h"
#include "keel/task.h"
#include "keel/timer.h"

namespace keel::net {

class TcpStream;

/// What a write does once all its data is queued.
enum class WriteEnd : std::uint8_t {
    send,      ///< send it now (as far as the window lets it go)
    more,      ///< more follows at once (like MSG_MORE): a partly filled last segment waits for
               ///< it; the next write, shutdown_write() or close() sends it (so may an
               ///< incoming segment or lwIP's poll timer, within a second: best effort)
    shutdown,  ///< then shutdown_write(): the FIN rides on the last data segment
};

namespace detail {
struct TcpConn;
struct TcpListenState;

// What read(), write() and accept() wait for (see Pending in waiter.h); defined in tcp.cc.
struct TcpRead {
    using Owner = TcpConn;
    using Value = std::size_t;
    static Waiter*& slot(TcpConn& c);
    Error precheck() const { return buf.empty() ? Error::invalid_argument : Error::ok; }
    bool step(TcpConn& c, Result<std::size_t>& out);
    std::span<std::byte> buf;
};
struct TcpWrite {
    using Owner = TcpConn;
    using Value = std::size_t;
    static Waiter*& slot(TcpConn& c);
    bool step(TcpConn& c, Result<std::size_t>& out);
    std::span<const std::byte> data;
    std::size_t done = 0;
    WriteEnd end = WriteEnd::send;
};
struct TcpAccept {
    using Owner = TcpListenState;
    using Value = TcpStream;
    static Waiter*& slot(TcpListenState& l);
    bool step(TcpListenState& l, Result<TcpStream>& out);
};
}  // namespace detail

/// A TCP connection. Default-constructed: empty (every operation fails with Error::closed).
class TcpStream {
public:
    using ReadAwaiter = detail::Pending<detail::TcpRead>;
    using WriteAwaiter = detail::Pending<detail::TcpWrite>;

    TcpStream() = default;
    TcpStream(TcpStream&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
    TcpStream& operator=(TcpStream&& o) noexcept;
    TcpStream(const TcpStream&) = delete;
    TcpStream& operator=(const TcpStream&) = delete;
    /// Closes gracefully if still open (reset if lwIP cannot queue the FIN).
    ~TcpStream();

    /// Connect to addr:port; Error::timed_out after `timeout_ns`, Error::closed when refused.
    /// `local` binds the source address (multi-homed hosts; by default lwIP picks by route).
    static Task<Result<TcpStream>> connect(IpAddr addr, std::uint16_t port, std::uint64_t timeout_ns,
                                           std::optional<IpAddr> local = std::nullopt);

    /// co_await: Result<size_t>: bytes read into `buf` (at least 1), 0 once the peer closed
    /// its side and everything before was read. Completes without suspending when data is
    /// already buffered.
    ReadAwaiter read(std::span<std::byte> buf);
    /// read() that fails with Error::timed_out if nothing arrives within `timeout_ns`.
    ReadAwaiter read_for(std::span<std::byte> buf, std::uint64_t timeout_ns);

    /// co_await: Result<size_t>: all of `data` is queued to lwIP (the result is its size), or
    /// the error that stopped it. Waits while the send buffer is full (back-pressure); the
    /// bytes are copied, so `data` may be reused once this completes. `end`: see WriteEnd.
    /// Nagle's algorithm is off, so a write ends its last segment unless it ends with
    /// WriteEnd::more: a head written so goes out with its body in one segment; a last write
    /// with WriteEnd::shutdown carries the FIN (if the write side cannot be shut, the data is
    /// sent as with WriteEnd::send).
    WriteAwaiter write(std::span<const std::byte> data, WriteEnd end = WriteEnd::send);
    /// write() that fails with Error::timed_out if the data is not all queued by then.
    WriteAwaiter write_for(std::span<const std::byte> data, std::uint64_t timeout_ns, WriteEnd end = WriteEnd::send);

    /// Half close: queue a FIN behind everything written so far; reading goes on until the
    /// peer closes its side (read() then returns 0). Writing afterwards fails. Call close()
    /// soon after: the connection is released only then.
    Result<void> shutdown_write();
    /// Graceful close: send FIN behind everything written, then wait (up to `timeout_ns`) until
    /// the peer acknowledged all of it. On timeout or error the connection is reset instead and
    /// that error returned. The handle is empty from the call on.
    Task<Result<void>> close(std::uint64_t timeout_ns = 5'000'000'000ull);
    /// Reset the connection now (RST). The handle is empty afterwards.
    void abort();

    /// Disable (true, the default) or enable Nagle's algorithm.
    void set_nodelay(bool on);

    /// True while the handle owns a connection that has not failed.
    bool is_open() const;
    explicit operator bool() const { return c_ != nullptr; }
    /// The remote and local endpoints (as when the connection was set up).
    Endpoint peer() const;
    Endpoint local() const;
    /// Bytes received and not yet read.
    std::size_t buffered() const;

private:
    friend struct detail::TcpConn;
    friend struct detail::TcpAccept;
    friend class TcpListener;
    explicit TcpStream(detail::TcpConn* c) : c_(c) {}
    detail::TcpConn* c_ = nullptr;
};

/// A listening socket. Connections the peer completed wait in a queue of `backlog` until
/// accept() takes them; more are refused (lwIP's listen backlog counts them).
class TcpListener {
public:
    using AcceptAwaiter = detail::Pending<detail::TcpAccept>;

    TcpListener() = default;
    TcpListener(TcpListener&& o) noexcept : l_(std::exchange(o.l_, nullptr)) {}
    TcpListener& operator=(TcpListener&& o) noexcept;
    TcpListener(const TcpListener&) = delete;
    TcpListener& operator=(const TcpListener&) = delete;
    /// Stops listening; queued connections are reset; a pending accept gets Error::cancelled.
    ~TcpListener();

    /// Listen on `port` (0: any free port, see port()) on every address, IPv4 and IPv6, or
    /// only on `local`. backlog 1..255.
    static Result<TcpListener> listen(std::uint16_t port, unsigned backlog = 128,
                                      std::optional<IpAddr> local = std::nullopt);

    /// co_await: Result<TcpStream>. One accept at a time (Error::busy otherwise).
    AcceptAwaiter accept();
    /// accept() that fails with Error::timed_out after `timeout_ns`.
    AcceptAwaiter accept_for(std::uint64_t timeout_ns);

    /// Stop listening now (as the destructor does).
    void close();
    std::uint16_t port() const;
    explicit operator bool() const { return l_ != nullptr; }
    /// Connections waiting to be accepted.
    std::size_t pending() const;

private:
    explicit TcpListener(detail::TcpListenState* l) : l_(l) {}
    detail::TcpListenState* l_ = nullptr;
};

}  // namespace keel::net

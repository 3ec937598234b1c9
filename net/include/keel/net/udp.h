// UDP for coroutines.
//
//   auto sock = TRY(UdpSocket::bind(5353));
//   std::byte buf[1500];
//   auto d = co_await sock.recv_from(buf);            // Result<Datagram>
//   if (d) (void)sock.send_to(d->from, {buf, d->size});
//
// Received datagrams wait in a queue of queue_capacity; when it is full, new ones are dropped
// and counted (Stats::udp_rx_dropped), as are those that would hold more than the socket's
// share of the link's buffers and find no share of the heap for a copy. Context: loop only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>

#include "keel/net/addr.h"
#include "keel/net/waiter.h"
#include "keel/result.h"

namespace keel::net {

struct Datagram;

namespace detail {
struct UdpState;

// What recv_from() waits for (see Pending in waiter.h); defined in udp.cc.
struct UdpRecv {
    using Owner = UdpState;
    using Value = Datagram;
    static Waiter*& slot(UdpState& s);
    bool step(UdpState& s, Result<Datagram>& out);
    std::span<std::byte> buf;
};
}  // namespace detail

/// One received datagram: `size` bytes were copied into the caller's buffer.
struct Datagram {
    std::size_t size = 0;
    bool truncated = false;  ///< the datagram was longer than the buffer; the rest is lost
    Endpoint from;
};

class UdpSocket {
public:
    using RecvAwaiter = detail::Pending<detail::UdpRecv>;
    static constexpr std::size_t queue_capacity = 32;
    /// Queued datagrams that may keep the link's receive buffers (zero-copy); the others are
    /// copied onto the heap within the share rx copies have (net/src/budget.h), or dropped.
    static constexpr std::size_t pinned_max = 16;

    UdpSocket() = default;
    UdpSocket(UdpSocket&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    UdpSocket& operator=(UdpSocket&& o) noexcept;
    UdpSocket(const UdpSocket&) = delete;
    UdpSocket& operator=(const UdpSocket&) = delete;
    /// Unbinds; a pending receive completes with Error::cancelled.
    ~UdpSocket();

    /// Bind `port` (0: any free port, see port()) on every address or only on `local`.
    /// Error::exists when the port is taken.
    static Result<UdpSocket> bind(std::uint16_t port, std::optional<IpAddr> local = std::nullopt);

    /// Send one datagram (copied). Error::no_space above 65507 bytes, Error::not_found when
    /// there is no route, Error::no_memory when lwIP has no buffer.
    Result<void> send_to(const Endpoint& to, std::span<const std::byte> data);

    /// co_await: Result<Datagram>: the oldest queued datagram. `timeout_ns` 0 waits forever,
    /// otherwise Error::timed_out. One receive at a time (Error::busy otherwise).
    RecvAwaiter recv_from(std::span<std::byte> buf, std::uint64_t timeout_ns = 0);

    void close();
    std::uint16_t port() const;
    std::size_t queued() const;
    explicit operator bool() const { return s_ != nullptr; }

private:
    explicit UdpSocket(detail::UdpState* s) : s_(s) {}
    detail::UdpState* s_ = nullptr;
};

}  // namespace keel::net

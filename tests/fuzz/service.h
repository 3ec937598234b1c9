// The small service the stack fuzz targets (lwip_input, netfront_stack) run over the net
// layer: a TCP listener on port 80 whose accept loop keeps up to four connections, echoing on
// some and leaving the others unread, and a UDP echo on port 7; the fuzzer's service moves
// (read, write more than the window, close, abort, shut the listener, short the heap: the
// bounds on what clients make the guest hold, net/src/budget.h, then refuse and hold back).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "../fakes/scarce_heap.h"

#include "fuzz_support.h"
#include "keel/net/net.h"
#include "keel/task.h"
#include "keel/timer.h"

namespace keel::fuzz {

struct Service {
    net::TcpListener listener;
    std::array<net::TcpStream, 4> conns;
    net::UdpSocket echo;
    unsigned reading = 0;  ///< bit k: the service reads (and echoes) connection k
    std::optional<net::test::ScarceHeap> heap;  ///< while set: keel::heap_headroom() is its free pages

    /// Listen and bind (the interface must be configured), start the accept loop and the echo.
    void start(unsigned reading_mask) {
        reading = reading_mask;
        auto l = net::TcpListener::listen(80, 4);
        CHECK(l.ok());
        listener = std::move(*l);
        auto u = net::UdpSocket::bind(7);
        CHECK(u.ok());
        echo = std::move(*u);
        spawn(accept_loop(*this));
        spawn(serve_udp(*this));
    }

    /// k, what: read / write / close / abort connection k, or shut the listener. False for the
    /// sixth move, the target's own (k is then the next byte's to read).
    bool act(Input& in) {
        const std::size_t k = in.u8() % 4;
        switch (in.u8() % 6) {
            case 0:  // one read
                spawn([](net::TcpStream& st) -> Task<void> {
                    std::byte buf[300];
                    (void)co_await st.read_for(buf, s(1));
                }(conns[k]));
                break;
            case 1:  // a write larger than the window
                spawn([](net::TcpStream& st) -> Task<void> {
                    static const std::vector<std::byte> data(100'000, std::byte{'x'});
                    (void)co_await st.write_for(data, s(5));
                }(conns[k]));
                break;
            case 2:
                spawn([](net::TcpStream st) -> Task<void> {
                    (void)co_await st.close(s(2));
                }(std::move(conns[k])));
                break;
            case 3:
                conns[k].abort();
                break;
            case 4:  // shut the listener, or set the heap's headroom
                if (k == 0) {
                    listener.close();
                } else if (k == 3) {
                    heap.reset();  // unlimited
                } else {
                    if (!heap) heap.emplace();
                    heap->left = k == 1 ? 8 : 70;  // 32 KiB: under every floor; 280 KiB: just over them
                }
                break;
            case 5:
                return false;
        }
        return true;
    }

    /// Teardown, handles first (their pbufs point into the link): the tasks end with them.
    void stop() {
        listener.close();
        for (auto& c : conns) c.abort();
        echo = net::UdpSocket();
        heap.reset();
    }

private:
    static Task<void> accept_loop(Service& sv) {
        for (;;) {
            auto c = co_await sv.listener.accept();
            if (!c) co_return;
            for (std::size_t k = 0; k < sv.conns.size(); ++k) {
                if (sv.conns[k]) continue;
                sv.conns[k] = std::move(*c);
                if (sv.reading & (1u << k)) spawn(echo_tcp(sv, k));
                break;
            }
        }
    }
    static Task<void> echo_tcp(Service& sv, std::size_t i) {
        std::byte buf[700];
        for (;;) {
            auto r = co_await sv.conns[i].read(buf);
            if (!r || *r == 0) co_return;
            if (!(co_await sv.conns[i].write({buf, *r}))) co_return;  // echo
        }
    }
    static Task<void> serve_udp(Service& sv) {
        std::byte buf[1500];
        for (;;) {
            auto d = co_await sv.echo.recv_from(buf);
            if (!d) co_return;
            (void)sv.echo.send_to(d->from, {buf, d->size});
        }
    }
};

}  // namespace keel::fuzz

// lwIP against a peer that plays with windows and segment sizes: a write must never find lwIP's
// segment bound below a segment it already queued, and a segment received out of order must
// never outgrow the receive window once the data before it arrives (lwIP asserts in both cases,
// and an lwIP assertion is a panic).
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "fakes/fake_link.h"

namespace keel::net::test {
namespace {

constexpr std::uint16_t peer_port = 30000;
constexpr std::uint16_t service_port = 7300;

Task<void> write_into(TcpStream& st, std::vector<std::byte> data, std::optional<Result<std::size_t>>& out) {
    out.emplace(co_await st.write(data));
}

std::vector<std::byte> mss_option(std::uint16_t mss) {
    return {std::byte{2}, std::byte{4}, std::byte(mss >> 8), std::byte(mss & 0xff)};
}
std::vector<std::byte> with_window_scale(std::vector<std::byte> options, std::uint8_t shift) {
    options.insert(options.end(), {std::byte{1}, std::byte{3}, std::byte{3}, std::byte{shift}});
    return options;
}

constexpr std::uint32_t b_window = 44 * 1460;  // B's receive window (TCP_WND, lwipopts.h)
constexpr std::uint32_t b_send_buffer = 2 * b_window;  // TCP_SND_BUF

/// B's service against a hand-made peer at 10.0.0.1:30000 (A's stack stays out of it).
class PeerWindow : public TwoHosts<> {
protected:
    PeerWindow() {
        peer.src = addr_a;
        peer.dst = addr_b;
        peer.sport = peer_port;
        peer.dport = service_port;
        // B's side of the conversation, taken off the wire (A's stack would reset it): the next
        // sequence number and the payload bytes in order.
        dev_b.on_wire = [this](std::vector<std::byte>& f) {
            if (f.size() < 54 || f[12] != std::byte{0x08} || f[13] != std::byte{0x00} ||
                f[23] != std::byte{6}) {
                return false;
            }
            auto get16 = [&f](std::size_t at) { return (unsigned(f[at]) << 8) | unsigned(f[at + 1]); };
            if (get16(36) != peer_port) return false;
            const std::uint32_t seq = (get16(38) << 16) | get16(40);
            const std::size_t hdr = (unsigned(f[46]) >> 4) * 4;
            const std::size_t payload = get16(16) - 20 - hdr;
            b_ack = (get16(42) << 16) | get16(44);
            if (unsigned(f[47]) & 0x02) {
                b_next = seq + 1;
                b_syn_window = get16(48);
                for (std::size_t at = 54; at + 1 < 34 + hdr;) {  // B's options: its window scale
                    const unsigned kind = unsigned(f[at]);
                    if (kind == 0) break;
                    if (kind == 1) { ++at; continue; }
                    const unsigned len = unsigned(f[at + 1]);
                    if (len < 2) break;
                    if (kind == 3 && len == 3) b_wscale = int(f[at + 2]);
                    at += len;
                }
            } else if (seq == b_next && payload > 0) {
                received.insert(received.end(), f.begin() + 34 + static_cast<std::ptrdiff_t>(hdr),
                                f.begin() + 34 + static_cast<std::ptrdiff_t>(hdr + payload));
                b_next += static_cast<std::uint32_t>(payload);
                largest = std::max(largest, payload);
                in_flight_max = std::max(in_flight_max, b_next - peer.ack);
            }
            return true;
        };
    }
    ~PeerWindow() override { dev_b.on_wire = nullptr; }  // it points into this object

    /// SYN (window `syn_window`, options `syn_options`: none, and B uses an MSS of 536), ACK
    /// (window `ack_window`, options `ack_options`), accepted.
    void open(std::uint16_t syn_window, std::uint16_t ack_window, TcpStream& out,
              std::vector<std::byte> syn_options = {}, std::vector<std::byte> ack_options = {}) {
        auto l = TcpListener::listen(service_port);
        ASSERT_TRUE(l.ok());
        listener = std::move(l.value());
        std::optional<Result<TcpStream>> accepted;
        start([](TcpListener& li, std::optional<Result<TcpStream>>& o) -> Task<void> {
            o.emplace(co_await li.accept());
        }(listener, accepted));
        peer.seq = 1000;
        peer.window = syn_window;
        peer.options = std::move(syn_options);
        ASSERT_TRUE(dev_b.receive(make_tcp_frame(peer)));
        ASSERT_TRUE(run_until([&] { return b_next != 0; }, ms(100)));
        peer.options.clear();
        peer.flags = 0x10;
        peer.seq = 1001;
        peer.ack = b_next;
        peer.window = ack_window;
        peer.options = std::move(ack_options);
        ASSERT_TRUE(dev_b.receive(make_tcp_frame(peer)));
        peer.options.clear();
        ASSERT_TRUE(run_until([&] { return accepted.has_value(); }, ms(100)));
        ASSERT_TRUE(accepted->ok());
        out = std::move(accepted->value());
    }
    /// `n` bytes written and queued (the write returned).
    void queue(TcpStream& st, const std::vector<std::byte>& data) {
        std::optional<Result<std::size_t>> wrote;
        start(write_into(st, data, wrote));
        ASSERT_TRUE(run_until([&] { return wrote.has_value(); }, ms(100)));
        ASSERT_TRUE(wrote->ok());
    }
    /// The peer acknowledges what arrives, offering `window` each time, until `total` bytes are there.
    void acknowledge_until(std::size_t total, std::uint16_t window) {
        peer.window = window;
        for (int i = 0; i < 200 && received.size() < total; ++i) {
            run_until([] { return false; }, ms(300));
            peer.ack = b_next;
            ASSERT_TRUE(dev_b.receive(make_tcp_frame(peer)));
        }
        run_until([] { return false; }, ms(10));
    }

    /// The write that panicked: `second` written after `first` was queued, the peer offering
    /// `window`; both arrive whole and in order.
    void write_after(TcpStream& st, const std::vector<std::byte>& first, std::size_t second_size,
                     std::uint16_t window) {
        const std::vector<std::byte> second(second_size, std::byte{0x5a});
        std::optional<Result<std::size_t>> wrote;
        start(write_into(st, second, wrote));
        ASSERT_NO_FATAL_FAILURE(acknowledge_until(first.size() + second.size(), window));
        ASSERT_TRUE(wrote.has_value());
        EXPECT_TRUE(wrote->ok());
        ASSERT_EQ(received.size(), first.size() + second.size());
        EXPECT_TRUE(std::equal(first.begin(), first.end(), received.begin()));
        EXPECT_TRUE(std::equal(second.begin(), second.end(),
                               received.begin() + static_cast<std::ptrdiff_t>(first.size())));
    }

    /// `bytes` from `from`, in order, in segments of at most 1460 bytes.
    void send_in_order(std::uint32_t from, std::uint32_t bytes) {
        for (std::uint32_t at = 0; at < bytes;) {
            const std::uint32_t n = std::min<std::uint32_t>(1460, bytes - at);
            peer.seq = from + at;
            peer.payload = pattern(n);
            ASSERT_TRUE(dev_b.receive(make_tcp_frame(peer)));
            loop.run_once(false);
            at += n;
        }
    }

    /// `data` written on `st` while the peer acknowledges one segment's worth (1460 bytes) at a
    /// time as it arrives, offering `window` (scaled as it announced): B's congestion window
    /// grows by a segment per acknowledgement, and in_flight_max shows what the peer's window
    /// let it send. The write completes and all of `data` arrives, in order.
    void write_acknowledging_each_segment(TcpStream& st, const std::vector<std::byte>& data,
                                          std::uint16_t window) {
        std::optional<Result<std::size_t>> wrote;
        start(write_into(st, data, wrote));
        peer.window = window;
        const std::uint32_t start = peer.ack - static_cast<std::uint32_t>(received.size());
        for (int i = 0; i < 100'000 && received.size() < data.size(); ++i) {
            run_until([] { return false; }, ms(1));
            const std::uint32_t have = start + static_cast<std::uint32_t>(received.size());
            if (have == peer.ack) continue;
            peer.ack += std::min<std::uint32_t>(1460, have - peer.ack);
            ASSERT_TRUE(dev_b.receive(make_tcp_frame(peer)));
        }
        ASSERT_TRUE(run_until([&] { return wrote.has_value(); }, ms(100)));
        EXPECT_TRUE(wrote->ok());
        ASSERT_EQ(received.size(), data.size());
        EXPECT_TRUE(std::equal(data.begin(), data.end(), received.begin()));
    }

    TcpListener listener;
    TcpFrame peer;
    std::uint32_t b_next = 0;
    std::uint16_t b_syn_window = 0;  ///< the window in B's SYN-ACK
    int b_wscale = -1;               ///< the shift of B's window scale option (-1: none)
    std::uint32_t in_flight_max = 0;  ///< the most data B had sent beyond the peer's last ACK
    std::uint32_t b_ack = 0;  ///< the last acknowledgement number B sent
    std::vector<std::byte> received;
    std::size_t largest = 0;  ///< the largest segment payload B sent
};

// A peer that opens with a zero window, then offers 600 bytes. lwIP cuts what it queues to the
// MSS, or to half the largest window the peer ever offered once that is not 0: the data queued
// during the zero window went into segments of 536 bytes (the peer sent no MSS option), the
// 600-byte window let one leave and brought the bound down to 300, below the 536 still queued,
// and the next tcp_write() asserted "mss_local is too small" (tcp_out.c): any peer could panic
// the guest. Found by the netfront_stack fuzz target. The write now waits until the longer
// segments have left, and all of the data arrives.
TEST_F(PeerWindow, AWindowThatOpensSmallAfterZeroDoesNotPanicTheNextWrite) {
    TcpStream server;
    ASSERT_NO_FATAL_FAILURE(open(0, 0, server));
    const auto first = pattern(3 * 536);  // three segments of 536 bytes wait for the window
    ASSERT_NO_FATAL_FAILURE(queue(server, first));
    EXPECT_TRUE(received.empty());

    peer.window = 600;
    ASSERT_TRUE(dev_b.receive(make_tcp_frame(peer)));
    ASSERT_TRUE(run_until([&] { return received.size() == 536; }, ms(100)));

    ASSERT_NO_FATAL_FAILURE(write_after(server, first, 100, 600));
    server.abort();
}

// lwIP parses the options of every segment, not only the SYN's: an MSS option on a later
// segment lowers the MSS below the segments already queued, with the same assertion on the
// next write. The write waits for them too, and what follows goes out in segments of the new
// MSS.
TEST_F(PeerWindow, AnMssOptionOnALaterSegmentDoesNotPanicTheNextWrite) {
    TcpStream server;
    ASSERT_NO_FATAL_FAILURE(open(65535, 0, server));
    const auto first = pattern(3 * 536);
    ASSERT_NO_FATAL_FAILURE(queue(server, first));
    TcpFrame with_mss = peer;
    with_mss.options = mss_option(100);
    ASSERT_TRUE(dev_b.receive(make_tcp_frame(with_mss)));
    run_until([] { return false; }, ms(10));

    ASSERT_NO_FATAL_FAILURE(write_after(server, first, 300, 65535));
    server.abort();
}

// A segment out of order that ends past the receive window's right edge, then the data before
// it. lwIP queued the first out-of-order segment untrimmed, and when the gap filled the window
// had shrunk by the gap and it asserted "tcp_receive: ooseq tcplen > rcv_wnd" (tcp_in.c): any
// peer could panic the guest. Found by the netfront_stack fuzz target (a 64 KB GSO segment 5
// bytes ahead). The segment is dropped instead; the data before it is taken and acknowledged.
TEST_F(PeerWindow, AnOutOfOrderSegmentPastTheWindowDoesNotPanicWhenTheGapFills) {
    TcpStream server;  // never read: the window only shrinks
    ASSERT_NO_FATAL_FAILURE(open(65535, 65535, server));
    const std::uint32_t start = peer.seq;
    const std::uint32_t window = b_window;  // all free
    peer.flags = 0x18;
    peer.seq = start + window - 1;  // its first byte is the window's last
    peer.payload = pattern(1000);
    ASSERT_TRUE(dev_b.receive(make_tcp_frame(peer)));
    run_until([] { return false; }, ms(10));
    // The gap, in order, in segments of 1460 bytes.
    ASSERT_NO_FATAL_FAILURE(send_in_order(start, window - 1));
    run_until([] { return false; }, ms(500));
    EXPECT_EQ(b_ack, start + window - 1) << "the gap was not acknowledged";
    EXPECT_EQ(server.buffered(), window - 1);
    server.abort();
}

// Data past a FIN the peer sent out of order: when in-order data covered that FIN, lwIP set the
// FIN on it, and with that data reaching the window's right edge the segment was one longer than
// the window: lwIP asserted "tcp_receive: tcplen > rcv_wnd" (tcp_in.c). Found by the
// netfront_stack fuzz target. The segment that reaches past the FIN is dropped; the data before
// it is taken and acknowledged.
TEST_F(PeerWindow, DataPastAFinQueuedOutOfOrderDoesNotPanicWhenItCoversTheFin) {
    TcpStream server;  // never read: the window only shrinks
    ASSERT_NO_FATAL_FAILURE(open(65535, 65535, server));
    const std::uint32_t start = peer.seq;
    const std::uint32_t window = b_window;  // all free
    peer.flags = 0x19;                       // FIN, PSH, ACK: 5 bytes, then the FIN 10 before the edge
    peer.seq = start + window - 15;
    peer.payload = pattern(5);
    ASSERT_TRUE(dev_b.receive(make_tcp_frame(peer)));
    run_until([] { return false; }, ms(10));
    // In order, in segments of 1460 bytes, up to the window's edge: the last one covers the FIN.
    peer.flags = 0x18;
    ASSERT_NO_FATAL_FAILURE(send_in_order(start, window));
    run_until([] { return false; }, ms(500));
    EXPECT_EQ(b_ack, start + window - 1460) << "the data before the FIN was not acknowledged";
    EXPECT_EQ(server.buffered(), window - 1460);
    server.abort();
}

// Window scaling, for the peer's window only (lwipopts.h). A peer that announces a scale (Linux
// does, 7) may offer more than 64 KiB, and B then sends more than 64 KiB before an ACK: a 64 KiB
// reply leaves whole instead of waiting in the middle for a window update. B's own window
// stays unscaled: its SYN-ACK announces shift 0.
TEST_F(PeerWindow, APeerThatScalesItsWindowGetsMoreThan64KiBInFlight) {
    TcpStream server;
    ASSERT_NO_FATAL_FAILURE(open(64240, 1024, server, with_window_scale(mss_option(1460), 7)));
    EXPECT_EQ(b_wscale, 0) << "B's SYN-ACK carries no window scale option of shift 0";
    ASSERT_NO_FATAL_FAILURE(write_acknowledging_each_segment(server, pattern(300 * 1024), 1024));  // << 7: 128 KiB
    EXPECT_GT(in_flight_max, 65535u) << "B never sent past an unscaled window";
    EXPECT_LE(in_flight_max, 1024u << 7) << "B sent past the window the peer offered";
    server.abort();
}

// B's receive window stays TCP_WND, whatever scale the peer announces: a peer that sends more
// than that without B's application reading finds the rest dropped, and what B holds unread
// is one window.
TEST_F(PeerWindow, OurWindowStaysUnscaledWhenThePeerScales) {
    TcpStream server;  // never read
    ASSERT_NO_FATAL_FAILURE(open(64240, 1024, server, with_window_scale(mss_option(1460), 7)));
    EXPECT_EQ(b_wscale, 0);
    EXPECT_LE(b_syn_window, b_window);
    const std::uint32_t start = peer.seq;
    peer.flags = 0x18;
    ASSERT_NO_FATAL_FAILURE(send_in_order(start, 2 * b_window));
    run_until([] { return false; }, ms(500));
    EXPECT_EQ(b_ack, start + b_window);
    EXPECT_EQ(server.buffered(), b_window);
    server.abort();
}

// A shift over 14: B takes it as 14 (RFC 7323; lwIP's tcp_parseopt), so a window of 2 is 32 KiB.
TEST_F(PeerWindow, AShiftOver14IsTakenAs14) {
    TcpStream server;
    ASSERT_NO_FATAL_FAILURE(open(65535, 2, server, with_window_scale(mss_option(1460), 200)));
    ASSERT_NO_FATAL_FAILURE(write_acknowledging_each_segment(server, pattern(200 * 1024), 2));
    EXPECT_GT(in_flight_max, 16384u) << "the window was not scaled by 14";
    EXPECT_LE(in_flight_max, 2u << 14) << "B sent past the window the peer offered";
    server.abort();
}

// The largest window, scaled by 14: about 1 GiB offered. What B holds unacknowledged stays
// within its send buffer.
TEST_F(PeerWindow, AHugeScaledWindowIsBoundedByTheSendBuffer) {
    TcpStream server;
    ASSERT_NO_FATAL_FAILURE(open(65535, 65535, server, with_window_scale(mss_option(1460), 200)));
    ASSERT_NO_FATAL_FAILURE(write_acknowledging_each_segment(server, pattern(400 * 1024), 65535));
    EXPECT_GT(in_flight_max, 65535u);
    EXPECT_LE(in_flight_max, b_send_buffer);
    server.abort();
}

// lwIP's persist timer splits the first unsent segment at the peer's window cast to 16 bits,
// and asserts on a split at 0 (tcp.cc, tame_persist_timers). With window scaling a peer can
// offer exactly 64 KiB (512 << 7) while the timer runs: its handshake ACK carries an MSS
// option of 1 (B's congestion window becomes 4 bytes) and a zero window, a later segment puts
// the MSS back to 1460, B queues segments that wait for the window (the timer starts), then
// the window opens to 64 KiB, which the congestion window still does not let B use. B must
// neither panic nor send past what the peer allowed.
TEST_F(PeerWindow, AWindowOfExactly64KiBDoesNotPanicThePersistTimer) {
    TcpStream server;
    ASSERT_NO_FATAL_FAILURE(
        open(64240, 0, server, with_window_scale(mss_option(1460), 7), mss_option(1)));
    TcpFrame mss_back = peer;
    mss_back.options = mss_option(1460);
    ASSERT_TRUE(dev_b.receive(make_tcp_frame(mss_back)));
    const auto data = pattern(3000);
    ASSERT_NO_FATAL_FAILURE(queue(server, data));
    run_until([] { return false; }, ms(100));
    EXPECT_TRUE(received.empty());
    peer.window = 512;  // << 7: 65536, 0 in 16 bits
    ASSERT_TRUE(dev_b.receive(make_tcp_frame(peer)));
    run_until([] { return false; }, s(20));  // the persist timer fires several times
    EXPECT_LE(received.size(), 4u) << "B sent past its congestion window";
    server.abort();
}

// The persist timer's split also asserts "split <= mss" when the window lies between the MSS
// and the first queued segment: a peer that lowers the MSS with an option on a later segment
// after segments of 1460 bytes were queued for a zero window, then offers 500 bytes (found by
// the lwip_input fuzz target). B sends a segment of the new MSS instead, and everything
// arrives.
TEST_F(PeerWindow, AWindowBetweenALoweredMssAndTheQueuedSegmentDoesNotPanicThePersistTimer) {
    TcpStream server;
    ASSERT_NO_FATAL_FAILURE(open(64240, 0, server, mss_option(1460)));
    const auto data = pattern(3000);
    ASSERT_NO_FATAL_FAILURE(queue(server, data));
    run_until([] { return false; }, ms(100));
    EXPECT_TRUE(received.empty());
    TcpFrame lower = peer;
    lower.options = mss_option(100);
    lower.window = 500;
    ASSERT_TRUE(dev_b.receive(make_tcp_frame(lower)));
    // The persist timer fires (within 2 s), and acknowledged at once (before the retransmission
    // timer halves the congestion window below the segments still queued, which would stall
    // this connection: the peer's own loss).
    ASSERT_TRUE(run_until([&] { return !received.empty(); }, s(5))) << "nothing left for a window of 500";
    EXPECT_LE(largest, 500u);
    ASSERT_NO_FATAL_FAILURE(acknowledge_until(data.size(), 65535));
    ASSERT_EQ(received.size(), data.size());
    EXPECT_TRUE(std::equal(data.begin(), data.end(), received.begin()));
    server.abort();
}

}  // namespace
}  // namespace keel::net::test

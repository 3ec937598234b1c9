// TCP segmentation offload: consecutive segments merged into super-segments (net/src/gso.cc),
// checked against a model of what a Linux backend cuts them back into; then bulk transfers
// between two lwIP stacks whose links merge (tx GSO) and take super-segments whole (rx GSO).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "gso.h"
#include "fakes/fake_link.h"

namespace keel::net::test {

namespace {

std::uint16_t be16(const std::byte* p) {
    return static_cast<std::uint16_t>((std::to_integer<unsigned>(p[0]) << 8) | std::to_integer<unsigned>(p[1]));
}
void put16(std::byte* p, std::uint16_t v) {
    p[0] = static_cast<std::byte>(v >> 8);
    p[1] = static_cast<std::byte>(v);
}
void put32(std::byte* p, std::uint32_t v) {
    put16(p, static_cast<std::uint16_t>(v >> 16));
    put16(p + 2, static_cast<std::uint16_t>(v));
}
std::uint32_t sum16(const std::byte* p, std::size_t n, std::uint32_t acc = 0) {
    for (std::size_t i = 0; i + 1 < n; i += 2) acc += be16(p + i);
    if (n % 2 != 0) acc += std::to_integer<std::uint32_t>(p[n - 1]) << 8;
    return acc;
}
std::uint16_t fold(std::uint32_t acc) {
    while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
    return static_cast<std::uint16_t>(acc);
}

}  // namespace

// The model of the backend. The TCP checksum of each segment starts from the super-segment's
// pseudo-header sum with the length swapped (as Linux's tcp_gso_segment does), so a wrong sum
// from make_super_header gives segments the receiving lwIP refuses.
std::vector<std::vector<std::byte>> segment_super_frame(const std::vector<std::byte>& frame, std::size_t gso_size) {
    const std::byte* ip = frame.data() + 14;
    const std::size_t ihl = (std::to_integer<unsigned>(ip[0]) & 0xf) * 4u;
    const std::byte* tcp = ip + ihl;
    const std::size_t thl = (std::to_integer<unsigned>(tcp[12]) >> 4) * 4u;
    const std::size_t hl = 14 + ihl + thl;
    const std::size_t super_tcp_len = frame.size() - 14 - ihl;
    const std::uint16_t pseudo = be16(tcp + 16);
    const std::uint16_t id = be16(ip + 4);
    const std::uint32_t seq = (static_cast<std::uint32_t>(be16(tcp + 4)) << 16) | be16(tcp + 6);
    const std::uint8_t flags = std::to_integer<std::uint8_t>(tcp[13]);
    std::vector<std::vector<std::byte>> out;
    for (std::size_t at = hl, i = 0; at < frame.size(); at += gso_size, ++i) {
        const std::size_t n = std::min(gso_size, frame.size() - at);
        const bool last = at + n == frame.size();
        std::vector<std::byte> seg(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(hl));
        seg.insert(seg.end(), frame.begin() + static_cast<std::ptrdiff_t>(at),
                   frame.begin() + static_cast<std::ptrdiff_t>(at + n));
        std::byte* sip = seg.data() + 14;
        std::byte* stcp = sip + ihl;
        put16(sip + 2, static_cast<std::uint16_t>(ihl + thl + n));
        put16(sip + 4, static_cast<std::uint16_t>(id + i));
        put16(sip + 10, 0);
        put16(sip + 10, static_cast<std::uint16_t>(~fold(sum16(sip, ihl))));
        put32(stcp + 4, seq + static_cast<std::uint32_t>(at - hl));
        stcp[13] = static_cast<std::byte>(last ? flags : flags & ~0x09);  // PSH and FIN on the last only
        const std::uint32_t seg_pseudo =
            fold(pseudo + (~static_cast<std::uint32_t>(super_tcp_len) & 0xffff) + (thl + n));
        put16(stcp + 16, 0);
        put16(stcp + 16, static_cast<std::uint16_t>(~fold(sum16(stcp, thl + n, seg_pseudo))));
        out.push_back(std::move(seg));
    }
    return out;
}

namespace {

/// An Ethernet + IPv4 + TCP frame with correct checksums, as lwIP sends them.
std::vector<std::byte> tcp_frame(std::uint16_t id, std::uint32_t seq, std::size_t payload, std::uint8_t flags = 0x10,
                                 std::uint32_t ack = 777, std::size_t options = 0) {
    const std::size_t thl = 20 + options;
    std::vector<std::byte> f(14 + 20 + thl + payload);
    for (int i = 0; i < 6; ++i) {
        f[static_cast<std::size_t>(i)] = std::byte{0x02};
        f[6 + static_cast<std::size_t>(i)] = std::byte{0x04};
    }
    put16(&f[12], 0x0800);
    std::byte* ip = &f[14];
    ip[0] = std::byte{0x45};
    put16(ip + 2, static_cast<std::uint16_t>(20 + thl + payload));
    put16(ip + 4, id);
    ip[8] = std::byte{64};
    ip[9] = std::byte{6};
    put32(ip + 12, 0x0a000001);
    put32(ip + 16, 0x0a000002);
    put16(ip + 10, static_cast<std::uint16_t>(~fold(sum16(ip, 20))));
    std::byte* tcp = ip + 20;
    put16(tcp, 80);
    put16(tcp + 2, 40000);
    put32(tcp + 4, seq);
    put32(tcp + 8, ack);
    tcp[12] = static_cast<std::byte>((thl / 4) << 4);
    tcp[13] = static_cast<std::byte>(flags);
    put16(tcp + 14, 64240);
    for (std::size_t i = 0; i < options; ++i) tcp[20 + i] = std::byte{1};  // NOPs
    for (std::size_t i = 0; i < payload; ++i) tcp[thl + i] = static_cast<std::byte>(seq + i);
    const std::uint32_t pseudo = sum16(ip + 12, 8, 6u + static_cast<std::uint32_t>(thl + payload));
    put16(tcp + 16, static_cast<std::uint16_t>(~fold(sum16(tcp, thl + payload, pseudo))));
    return f;
}

std::optional<detail::TcpSegment> parse(const std::vector<std::byte>& f) {
    return detail::parse_tcp_segment(f, f.size());
}

/// Merge `frames` as Interface does (first's header, every payload).
std::vector<std::byte> merge(const std::vector<std::vector<std::byte>>& frames) {
    const auto first = *parse(frames.front());
    std::vector<std::byte> payload;
    for (const auto& f : frames) payload.insert(payload.end(), f.begin() + first.header_len, f.end());
    std::vector<std::byte> out(first.header_len);
    detail::make_super_header(out, frames.front(), first, payload.size(), parse(frames.back())->flags);
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

TEST(Gso, MergedSegmentsComeBackByteForByte) {
    for (std::size_t options : {std::size_t{0}, std::size_t{12}}) {
        std::vector<std::vector<std::byte>> frames;
        const std::size_t gso = 1460 - options;
        for (int i = 0; i < 5; ++i) {
            const bool last = i == 4;
            frames.push_back(tcp_frame(static_cast<std::uint16_t>(0xfffe + i), 0xfffff000u + i * gso, last ? 700 : gso,
                                       last ? 0x18 : 0x10, 777, options));
        }
        for (std::size_t i = 0; i + 1 < frames.size(); ++i) {
            ASSERT_TRUE(detail::continues(frames[i], *parse(frames[i]), frames[i + 1], *parse(frames[i + 1]),
                                          static_cast<std::uint16_t>(gso)))
                << i;
        }
        const auto super = merge(frames);
        EXPECT_EQ(super.size(), 14 + 20 + 20 + options + 4 * gso + 700);
        EXPECT_EQ(be16(&super[14 + 2]), super.size() - 14);  // IPv4 total length
        EXPECT_EQ(fold(sum16(&super[14], 20)), 0xffff);        // IPv4 header checksum
        EXPECT_EQ(std::to_integer<unsigned>(super[14 + 20 + 13]), 0x18u);  // the last one's PSH
        EXPECT_EQ(segment_super_frame(super, gso), frames) << "options " << options;
    }
}

TEST(Gso, OnlySegmentsThatComeBackTheSameAreMerged) {
    const auto a = tcp_frame(1, 1000, 1460);
    const auto pa = *parse(a);
    auto ok = [&](const std::vector<std::byte>& b, std::uint16_t gso = 1460) {
        auto pb = parse(b);
        return pb && detail::continues(a, pa, b, *pb, gso);
    };
    EXPECT_TRUE(ok(tcp_frame(2, 2460, 1460)));
    EXPECT_TRUE(ok(tcp_frame(2, 2460, 1, 0x19)));   // a short last one with PSH and FIN
    EXPECT_FALSE(ok(tcp_frame(3, 2460, 1460)));     // a frame went out between them
    EXPECT_FALSE(ok(tcp_frame(2, 2461, 1460)));     // a hole in the sequence
    EXPECT_FALSE(ok(tcp_frame(2, 2460, 1460, 0x10, 778)));  // another acknowledgement
    EXPECT_FALSE(ok(tcp_frame(2, 2460, 1460), 1000));        // the first is not gso_size long
    EXPECT_FALSE(ok(tcp_frame(2, 2460, 1460, 0x10, 777, 4)));  // other TCP options
    auto other_port = tcp_frame(2, 2460, 1460);
    put16(&other_port[14 + 20 + 2], 40001);
    EXPECT_FALSE(ok(other_port));
    // PSH or FIN ends a super-segment: nothing follows them.
    const auto pushed = tcp_frame(1, 1000, 1460, 0x18);
    const auto next = tcp_frame(2, 2460, 1460);
    EXPECT_FALSE(detail::continues(pushed, *parse(pushed), next, *parse(next), 1460));

    // Frames that never take part.
    EXPECT_FALSE(parse(tcp_frame(1, 1000, 0)));           // no payload (a pure ACK)
    EXPECT_FALSE(parse(tcp_frame(1, 1000, 10, 0x12)));    // SYN
    EXPECT_FALSE(parse(tcp_frame(1, 1000, 10, 0x14)));    // RST
    EXPECT_FALSE(parse(tcp_frame(1, 1000, 10, 0x30)));    // URG
    EXPECT_FALSE(parse(tcp_frame(1, 1000, 10, 0x08)));    // no ACK
    auto fragment = tcp_frame(1, 1000, 10);
    put16(&fragment[14 + 6], 0x2000);  // MF
    EXPECT_FALSE(parse(fragment));
    auto udp = tcp_frame(1, 1000, 10);
    udp[14 + 9] = std::byte{17};
    EXPECT_FALSE(parse(udp));
    const auto f = tcp_frame(1, 1000, 10);
    EXPECT_FALSE(detail::parse_tcp_segment(f, f.size() + 1));  // IPv4 length does not match the frame
    EXPECT_FALSE(detail::parse_tcp_segment(std::span<const std::byte>(f).first(40), f.size()));  // headers split
}

// ---- through lwIP ----------------------------------------------------------------------------

class GsoLink : public TwoHosts<> {
protected:
    /// A sends `data` to B over one connection; B reads it all; both close. Returns what B read.
    std::vector<std::byte> transfer(std::uint16_t port, const std::vector<std::byte>& data);
};

std::vector<std::byte> GsoLink::transfer(std::uint16_t port, const std::vector<std::byte>& data) {
    GsoLink& t = *this;
    auto l = TcpListener::listen(port);
    EXPECT_TRUE(l.ok());
    std::vector<std::byte> got;
    bool done = false;
    t.start([](TcpListener& li, std::vector<std::byte>& out, bool& fin) -> Task<void> {
        auto conn = co_await li.accept();
        if (!conn) co_return;
        std::byte buf[3000];
        for (;;) {
            auto n = co_await conn->read(buf);
            if (!n || *n == 0) break;
            out.insert(out.end(), buf, buf + *n);
        }
        (void)co_await conn->close();
        fin = true;
    }(*l, got, done));
    auto client = t.run(TcpStream::connect(addr_b, port, s(5)));
    EXPECT_TRUE(client && client->ok());
    if (!client || !client->ok()) return {};
    auto w = t.run([](TcpStream& st, std::span<const std::byte> d) -> Task<Result<std::size_t>> {
        auto r = co_await st.write(d);
        (void)co_await st.close();
        co_return r;
    }(client->value(), data));
    EXPECT_TRUE(w && w->ok());
    EXPECT_TRUE(t.run_until([&] { return done; }));
    return got;
}

TEST_F(GsoLink, SuperSegmentsCutByTheBackendReachAPlainReceiver) {
    dev_a.set_tx_gso(true);
    const auto data = pattern(1 << 20);
    const auto before = stats();
    const auto got = transfer(7100, data);
    EXPECT_TRUE(got == data) << got.size();
    const auto gso = stats().tx_gso - before.tx_gso;
    const auto merged = stats().tx_gso_segments - before.tx_gso_segments;
    EXPECT_EQ(gso, dev_a.tx_gso_frames);
    EXPECT_GT(gso, 10u);
    // 1 MiB in 1460-byte segments is 719 of them; most should travel merged.
    EXPECT_GT(merged, 500u);
    EXPECT_GE(merged, 2 * gso);
    EXPECT_EQ(dev_b.rx_gso_frames, 0u);
    std::printf("1 MiB: %llu super-segments carrying %llu segments\n", static_cast<unsigned long long>(gso),
                static_cast<unsigned long long>(merged));
}

TEST_F(GsoLink, AGsoReceiverTakesThemWholeWithoutACopy) {
    dev_a.set_tx_gso(true);
    dev_b.rx_gso = true;
    const auto data = pattern(1 << 20);
    const auto copied = stats().rx_copied;
    const std::size_t held = link_b->rx_held();
    const auto got = transfer(7101, data);
    EXPECT_TRUE(got == data) << got.size();
    EXPECT_GT(dev_b.rx_gso_frames, 10u);
    EXPECT_EQ(stats().rx_copied, copied);
    EXPECT_EQ(link_b->rx_held(), held);
}

TEST_F(GsoLink, BothWaysWithAFullLink) {
    for (FakeDevice* d : {&dev_a, &dev_b}) {
        d->set_tx_gso(true);
        d->rx_gso = true;
        d->tx_capacity = 1;  // Error::again all the time: super-segments wait and are retried
    }
    const auto data = pattern(300000);
    const auto got = transfer(7102, data);
    EXPECT_TRUE(got == data) << got.size();
    EXPECT_GT(dev_a.tx_again, 0u);
    EXPECT_GT(dev_a.tx_gso_frames, 0u);
}

}  // namespace
}  // namespace keel::net::test

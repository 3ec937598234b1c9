// Test support for net/: a fake Ethernet device shaped like netfront::Netfront (so DeviceLink
// is tested with the same template code the guest uses), a wire between two of them driven by
// the fake loop's poll_events(), and a fixture with two lwIP interfaces back to back:
// A = 10.0.0.1/24 and B = 10.0.0.2/24 (plus IPv6 link-local addresses), in one lwIP stack.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "keel/function.h"
#include "keel/loop.h"
#include "keel/net/link.h"
#include "keel/net/net.h"
#include "keel/result.h"
#include "keel/task.h"
#include "fakes/fake_loop.h"

namespace keel::net::test {

class FakeDevice;

struct FakeMac {
    std::array<std::uint8_t, 6> bytes{};
};

struct FakeRxFlags {
    bool data_validated = false;
    bool checksum_blank = false;
    std::uint16_t gso_size = 0;
};

enum class FakeTxFlags : std::uint8_t { none, checksum_blank };

struct FakeFeatures {
    bool tx_gso_tcpv4 = false;
};

/// One received frame in one or more of the device's pages (like netfront::RxBuffer).
class FakeRxBuffer {
public:
    FakeRxBuffer() = default;
    FakeRxBuffer(FakeRxBuffer&& o) noexcept
        : owner_(std::exchange(o.owner_, nullptr)), pages_(std::move(o.pages_)), len_(o.len_), flags_(o.flags_) {}
    FakeRxBuffer& operator=(FakeRxBuffer&& o) noexcept {
        if (this != &o) {
            reset();
            owner_ = std::exchange(o.owner_, nullptr);
            pages_ = std::move(o.pages_);
            len_ = o.len_;
            flags_ = o.flags_;
        }
        return *this;
    }
    FakeRxBuffer(const FakeRxBuffer&) = delete;
    FakeRxBuffer& operator=(const FakeRxBuffer&) = delete;
    ~FakeRxBuffer() { reset(); }

    std::size_t size() const { return len_; }
    std::size_t segment_count() const { return pages_.size(); }
    std::span<std::byte> segment(std::size_t i) const;
    FakeRxFlags flags() const { return flags_; }
    void reset();

private:
    friend class FakeDevice;
    FakeDevice* owner_ = nullptr;
    std::vector<std::byte*> pages_;  // test code: allocating here is fine
    std::size_t len_ = 0;
    FakeRxFlags flags_{};
};

/// What a Linux backend does with a TCP/IPv4 super-segment for a receiver without GSO: cut it
/// into segments of `gso_size` payload bytes, each with the super-segment's headers, its own
/// IPv4 total length, id (+1 per segment) and header checksum, sequence number, PSH and FIN
/// only on the last, and a complete TCP checksum.
std::vector<std::vector<std::byte>> segment_super_frame(const std::vector<std::byte>& frame, std::size_t gso_size);

/// An Ethernet device with a pool of receive pages and a transmit side that holds at most
/// tx_capacity frames "in flight" (on the wire, not yet delivered) before answering
/// Error::again. Frames reach the peer from deliver(), which the test platform's
/// poll_events() calls. With `tx_gso` it takes TCP/IPv4 super-segments (as netfront with
/// feature-gso-tcpv4); the wire hands them to a peer with `rx_gso` whole, in several pages
/// (as netback does for a frontend that wrote feature-gso-tcpv4), and cuts them into
/// ordinary segments for any other peer.
class FakeDevice {
public:
    static constexpr std::size_t page_size = 4096;
    static constexpr std::size_t page_count = 256;
    using TxFlags = FakeTxFlags;

    explicit FakeDevice(std::uint8_t id) : pool_(new std::byte[page_size * page_count]) {
        mac_.bytes = {0x02, 0x00, 0x00, 0x00, 0x00, id};
        for (std::size_t i = 0; i < page_count; ++i) free_.push_back(pool_.get() + i * page_size);
    }
    ~FakeDevice() { EXPECT_EQ(free_.size(), page_count) << "a received frame outlived its device"; }

    // ---- what DeviceLink uses ----
    Result<void> transmit(std::span<const std::span<const std::byte>> fragments, FakeTxFlags flags,
                          std::uint16_t gso_size) {
        if (!link_up_) return Error::closed;
        if (in_flight_ >= tx_capacity) {
            ++tx_again;
            blocked_ = true;
            return Error::again;
        }
        std::vector<std::byte> frame;
        for (const auto& f : fragments) frame.insert(frame.end(), f.begin(), f.end());
        EXPECT_GE(frame.size(), 14u);
        if (gso_size > 0) {
            // netfront's rules for a super-segment.
            EXPECT_TRUE(features_.tx_gso_tcpv4) << "a super-segment to a link without GSO";
            EXPECT_EQ(flags, FakeTxFlags::checksum_blank) << "a super-segment must leave its checksum blank";
            EXPECT_LE(frame.size(), 65535u);
            EXPECT_GT(frame.size(), 1514u) << "a super-segment that fits one frame";
            ++tx_gso_frames;
        } else {
            EXPECT_LE(frame.size(), 1514u);
        }
        ++tx_frames;
        if (capture) captured.push_back(frame);
        ++in_flight_;
        wire_.push_back({std::move(frame), gso_size});
        return {};
    }
    void set_receive_handler(Function<void(FakeRxBuffer)> h) { on_rx_ = std::move(h); }
    void set_tx_ready_handler(Function<void()> h) { on_tx_ready_ = std::move(h); }
    void set_link_handler(Function<void(bool)> h) { on_link_ = std::move(h); }
    void set_gone_handler(Function<void()> h) { on_gone_ = std::move(h); }
    bool link_up() const { return link_up_; }
    const FakeMac& mac() const { return mac_; }
    std::uint16_t mtu() const { return 1500; }
    const FakeFeatures& features() const { return features_; }

    // ---- test controls ----
    FakeDevice* peer = nullptr;
    std::size_t tx_capacity = 1024;
    bool mark_validated = false;  ///< frames this device receives say data_validated
    bool rx_gso = false;          ///< takes super-segments whole
    void set_tx_gso(bool on) { features_.tx_gso_tcpv4 = on; }
    /// Sees every frame this device sent on its way to the peer (super-segments already cut
    /// unless the peer takes them whole): may change it, and loses it by returning true.
    std::function<bool(std::vector<std::byte>&)> on_wire;
    bool capture = false;
    std::vector<std::vector<std::byte>> captured;
    std::uint64_t tx_frames = 0, tx_gso_frames = 0, tx_again = 0, rx_frames = 0, rx_gso_frames = 0,
                  rx_no_page = 0, lost = 0;
    std::vector<std::byte*> delivered_pages;  ///< first page of every frame handed up, in order

    void set_link(bool up) {
        link_up_ = up;
        if (on_link_) on_link_(up);
    }
    /// As netfront after a detach: the link down, then the device gone for good.
    void go_away() {
        set_link(false);
        if (on_gone_) on_gone_();
    }
    /// As netfront's reset: the frames on the wire are lost, the ring is empty again, and the
    /// tx-ready handler owes nothing for what was refused (it does not run).
    void reset_tx() {
        lost += wire_.size();
        wire_.clear();
        in_flight_ = 0;
        blocked_ = false;
    }
    std::size_t pages_free() const { return free_.size(); }
    bool pending() const { return !wire_.empty(); }
    bool owns(const std::byte* p) const {
        return p >= pool_.get() && p < pool_.get() + page_size * page_count;
    }

    /// Hand a frame to this device's receive handler as if it came from the wire, in as many
    /// pages as it takes (a super-segment: with gso_size and a blank checksum).
    bool receive(std::span<const std::byte> frame, std::uint16_t gso_size = 0) {
        const std::size_t pages = (frame.size() + page_size - 1) / page_size;
        if (free_.size() < pages || !on_rx_) {
            ++rx_no_page;
            return false;
        }
        FakeRxBuffer b;
        b.owner_ = this;
        for (std::size_t at = 0; at < frame.size(); at += page_size) {
            std::byte* page = free_.back();
            free_.pop_back();
            const std::size_t n = std::min(page_size, frame.size() - at);
            std::memcpy(page, frame.data() + at, n);
            b.pages_.push_back(page);
        }
        b.len_ = frame.size();
        b.flags_.data_validated = mark_validated;
        b.flags_.gso_size = gso_size;
        b.flags_.checksum_blank = gso_size > 0;
        ++rx_frames;
        if (gso_size > 0) ++rx_gso_frames;
        delivered_pages.push_back(b.pages_.front());
        on_rx_(std::move(b));
        return true;
    }

    /// Move every frame on the wire to the peer. True if any moved.
    bool deliver() {
        if (wire_.empty()) return false;
        std::deque<Sent> batch;
        batch.swap(wire_);
        auto pass = [this](std::vector<std::byte>& f, std::uint16_t gso) {
            if (on_wire && on_wire(f)) {
                ++lost;
                return;
            }
            if (peer != nullptr) peer->receive(f, gso);
        };
        for (auto& sent : batch) {
            --in_flight_;
            if (sent.gso_size == 0 || (peer != nullptr && peer->rx_gso)) {
                pass(sent.frame, sent.gso_size);
                continue;
            }
            for (auto& piece : segment_super_frame(sent.frame, sent.gso_size)) pass(piece, 0);
        }
        if (blocked_ && in_flight_ < tx_capacity) {
            blocked_ = false;
            if (on_tx_ready_) on_tx_ready_();
        }
        return true;
    }

private:
    friend class FakeRxBuffer;
    struct Sent {
        std::vector<std::byte> frame;
        std::uint16_t gso_size = 0;
    };
    std::unique_ptr<std::byte[]> pool_;
    std::vector<std::byte*> free_;
    std::deque<Sent> wire_;
    std::size_t in_flight_ = 0;
    bool blocked_ = false;
    bool link_up_ = true;
    FakeMac mac_;
    FakeFeatures features_;
    Function<void(FakeRxBuffer)> on_rx_;
    Function<void()> on_tx_ready_;
    Function<void(bool)> on_link_;
    Function<void()> on_gone_;
};

inline std::span<std::byte> FakeRxBuffer::segment(std::size_t i) const {
    const std::size_t at = i * FakeDevice::page_size;
    return {pages_[i], std::min(FakeDevice::page_size, len_ - at)};
}

inline void FakeRxBuffer::reset() {
    if (owner_ == nullptr) return;
    for (std::byte* p : pages_) owner_->free_.push_back(p);
    pages_.clear();
    owner_ = nullptr;
}

/// The fake loop platform, plus the wire: poll_events() delivers frames, and idle() does not
/// jump the clock while frames are on the wire.
struct NetPlatform : keel::test::FakePlatform {
    std::vector<FakeDevice*> devices;
    bool poll_events() override {
        ++polls;
        bool any = false;
        for (FakeDevice* d : devices) any |= d->deliver();
        return any;
    }
    void idle() override {
        for (FakeDevice* d : devices) {
            if (d->pending()) return;
        }
        FakePlatform::idle();
    }
};

template <std::size_t Slots = 256>
using FakeLink = DeviceLink<FakeDevice, FakeRxBuffer, Slots>;

inline constexpr IpAddr addr_a = IpAddr::v4(10, 0, 0, 1);
inline constexpr IpAddr addr_b = IpAddr::v4(10, 0, 0, 2);

/// Two interfaces back to back. lwIP is one global stack per process, so its clock must not
/// go backwards between tests: each fixture starts where the previous one ended.
template <std::size_t Slots = 256>
class TwoHosts : public ::testing::Test {
protected:
    TwoHosts() : TwoHosts(false) {}
    /// `dhcp_a`: A asks DHCP for its address instead (the test plays the server).
    explicit TwoHosts(bool dhcp_a) {
        set_panic_handler(keel::test::die_on_panic);
        platform.now = clock();
        platform.devices = {&dev_a, &dev_b};
        set_loop(&loop);
        seed_random(0x6b65656c);
        dev_a.peer = &dev_b;
        dev_b.peer = &dev_a;
        link_a.emplace(dev_a);
        link_b.emplace(dev_b);
        EXPECT_TRUE(link_a->interface().configure(dhcp_a ? Config{} : config(addr_a)).ok());
        EXPECT_TRUE(link_b->interface().configure(config(addr_b)).ok());
    }
    ~TwoHosts() override {
        tasks.clear();  // frames of unfinished tasks (and the handles in them) go first
        link_a.reset();
        link_b.reset();
        // Let lwIP's TIME_WAIT connections expire (2 * TCP_MSL), so the next test starts clean.
        const std::uint64_t until = platform.now + s(130);
        while (platform.now < until) loop.run_once(true);
        EXPECT_EQ(stats().tcp_open, 0u);
        clock() = platform.now;
        set_loop(nullptr);
        set_panic_handler(nullptr);
    }

    static Config config(const IpAddr& a) {
        Config c;
        c.ipv4 = Ipv4Static{a, 24, IpAddr()};
        return c;
    }
    static std::uint64_t& clock() {
        static std::uint64_t now = 1'000'000;
        return now;
    }

    Interface& a() { return link_a->interface(); }
    Interface& b() { return link_b->interface(); }

    /// One connection from A to B, with the listener it came through.
    struct Connected {
        TcpListener listener;
        TcpStream client;  ///< A's end
        TcpStream server;  ///< B's end
    };
    /// Listen on `port`, connect from A to B and accept: both ends open, or the test fails.
    void connect_pair(std::uint16_t port, Connected& out) {
        auto l = TcpListener::listen(port);
        ASSERT_TRUE(l.ok()) << to_string(l.error());
        out.listener = std::move(l.value());
        connect_through(out.listener, port, out.client, out.server);
    }
    /// Connect from A to B's `listener` on `port` and accept: both ends open, or the test fails.
    void connect_through(TcpListener& listener, std::uint16_t port, TcpStream& client_out, TcpStream& server_out) {
        std::optional<Result<TcpStream>> server;
        start([](TcpListener& li, std::optional<Result<TcpStream>>& o) -> Task<void> {
            o.emplace(co_await li.accept());
        }(listener, server));
        auto client = run(TcpStream::connect(addr_b, port, s(5)));
        ASSERT_TRUE(client && client->ok());
        ASSERT_TRUE(run_until([&] { return server.has_value(); }));
        ASSERT_TRUE(server->ok());
        client_out = std::move(client->value());
        server_out = std::move(server->value());
    }

    /// Start `t` now; it is destroyed at teardown if it has not finished.
    void start(Task<void> t) {
        tasks.push_back(std::move(t));
        tasks.back().start();
    }
    /// Run the loop until `done` or the virtual clock has advanced by `limit_ns`.
    bool run_until(const std::function<bool()>& done, std::uint64_t limit_ns = s(600)) {
        const std::uint64_t until = platform.now + limit_ns;
        for (long i = 0; i < 50'000'000; ++i) {
            if (done()) return true;
            if (platform.now > until) break;
            loop.run_once(true);
        }
        return done();
    }
    /// Run a task returning a value to completion (or until the limit).
    template <typename T>
    std::optional<T> run(Task<T> t, std::uint64_t limit_ns = s(600)) {
        auto out = std::make_shared<std::optional<T>>();
        start([](Task<T> inner, std::shared_ptr<std::optional<T>> o) -> Task<void> {
            o->emplace(co_await inner);
        }(std::move(t), out));
        run_until([&] { return out->has_value(); }, limit_ns);
        return std::move(*out);
    }

    NetPlatform platform;
    EventLoop loop{platform};
    FakeDevice dev_a{1};
    FakeDevice dev_b{2};
    std::optional<FakeLink<Slots>> link_a;
    std::optional<FakeLink<Slots>> link_b;
    std::vector<Task<void>> tasks;
};

/// `n` pseudo-random bytes (the same for the same n).
inline std::vector<std::byte> pattern(std::size_t n) {
    std::vector<std::byte> v(n);
    std::uint32_t x = 12345;
    for (auto& b : v) {
        x = x * 1103515245u + 12345u;
        b = static_cast<std::byte>(x >> 16);
    }
    return v;
}

/// An Ethernet + IPv4 + TCP frame (`options`, if any; checksums filled in) from `src` to `dst`, as a
/// peer that is not one of the fixture's stacks would send it (a SYN flood, the fuzzer's seeds).
struct TcpFrame {
    IpAddr src, dst;
    std::uint16_t sport = 0, dport = 0;
    std::uint32_t seq = 0, ack = 0;
    std::uint8_t flags = 0x02;  ///< SYN
    std::uint16_t window = 65535;
    std::array<std::uint8_t, 6> src_mac{0x02, 0, 0, 0, 0, 1}, dst_mac{0x02, 0, 0, 0, 0, 2};
    std::vector<std::byte> payload;
    std::vector<std::byte> options;  ///< TCP options after the header (padded to 4 bytes with zeros)
};
inline std::vector<std::byte> make_tcp_frame(const TcpFrame& t) {
    const std::size_t opt_len = (t.options.size() + 3) / 4 * 4;
    if (opt_len > 40) {
        ADD_FAILURE() << "make_tcp_frame: more than 40 bytes of TCP options";
        return {};
    }
    std::vector<std::uint8_t> f(14 + 20 + 20 + opt_len + t.payload.size());
    auto put16 = [&f](std::size_t at, std::uint32_t v) {
        f[at] = static_cast<std::uint8_t>(v >> 8);
        f[at + 1] = static_cast<std::uint8_t>(v);
    };
    auto sum = [&f](std::size_t at, std::size_t n, std::uint32_t acc) {
        for (std::size_t i = 0; i < n; i += 2)
            acc += (std::uint32_t{f[at + i]} << 8) | (i + 1 < n ? f[at + i + 1] : 0u);
        while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
        return static_cast<std::uint16_t>(~acc);
    };
    std::copy(t.dst_mac.begin(), t.dst_mac.end(), f.begin());
    std::copy(t.src_mac.begin(), t.src_mac.end(), f.begin() + 6);
    put16(12, 0x0800);
    const std::size_t ip = 14, tcp = 34, hdr_len = 20 + opt_len, tcp_len = hdr_len + t.payload.size();
    f[ip] = 0x45;
    put16(ip + 2, static_cast<std::uint32_t>(20 + tcp_len));
    f[ip + 8] = 64;
    f[ip + 9] = 6;
    const auto s4 = t.src.bytes(), d4 = t.dst.bytes();
    std::copy(s4.begin(), s4.begin() + 4, f.begin() + ip + 12);
    std::copy(d4.begin(), d4.begin() + 4, f.begin() + ip + 16);
    put16(ip + 10, sum(ip, 20, 0));
    put16(tcp, t.sport);
    put16(tcp + 2, t.dport);
    put16(tcp + 4, t.seq >> 16);
    put16(tcp + 6, t.seq & 0xffff);
    put16(tcp + 8, t.ack >> 16);
    put16(tcp + 10, t.ack & 0xffff);
    f[tcp + 12] = static_cast<std::uint8_t>(hdr_len / 4 << 4);
    f[tcp + 13] = t.flags;
    put16(tcp + 14, t.window);
    if (!t.options.empty()) std::memcpy(f.data() + tcp + 20, t.options.data(), t.options.size());
    if (!t.payload.empty()) std::memcpy(f.data() + tcp + hdr_len, t.payload.data(), t.payload.size());
    // Pseudo-header: addresses, protocol, TCP length.
    std::uint32_t pseudo = 6 + static_cast<std::uint32_t>(tcp_len);
    for (std::size_t i = 0; i < 8; i += 2) pseudo += (std::uint32_t{f[ip + 12 + i]} << 8) | f[ip + 13 + i];
    put16(tcp + 16, sum(tcp, tcp_len, pseudo));
    std::vector<std::byte> out(f.size());
    std::memcpy(out.data(), f.data(), f.size());
    return out;
}

inline std::span<const std::byte> as_bytes(const char* s) {
    return {reinterpret_cast<const std::byte*>(s), std::strlen(s)};
}

/// The TCP segments in `frames` (Ethernet + IPv4) that carry data: each one's payload length
/// and whether it has FIN.
struct DataSegment {
    std::size_t bytes;
    bool fin;
};
inline std::vector<DataSegment> data_segments(const std::vector<std::vector<std::byte>>& frames) {
    std::vector<DataSegment> out;
    for (const auto& f : frames) {
        auto at = [&f](std::size_t i) { return std::to_integer<std::size_t>(f[i]); };
        if (f.size() < 54 || at(12) != 0x08 || at(13) != 0x00 || at(23) != 6) continue;
        const std::size_t ip_len = (at(14) & 0xf) * 4, total = at(16) << 8 | at(17);
        const std::size_t tcp = 14 + ip_len, tcp_len = (at(tcp + 12) >> 4) * 4;
        if (total > ip_len + tcp_len) out.push_back({total - ip_len - tcp_len, (at(tcp + 13) & 0x01) != 0});
    }
    return out;
}

/// "ping" from `client`, "pong" back from `server`: the connection carries data both ways.
inline Task<bool> ping_pong(TcpStream& client, TcpStream& server) {
    if (!(co_await client.write(as_bytes("ping")))) co_return false;
    std::byte buf[8];
    auto r = co_await server.read_for(buf, s(5));
    if (!r || *r != 4) co_return false;
    if (!(co_await server.write(as_bytes("pong")))) co_return false;
    r = co_await client.read_for(buf, s(5));
    co_return r && *r == 4 && std::memcmp(buf, "pong", 4) == 0;
}

}  // namespace keel::net::test

// lwip_input: whatever a network peer can send, through the real net layer (DeviceLink,
// Interface, TcpListener/TcpStream, UdpSocket, dns_lookup) into lwIP, on a virtual clock that
// runs lwIP's timers. The fuzzer plays every host on the wire.
//
// Input: one mode byte, then commands until the input ends:
//   mode: bit 0 DHCP instead of the static 10.0.0.2/24; bits 1-4: which of the four accepted
//         connections the service reads (and echoes), the others it leaves unread; bit 5 a DNS
//         lookup of "keel.example" at the start; bit 6 frames arrive checksum-validated.
//   0 RAW     len16, bytes: an Ethernet frame, checksums (IPv4 header, TCP/UDP/ICMP/ICMPv6)
//             recomputed unless bit 7 of the opcode is set (raw ARP, ND, RA, fragments, ...)
//   1 TCP     k, flags, seq delta, ack delta, window byte, len, payload: a segment from peer k
//             (10.0.0.1:40000+k to :80) whose sequence and acknowledgement numbers follow what
//             the stack sent it, plus the deltas (a SYN starts a new sequence)
//   2 DNS     len, payload: an answer to the last query the stack sent (its port and id)
//   3 DHCP    len, options: a reply to the last DHCP request (xid, chaddr, yiaddr 10.0.0.2)
//   4 TIME    n: advance the clock by n * 50 ms
//   5 SERVICE k, what: read / write / close / abort connection k, or shut the listener
// Checks: nothing panics (an lwIP assertion is a panic) and the sanitizers stay quiet; at the end
// every receive buffer goes back to the link (its destructor asserts it).
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "fuzz_support.h"
#include "keel/log.h"
#include "keel/loop.h"
#include "keel/net/link.h"
#include "keel/net/net.h"
#include "keel/panic.h"
#include "keel/task.h"
#include "keel/timer.h"

namespace {

using namespace keel;
using namespace keel::net;

std::uint64_t g_now = 1'000'000'000;  // one clock across inputs: lwIP's must not go backwards

struct Clock final : LoopPlatform {
    std::uint64_t armed = 0;
    std::uint64_t now_ns() override { return g_now; }
    void arm_timer(std::uint64_t deadline) override { armed = deadline; }
    bool poll_events() override { return false; }
    void idle() override {
        if (armed > g_now) g_now = armed;
    }
};

struct RxFlags {
    bool data_validated = false;
    bool checksum_blank = false;
    std::uint16_t gso_size = 0;
};
enum class TxFlags : std::uint8_t { none, checksum_blank };
struct Features {
    bool tx_gso_tcpv4 = false;
};
struct Mac {
    std::array<std::uint8_t, 6> bytes{0x02, 0, 0, 0, 0, 2};
};

constexpr std::size_t page = 4096;

/// One received frame in heap pages; `held` counts the frames not given back.
class RxBuffer {
public:
    RxBuffer() = default;
    RxBuffer(std::vector<std::byte> bytes, RxFlags f, int* held) : bytes_(std::move(bytes)), flags_(f), held_(held) {
        ++*held_;
    }
    RxBuffer(RxBuffer&& o) noexcept
        : bytes_(std::move(o.bytes_)), flags_(o.flags_), held_(std::exchange(o.held_, nullptr)) {}
    RxBuffer& operator=(RxBuffer&&) = delete;
    ~RxBuffer() {
        if (held_ != nullptr) --*held_;
    }
    std::size_t size() const { return bytes_.size(); }
    std::size_t segment_count() const { return (bytes_.size() + page - 1) / page; }
    std::span<std::byte> segment(std::size_t i) {
        return {bytes_.data() + i * page, std::min(page, bytes_.size() - i * page)};
    }
    RxFlags flags() const { return flags_; }

private:
    std::vector<std::byte> bytes_;
    RxFlags flags_{};
    int* held_ = nullptr;
};

std::uint16_t get16(const std::vector<std::byte>& f, std::size_t at) {
    return static_cast<std::uint16_t>((unsigned(f[at]) << 8) | unsigned(f[at + 1]));
}
std::uint32_t get32(const std::vector<std::byte>& f, std::size_t at) {
    return (std::uint32_t{get16(f, at)} << 16) | get16(f, at + 2);
}
void put16(std::vector<std::byte>& f, std::size_t at, std::uint32_t v) {
    f[at] = std::byte(v >> 8);
    f[at + 1] = std::byte(v & 0xff);
}
void put32(std::vector<std::byte>& f, std::size_t at, std::uint32_t v) {
    put16(f, at, v >> 16);
    put16(f, at + 2, v & 0xffff);
}
std::uint16_t checksum(const std::vector<std::byte>& f, std::size_t at, std::size_t n, std::uint32_t acc) {
    for (std::size_t i = 0; i < n; i += 2) acc += (unsigned(f[at + i]) << 8) | (i + 1 < n ? unsigned(f[at + i + 1]) : 0u);
    while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
    return static_cast<std::uint16_t>(~acc);
}

/// Recompute the IPv4 header checksum and the TCP/UDP/ICMP/ICMPv6 checksum where they can be.
void fix_checksums(std::vector<std::byte>& f) {
    if (f.size() < 14) return;
    const std::uint16_t type = get16(f, 12);
    if (type == 0x0800 && f.size() >= 34) {
        const std::size_t ihl = (unsigned(f[14]) & 0xf) * 4;
        if (ihl < 20 || 14 + ihl > f.size()) return;
        put16(f, 24, 0);
        put16(f, 24, checksum(f, 14, ihl, 0));
        const std::size_t total = std::min<std::size_t>(get16(f, 16), f.size() - 14);
        if (total < ihl || (get16(f, 20) & 0x3fff) != 0) return;  // a fragment: leave it
        const std::size_t l4 = 14 + ihl, len = total - ihl;
        const unsigned proto = unsigned(f[23]);
        std::uint32_t pseudo = proto + static_cast<std::uint32_t>(len);
        for (std::size_t i = 0; i < 8; i += 2) pseudo += get16(f, 26 + i);
        const std::size_t at = proto == 6 ? 16 : proto == 17 ? 6 : proto == 1 ? 2 : 0;
        if (at == 0 || len < at + 2) return;
        put16(f, l4 + at, 0);
        put16(f, l4 + at, checksum(f, l4, len, proto == 1 ? 0 : pseudo));
    } else if (type == 0x86dd && f.size() >= 54) {
        const std::size_t len = std::min<std::size_t>(get16(f, 18), f.size() - 54);
        const unsigned next = unsigned(f[20]);
        std::uint32_t pseudo = next + static_cast<std::uint32_t>(len);
        for (std::size_t i = 0; i < 32; i += 2) pseudo += get16(f, 22 + i);
        const std::size_t at = next == 6 ? 16 : next == 17 ? 6 : next == 58 ? 2 : 0;
        if (at == 0 || len < at + 2) return;
        put16(f, 54 + at, 0);
        put16(f, 54 + at, checksum(f, 54, len, pseudo));
    }
}

/// The device under the link: what the stack transmits is parsed for what the peers need to
/// answer (TCP sequence numbers, the DNS query's port and id, DHCP's xid).
class Device {
public:
    Result<void> transmit(std::span<const std::span<const std::byte>> frags, TxFlags, std::uint16_t) {
        if (full) return Error::again;
        std::vector<std::byte> f;
        for (const auto& s : frags) f.insert(f.end(), s.begin(), s.end());
        CHECK(f.size() >= 14 && f.size() <= 1514);
        learn(f);
        return {};
    }
    void set_receive_handler(Function<void(RxBuffer)> h) { rx_ = std::move(h); }
    void set_tx_ready_handler(Function<void()> h) { tx_ready_ = std::move(h); }
    void set_link_handler(Function<void(bool)>) {}
    bool link_up() const { return true; }
    const Mac& mac() const { return mac_; }
    std::uint16_t mtu() const { return 1500; }
    const Features& features() const { return features_; }

    void receive(std::vector<std::byte> frame) {
        if (frame.empty() || !rx_) return;
        reassembly |= may_reassemble(frame);
        rx_(RxBuffer(std::move(frame), RxFlags{validated, false, 0}, &held));
    }
    void set_full(bool on) {
        full = on;
        if (!on && tx_ready_) tx_ready_();
    }

    bool full = false;
    bool validated = false;
    bool reassembly = false;  // a fragment may wait in lwIP's reassembly (teardown waits it out)
    int held = 0;
    std::array<std::uint32_t, 4> stack_next{};  // per peer: the stack's next sequence number
    std::uint16_t dns_port = 0, dns_id = 0;
    std::uint32_t dhcp_xid = 0;

private:
    static bool may_reassemble(const std::vector<std::byte>& f) {
        if (f.size() >= 34 && get16(f, 12) == 0x0800) return (get16(f, 20) & 0x3fff) != 0;
        if (f.size() >= 54 && get16(f, 12) == 0x86dd) {
            const unsigned next = unsigned(f[20]);
            return next != 6 && next != 17 && next != 58;  // an extension header: maybe a fragment
        }
        return false;
    }
    void learn(const std::vector<std::byte>& f) {
        if (f.size() < 42 || get16(f, 12) != 0x0800 || (unsigned(f[14]) & 0xf) != 5) return;
        const unsigned proto = unsigned(f[23]);
        if (proto == 6 && f.size() >= 54) {
            const unsigned dport = get16(f, 36);
            if (dport < 40000 || dport >= 40004) return;
            const std::size_t hdr = (unsigned(f[46]) >> 4) * 4;
            const std::size_t payload = get16(f, 16) - 20 - std::min<std::size_t>(hdr, get16(f, 16) - 20);
            const unsigned flags = unsigned(f[47]);
            stack_next[dport - 40000] =
                get32(f, 38) + static_cast<std::uint32_t>(payload) + ((flags & 0x02) ? 1 : 0) + ((flags & 0x01) ? 1 : 0);
        } else if (proto == 17 && get16(f, 36) == 53 && f.size() >= 44) {
            dns_port = get16(f, 34);
            dns_id = get16(f, 42);
        } else if (proto == 17 && get16(f, 36) == 67 && f.size() >= 50) {
            dhcp_xid = get32(f, 46);
        }
    }
    Mac mac_;
    Features features_;
    Function<void(RxBuffer)> rx_;
    Function<void()> tx_ready_;
};

using Link = DeviceLink<Device, RxBuffer, 64>;  // few slots: the copying paths run too

using keel::fuzz::Input;

const IpAddr our_ip = IpAddr::v4(10, 0, 0, 2);
const IpAddr peer_ip = IpAddr::v4(10, 0, 0, 1);
constexpr std::array<std::uint8_t, 6> peer_mac{0x02, 0, 0, 0, 0, 1};

/// Ethernet + IPv4 (no options) + `l4` from the peer to us.
std::vector<std::byte> ipv4_frame(unsigned proto, const std::vector<std::byte>& l4, const IpAddr& dst) {
    std::vector<std::byte> f(34);
    for (std::size_t i = 0; i < 6; ++i) {
        f[i] = std::byte(i == 5 ? 2 : i == 0 ? 2 : 0);
        f[6 + i] = std::byte(peer_mac[i]);
    }
    put16(f, 12, 0x0800);
    f[14] = std::byte{0x45};
    put16(f, 16, static_cast<std::uint32_t>(20 + l4.size()));
    f[22] = std::byte{64};
    f[23] = std::byte(proto);
    for (std::size_t i = 0; i < 4; ++i) {
        f[26 + i] = std::byte(peer_ip.bytes()[i]);
        f[30 + i] = std::byte(dst.bytes()[i]);
    }
    f.insert(f.end(), l4.begin(), l4.end());
    fix_checksums(f);
    return f;
}

std::vector<std::byte> udp(std::uint16_t sport, std::uint16_t dport, const std::vector<std::byte>& payload) {
    std::vector<std::byte> u(8);
    put16(u, 0, sport);
    put16(u, 2, dport);
    put16(u, 4, static_cast<std::uint32_t>(8 + payload.size()));
    u.insert(u.end(), payload.begin(), payload.end());
    return u;
}

struct World {
    Clock clock;
    EventLoop loop{clock};
    Device dev;
    std::optional<Link> link;
    TcpListener listener;
    std::array<TcpStream, 4> conns;
    UdpSocket echo;
    std::array<std::uint32_t, 4> peer_next{};
    unsigned reading = 0;

    /// Run the loop for `for_ns` of virtual time, or until nothing is left to do: no timer to
    /// move the clock to. An iteration that only idles (moves the clock to the next timer)
    /// runs nothing, and is progress all the same.
    void run(std::uint64_t for_ns) {
        const std::uint64_t until = g_now + for_ns;
        while (g_now < until) {
            const std::uint64_t before = g_now;
            if (!loop.run_once(true) && g_now == before) break;
        }
        for (int i = 0; i < 4; ++i) loop.run_once(false);
    }
};

Task<void> accept_loop(World& w) {
    for (;;) {
        auto c = co_await w.listener.accept();
        if (!c) co_return;
        for (std::size_t k = 0; k < w.conns.size(); ++k) {
            if (w.conns[k]) continue;
            w.conns[k] = std::move(*c);
            if (w.reading & (1u << k)) spawn([](World& wo, std::size_t i) -> Task<void> {
                std::byte buf[700];
                for (;;) {
                    auto r = co_await wo.conns[i].read(buf);
                    if (!r || *r == 0) co_return;
                    if (!(co_await wo.conns[i].write({buf, *r}))) co_return;  // echo
                }
            }(w, k));
            break;
        }
    }
}

Task<void> serve_udp(World& w) {
    std::byte buf[1500];
    for (;;) {
        auto d = co_await w.echo.recv_from(buf);
        if (!d) co_return;
        (void)w.echo.send_to(d->from, {buf, d->size});
    }
}

void tcp_segment(World& w, Input& in) {
    const std::size_t k = in.u8() % 4;
    const std::uint8_t flags = in.u8();
    const auto seq_delta = static_cast<std::int8_t>(in.u8());
    const auto ack_delta = static_cast<std::int8_t>(in.u8());
    const std::uint8_t window = in.u8();
    auto payload = in.bytes<std::vector<std::byte>>(in.u8());
    if ((flags & 0x12) == 0x02) w.peer_next[k] = 1000u * static_cast<std::uint32_t>(k + 1);
    std::vector<std::byte> t(20);
    put16(t, 0, 40000 + static_cast<std::uint32_t>(k));
    put16(t, 2, 80);
    put32(t, 4, w.peer_next[k] + static_cast<std::uint32_t>(seq_delta));
    put32(t, 8, w.dev.stack_next[k] + static_cast<std::uint32_t>(ack_delta));
    t[12] = std::byte{5 << 4};
    t[13] = std::byte(flags);
    put16(t, 14, window == 0 ? 0 : window * 256u + 255u);
    t.insert(t.end(), payload.begin(), payload.end());
    if (seq_delta == 0) {
        w.peer_next[k] += static_cast<std::uint32_t>(payload.size()) + ((flags & 0x02) ? 1 : 0) + ((flags & 0x01) ? 1 : 0);
    }
    w.dev.receive(ipv4_frame(6, t, our_ip));
}

void dns_answer(World& w, Input& in) {
    std::vector<std::byte> m(2);
    put16(m, 0, w.dev.dns_id);
    auto body = in.bytes<std::vector<std::byte>>(in.u8() * 2u);
    m.insert(m.end(), body.begin(), body.end());
    w.dev.receive(ipv4_frame(17, udp(53, w.dev.dns_port, m), our_ip));
}

void dhcp_reply(World& w, Input& in) {
    std::vector<std::byte> m(240);
    m[0] = std::byte{2};  // BOOTREPLY
    m[1] = std::byte{1};
    m[2] = std::byte{6};
    put32(m, 4, w.dev.dhcp_xid);
    for (std::size_t i = 0; i < 4; ++i) {
        m[16 + i] = std::byte(our_ip.bytes()[i]);    // yiaddr
        m[20 + i] = std::byte(peer_ip.bytes()[i]);  // siaddr
    }
    for (std::size_t i = 0; i < 6; ++i) m[28 + i] = std::byte(w.dev.mac().bytes[i]);
    put32(m, 236, 0x63825363);  // magic cookie
    auto options = in.bytes<std::vector<std::byte>>(in.u8() * 2u);
    m.insert(m.end(), options.begin(), options.end());
    w.dev.receive(ipv4_frame(17, udp(67, 68, m), IpAddr::v4(255, 255, 255, 255)));
}

void service(World& w, Input& in) {
    const std::size_t k = in.u8() % 4;
    switch (in.u8() % 6) {
        case 0:  // one read
            spawn([](TcpStream& st) -> Task<void> {
                std::byte buf[300];
                (void)co_await st.read_for(buf, s(1));
            }(w.conns[k]));
            break;
        case 1:  // a write larger than the window
            spawn([](TcpStream& st) -> Task<void> {
                static const std::vector<std::byte> data(100'000, std::byte{'x'});
                (void)co_await st.write_for(data, s(5));
            }(w.conns[k]));
            break;
        case 2:
            spawn([](TcpStream st) -> Task<void> { (void)co_await st.close(s(2)); }(std::move(w.conns[k])));
            break;
        case 3:
            w.conns[k].abort();
            break;
        case 4:
            w.listener.close();
            break;
        case 5:
            w.dev.set_full(!w.dev.full);
            break;
    }
}

[[noreturn]] void on_panic(const char* message) {
    std::fprintf(stderr, "PANIC: %s\n", message);
    std::abort();
}

Task<void> lookup() { (void)co_await dns_lookup("keel.example"); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    set_panic_handler(&on_panic);
    set_log_level(LogLevel::error);
    Input in(data, size);
    const std::uint8_t mode = in.u8();
    {
        World w;
        set_loop(&w.loop);
        seed_random(0x6c77697066757a7aull);
        w.reading = (mode >> 1) & 0xf;
        w.dev.validated = (mode & 0x40) != 0;
        w.link.emplace(w.dev);
        Config cfg;
        if (!(mode & 1)) cfg.ipv4 = Ipv4Static{our_ip, 24, peer_ip};
        cfg.dns = peer_ip;
        CHECK(w.link->interface().configure(cfg).ok());
        auto l = TcpListener::listen(80, 4);
        CHECK(l.ok());
        w.listener = std::move(*l);
        auto u = UdpSocket::bind(7);
        CHECK(u.ok());
        w.echo = std::move(*u);
        spawn(accept_loop(w));
        spawn(serve_udp(w));
        if (mode & 0x20) spawn(lookup());
        // The peer asks who has 10.0.0.2: the stack learns the peer's MAC from it.
        std::vector<std::byte> arp(42);
        for (std::size_t i = 0; i < 6; ++i) {
            arp[i] = std::byte{0xff};
            arp[6 + i] = arp[22 + i] = std::byte(peer_mac[i]);
        }
        put16(arp, 12, 0x0806);
        put16(arp, 14, 1);
        put16(arp, 16, 0x0800);
        arp[18] = std::byte{6};
        arp[19] = std::byte{4};
        put16(arp, 20, 1);
        for (std::size_t i = 0; i < 4; ++i) {
            arp[28 + i] = std::byte(peer_ip.bytes()[i]);
            arp[38 + i] = std::byte(our_ip.bytes()[i]);
        }
        w.dev.receive(arp);
        w.run(ms(10));

        while (!in.empty()) {
            const std::uint8_t op = in.u8();
            switch (op & 0x7f) {
                case 0: {
                    const std::size_t high = in.u8();  // big-endian
                    const std::size_t len = high << 8 | in.u8();
                    auto f = in.bytes<std::vector<std::byte>>(len);
                    if (!(op & 0x80)) fix_checksums(f);
                    w.dev.receive(std::move(f));
                    break;
                }
                case 1: tcp_segment(w, in); break;
                case 2: dns_answer(w, in); break;
                case 3: dhcp_reply(w, in); break;
                case 4: w.run(ms(50) * (1 + in.u8())); break;
                case 5: service(w, in); break;
                default: break;
            }
            w.run(0);
        }
        w.run(s(2));
        // Teardown: handles first (their pbufs point into the link), then let what still holds
        // a received buffer or a task expire: a close() in flight (its task owns the connection
        // and its unread data until the 2 s deadline, covered by the 2 s above), reassembly
        // (IPv6 waits longest: 60 s), the DNS lookup's retries. Removing the netif frees the
        // rest (connections, ARP and ND queues).
        w.listener.close();
        for (auto& c : w.conns) c.abort();
        w.echo = UdpSocket();
        w.dev.set_full(false);
        w.run(w.dev.reassembly ? s(65) : (mode & 0x20) ? s(30) : s(1));
        w.link.reset();
        CHECK(w.dev.held == 0);
        w.run(0);
        set_loop(nullptr);
    }
    return 0;
}

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
//             the stack sent it, plus the deltas (a SYN starts a new sequence); the ECN bits
//             ask for TCP options (window scaling, MSS: frames.h)
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

#include "frames.h"
#include "fuzz_support.h"
#include "service.h"
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
using namespace keel::fuzz;

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

/// The device under the link: what the stack transmits is parsed for what the peers need to
/// answer (TCP sequence numbers, the DNS query's port and id, DHCP's xid).
class Device {
public:
    Result<void> transmit(std::span<const std::span<const std::byte>> frags, TxFlags, std::uint16_t) {
        if (full) return Error::again;
        std::vector<std::byte> f;
        for (const auto& s : frags) f.insert(f.end(), s.begin(), s.end());
        CHECK(f.size() >= 14 && f.size() <= 1514);
        peers.learn(f);
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
    keel::fuzz::Peers peers;  // what the stack sent the peers

private:
    Mac mac_;
    Features features_;
    Function<void(RxBuffer)> rx_;
    Function<void()> tx_ready_;
};

using Link = DeviceLink<Device, RxBuffer, 64>;  // few slots: the copying paths run too

struct World {
    Clock clock;
    EventLoop loop{clock};
    Device dev;
    std::optional<Link> link;
    Service service;

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

void dns_answer(World& w, Input& in) {
    std::vector<std::byte> m(2);
    put16(m, 0, w.dev.peers.dns_id);
    auto body = in.bytes<std::vector<std::byte>>(in.u8() * 2u);
    m.insert(m.end(), body.begin(), body.end());
    w.dev.receive(ipv4_frame(17, udp(53, w.dev.peers.dns_port, m), our_ip));
}

void dhcp_reply(World& w, Input& in) {
    std::vector<std::byte> m(240);
    m[0] = std::byte{2};  // BOOTREPLY
    m[1] = std::byte{1};
    m[2] = std::byte{6};
    put32(m, 4, w.dev.peers.dhcp_xid);
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
        w.dev.validated = (mode & 0x40) != 0;
        w.link.emplace(w.dev);
        Config cfg;
        if (!(mode & 1)) cfg.ipv4 = Ipv4Static{our_ip, 24, peer_ip};
        cfg.dns = peer_ip;
        CHECK(w.link->interface().configure(cfg).ok());
        w.service.start((mode >> 1) & 0xf);
        if (mode & 0x20) spawn(lookup());
        w.dev.receive(arp_who_has_us());  // the stack learns the peer's MAC from it
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
                case 1: w.dev.receive(ipv4_frame(6, w.dev.peers.tcp(in), our_ip)); break;
                case 2: dns_answer(w, in); break;
                case 3: dhcp_reply(w, in); break;
                case 4: w.run(ms(50) * (1 + in.u8())); break;
                case 5:
                    if (!w.service.act(in)) w.dev.set_full(!w.dev.full);
                    break;
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
        w.service.stop();
        w.dev.set_full(false);
        w.run(w.dev.reassembly ? s(65) : (mode & 0x20) ? s(30) : s(1));
        w.link.reset();
        CHECK(w.dev.held == 0);
        w.run(0);
        set_loop(nullptr);
    }
    return 0;
}

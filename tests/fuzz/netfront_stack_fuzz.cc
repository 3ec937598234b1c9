// netfront_stack: the whole receive and transmit path of a guest's network, the fuzzer playing
// netback. The real netfront (xenbus handshake, supervisor, resets) under the real net layer
// (DeviceLink over Netfront, Interface) and lwIP, with a small service on top (service.h: a
// TCP listener on 80 that echoes on some connections and leaves others unread, a UDP echo on
// 7). The fake netback's own data path answers the rings (so it enforces the ring rules on
// netfront) and the fuzzer steers it: the frames it delivers (raw, TCP segments that follow
// the stack's sequence numbers, GSO super-segments), how it lays them into the rx slots, its
// faults, held tx responses, pages it keeps mapped and writes late, lost events, resets.
//
// Input: two setup bytes, then commands until the input ends:
//   setup 0: bits 0-1 rx buffers (8, 19, 64, 256), bits 2-3 tx buffers (same), bit 4 rx GSO
//            (Options::rx_gso; needs 19 rx buffers), bit 5 frames arrive data-validated
//   setup 1: backend features: bit 0 sg, bit 1 split event channels, bit 2 gso-tcpv4, bit 3
//            no-csum-offload; bits 4-7: which of the four accepted connections the service
//            reads (and echoes), the others it leaves unread
//   command byte, low four bits:
//   0 RAW     len16 (big-endian), bytes: an Ethernet frame; checksums recomputed unless bit 7
//             of the command byte is set
//   1, 14 TCP k, flags, seq delta, ack delta, window byte, len, payload: a segment from peer k
//             (10.0.0.1:40000+k to :80) that follows the stack's sequence numbers (as lwip_input)
//   2 GSO     k, seq delta, len16 (payload, filled with a pattern), gso_size16, how: a TCP/IPv4
//             super-segment (ACK|PSH) sent with its GSO extra-info when the frontend asked for
//             them, else as one large frame; how bits 0-1: rx flags (csum_blank|data_validated,
//             data_validated, none, csum_blank)
//   3 UDP     sport16, len, payload: a datagram to the echo on port 7
//   4 RXKNOBS offset16, chunk, flags: where the next frames start in the page (% 4096), bytes
//             per slot (0: a page, else 32 * chunk), NETRXF_* added to each frame's first slot
//             (bits 0-1; all four low bits when bit 7 is set)
//   5 FAULT   dir, fault, times, after: misbehave_tx / misbehave_rx (FakeNetback::Fault)
//   6 HOLD    what, n: hold tx responses; stop holding (and release all); release n
//   7 MAP     what: toggle map_rx_pages; toggle keep_rx_mapped; let_go; toggle keep_rings_mapped
//   8 LATE    byte: late_write (the XSA-392 class)
//   9 JUMP    jump_tx_silently
//   10 LOSE   toggle lose_rx_notify
//   11 TIME   n: the clock advances (n + 1) * 50 ms (lwIP's timers, the watchdog, reconnects)
//   12 BACKEND what: the backend closes (1 in 4); netfront's rx check; let_go
//   13, 15 SERVICE k, what (service.h: read / write 100 kB / close / abort connection k, shut
//             the listener), or, for the sixth move, a UDP datagram of len16 % 9000 bytes from
//             the echo socket to the peer (fragmented above the MTU)
// After each command the loop runs without time passing, and the peers learn the stack's
// sequence numbers from what the fake netback saw transmitted.
//
// What must hold: no crash, sanitizer report or panic (an lwIP assertion is a panic); the fakes
// see no protocol violation by netfront (any gtest failure aborts); every transmitted frame is
// a whole Ethernet frame within its size; a page the backend can still write to (late_write)
// is still granted to it; at the end every rx buffer is back (DeviceLink asserts it) and
// nothing granted, allocated or open is left (the rig's checks).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <vector>

#include "fakes/netfront_rig.h"
#include "frames.h"
#include "fuzz_gtest.h"
#include "keel/log.h"
#include "keel/net/link.h"
#include "keel/net/net.h"
#include "keel/panic.h"
#include "keel/timer.h"
#include "service.h"

namespace keel::test {
namespace {

using keel::fuzz::Frame;
using keel::fuzz::Input;

// One clock across inputs: lwIP's sys_now() must not go backwards (its timeouts are absolute).
std::uint64_t g_now = 1'000'000'000;

using Link =
    net::DeviceLink<netfront::Netfront, netfront::RxBuffer, 64>;  // few slots: the copying paths run too

/// The fake netback's rx queue (FakeNetback::rx_queue_size): inject() fails the test beyond it.
constexpr std::size_t rx_queue_limit = 16;

[[noreturn]] void on_panic(const char* message) {
    std::fprintf(stderr, "PANIC: %s\n", message);
    std::abort();
}

class Harness : public NetfrontTest {
public:
    Harness() {
        loop_platform.now = g_now;
        loop_platform.record_timers = false;  // FakePlatform would keep every deadline
    }
    void TestBody() override {}
    void play(Input& in);

private:
    /// The loop without time passing, until quiet (bounded), then learn what was transmitted.
    void step();
    /// `for_ns` of virtual time (bounded rounds).
    void run_for(std::uint64_t for_ns);
    void learn_tx();
    /// Queue a frame at the fake netback, unless it could never fit the rx ring (the fake
    /// would wait for buffers forever and nothing after it would arrive).
    void deliver(const Frame& f, std::uint16_t gso_size = 0,
                 std::uint16_t flags = NETRXF_csum_blank | NETRXF_data_validated);
    void gso(Input& in);
    void rx_knobs(Input& in);
    void fault(Input& in);
    void late_write(Input& in);
    void command(Input& in);
    void teardown();

    netfront::Options options_;
    fuzz::MacBytes mac_{};
    std::optional<Link> link_;
    fuzz::Service service_;  // after link_: its handles go first
    fuzz::Peers peers_;
    bool reassembly_ = false;  // a fragment may wait in lwIP's reassembly (teardown waits it out)
};

void Harness::step() {
    for (int i = 0; i < 200; ++i) {
        if (!loop.run_once(false) && !busy() && loop.queued() == 0) break;
    }
    learn_tx();
}

void Harness::run_for(std::uint64_t for_ns) {
    const std::uint64_t until = loop.now() + for_ns;
    (void)keel::fuzz::run_until_quiet(
        loop, [&] { return loop.now() >= until; }, [this] { return busy(); },
        static_cast<int>(std::min<std::uint64_t>(4000, 40 + for_ns / ms(10))));
    step();
}

void Harness::learn_tx() {
    for (const FakeNetback::Frame& f : nb.tx_frames()) {
        // What lwIP hands the link: whole Ethernet frames within the MTU, or a GSO super-segment
        // within the first tx request's 16-bit size.
        CHECK(f.data.size() >= 14);
        CHECK(f.data.size() <= (f.gso_size > 0 ? netfront::Netfront::max_gso_frame : nf->max_frame()));
        peers_.learn(f.data);
    }
    nb.tx_frames().clear();
}

void Harness::deliver(const Frame& f, std::uint16_t gso_size, std::uint16_t flags) {
    if (nb.rx_queued() >= rx_queue_limit) return;
    const std::size_t chunk = std::min<std::size_t>(nb.rx_chunk, FakeBackend::page);
    const std::size_t first = std::min({chunk, FakeBackend::page - nb.rx_offset, f.size()});
    const std::size_t slots =
        1 + (f.size() > first ? (f.size() - first + chunk - 1) / chunk : 0) + (gso_size > 0);
    if (slots > options_.rx_buffers) return;
    reassembly_ |= fuzz::may_reassemble(f);
    if (gso_size > 0) {
        nb.inject_gso(f, gso_size, flags);
    } else {
        nb.inject(f);
    }
}

void Harness::gso(Input& in) {
    const std::size_t k = in.u8() % fuzz::tcp_peers;
    const auto seq_delta = static_cast<std::int8_t>(in.u8());
    const std::size_t len = in.u16() % (65535 - 40 + 1);
    const std::uint16_t gso_size = std::max<std::uint16_t>(in.u16(), 1);
    const std::uint8_t how = in.u8();
    Frame payload(len);
    for (std::size_t i = 0; i < len; ++i) payload[i] = std::byte(i * 7 + how);
    const Frame f = fuzz::ipv4_frame(6, peers_.tcp(k, 0x18, seq_delta, 0, 0xff, payload), fuzz::our_ip, mac_);
    static constexpr std::uint16_t flags[] = {NETRXF_csum_blank | NETRXF_data_validated,
                                              NETRXF_data_validated, 0, NETRXF_csum_blank};
    // Netback sends GSO only to a frontend that wrote feature-gso-tcpv4 (else the fake fails
    // the test): with rx GSO off it arrives as one large frame.
    // (netfront writes it when Options::rx_gso and its rx pool holds a 64 KiB frame.)
    const bool rx_gso = options_.rx_gso && options_.rx_buffers >= XEN_NETIF_NR_SLOTS_MIN + 1;
    deliver(f, rx_gso ? gso_size : 0, flags[how & 3]);
}

void Harness::rx_knobs(Input& in) {
    nb.rx_offset = in.u16() % FakeBackend::page;
    const std::uint8_t chunk = in.u8();
    nb.rx_chunk = chunk == 0 ? FakeBackend::page : 32u * chunk;
    const std::uint8_t flags = in.u8();
    nb.rx_flags = flags & (flags & 0x80 ? 0x0F : 0x03);
}

void Harness::fault(Input& in) {
    const bool tx = in.u8() & 1;
    const auto f =
        static_cast<FakeNetback::Fault>(in.u8() % (static_cast<int>(FakeNetback::Fault::rsp_prod_jump) + 1));
    const int times = 1 + in.u8() % 4;
    if (tx) {
        nb.misbehave_tx(f, times, in.u8() % 4);
    } else {
        nb.misbehave_rx(f, times);
    }
}

void Harness::late_write(Input& in) {
    const auto b = std::byte(in.u8());
    if (!nb.late_write(b)) return;
    // The backend could still write the page: then it is still granted to it (netfront ends a
    // page's grant before the stack sees the page, and keeps a page whose grant it could not
    // end out of use), the page being the one behind that grant.
    const grant_ref_t ref = nb.last_rx_ref;
    CHECK(ref < entries.size());
    CHECK((entries[ref].flags & GTF_type_mask) == GTF_permit_access);
    std::byte* page = platform.page_of(entries[ref].frame);
    CHECK(page != nullptr && nb.last_rx_data >= page && nb.last_rx_data < page + FakeBackend::page);
}

void Harness::command(Input& in) {
    const std::uint8_t op = in.u8();
    switch (op & 0x0f) {
        case 0: {
            const std::size_t high = in.u8();  // big-endian
            const std::size_t len = high << 8 | in.u8();
            auto f = in.bytes<Frame>(len);
            if (!(op & 0x80)) fuzz::fix_checksums(f);
            deliver(f);
            break;
        }
        case 1:
        case 14:
            deliver(fuzz::ipv4_frame(6, peers_.tcp(in), fuzz::our_ip, mac_));
            break;
        case 2:
            gso(in);
            break;
        case 3: {
            const std::uint16_t sport = in.u16();
            const auto payload = in.bytes<Frame>(in.u8());
            deliver(fuzz::ipv4_frame(17, fuzz::udp(sport, 7, payload), fuzz::our_ip, mac_));
            break;
        }
        case 4:
            rx_knobs(in);
            break;
        case 5:
            fault(in);
            break;
        case 6:
            switch (in.u8() % 3) {
                case 0:
                    nb.hold_tx = true;
                    break;
                case 1:
                    nb.hold_tx = false;
                    nb.release_tx();
                    break;
                case 2:
                    nb.release_tx(in.u8());
                    break;
            }
            break;
        case 7:
            switch (in.u8() % 4) {
                case 0:
                    nb.map_rx_pages = !nb.map_rx_pages;
                    break;
                case 1:
                    nb.keep_rx_mapped = !nb.keep_rx_mapped;
                    break;
                case 2:
                    nb.let_go();
                    break;
                case 3:
                    nb.keep_rings_mapped = !nb.keep_rings_mapped;
                    break;
            }
            break;
        case 8:
            late_write(in);
            break;
        case 9:
            nb.jump_tx_silently();
            break;
        case 10:
            nb.lose_rx_notify = !nb.lose_rx_notify;
            break;
        case 11:
            run_for(ms(50) * (1 + in.u8()));
            break;
        case 12:
            switch (in.u8() % 6) {
                case 0:
                    nb.xenbus().set_state(XenbusState::closing);
                    break;  // the backend leaves
                case 1:
                case 2:
                case 3:
                    nf->check_rx();
                    break;
                default:
                    nb.let_go();
                    break;
            }
            break;
        case 13:
        case 15:
            if (!service_.act(in)) {
                static const std::vector<std::byte> data(9000, std::byte{'u'});
                const std::size_t n = in.u16() % data.size();
                (void)service_.echo.send_to({fuzz::peer_ip, 9}, std::span(data).first(n));
            }
            break;
    }
    step();
}

void Harness::teardown() {
    // The backend behaves from here on, so the connection can drain.
    nb.hold_tx = false;
    nb.release_tx();
    nb.lose_rx_notify = false;
    nb.map_rx_pages = nb.keep_rx_mapped = nb.keep_rings_mapped = false;
    nb.let_go();
    run_for(s(2));
    // Handles first (their pbufs point into the link), then let what still holds a received
    // buffer or a task expire: a close() in flight (its task owns the connection and its unread
    // data until its 2 s deadline, covered by the 2 s above), reassembly (IPv6 waits longest:
    // 60 s). Removing the netif (the link) frees the rest (connections, ARP and ND queues); its
    // destructor asserts that every rx buffer came back. Then the rig's destructor takes the
    // device down and checks that nothing is left granted, allocated or open.
    service_.stop();
    run_for(reassembly_ ? s(65) : s(1));
    link_.reset();
    nb.let_go();
    step();
    g_now = loop_platform.now;
}

void Harness::play(Input& in) {
    set_panic_handler(&on_panic);
    set_log_level(LogLevel::error);
    net::seed_random(0x6e6673746b66757aull);
    static constexpr std::uint16_t pools[] = {8, 19, 64, 256};
    const std::uint8_t setup = in.u8();
    options_.rx_buffers = pools[setup & 3];
    options_.tx_buffers = pools[(setup >> 2) & 3];
    options_.rx_gso = setup & 0x10;
    const std::uint8_t feat = in.u8();
    BackendFeatures f;
    f.sg = feat & 1;
    f.split_event_channels = feat & 2;
    f.gso_tcpv4 = feat & 4;
    f.no_csum_offload = feat & 8;
    if (setup & 0x20) nb.rx_flags = NETRXF_data_validated;
    make(f, options_);
    mac_ = nf->mac().bytes;
    link_.emplace(*nf);
    net::Config cfg;
    cfg.ipv4 = net::Ipv4Static{fuzz::our_ip, 24, fuzz::peer_ip};
    CHECK(link_->interface().configure(cfg).ok());
    service_.start(feat >> 4);
    nf->start();
    (void)keel::fuzz::run_until_quiet(
        loop, [&] { return nf->link_up() || !nf->supervising(); }, [this] { return busy(); }, 2000);
    deliver(fuzz::arp_who_has_us());  // the stack learns the peer's MAC from it
    run_for(ms(10));

    for (int ops = 0; !in.empty() && ops < 4000; ++ops) command(in);
    teardown();
}

}  // namespace
}  // namespace keel::test

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return keel::fuzz::play_rig<keel::test::Harness>(data, size);
}

// libFuzzer plays netback against the real netfront (xenbus handshake, supervisor, resets): the
// input is a program of backend moves -- tx and rx responses with any id, status, offset, size,
// flags and extra-info (GSO or not), rsp_prod published, held back or thrown anywhere, events
// delivered or not, pages kept mapped, the backend closing -- mixed with the guest's transmits,
// the stack holding or returning frames, and time passing. The fake netback keeps the xenbus
// column and its checks on the frontend (grants, channels, teardown); its data path is off.
//
// The net layer and lwIP are not on top (lwIP is C and this binary is built from C++ sources):
// the sink stands in for the stack and reads every byte of every frame it is handed.
//
// What must hold: no crash or sanitizer report; a delivered frame's size is the sum of its
// segments, each within a page; no grant the backend holds is ever in a frame; after the
// device is gone, nothing is left granted, allocated or open (the rig's checks); the fakes see
// no protocol violation by the frontend (any gtest failure aborts).
#include <cstdint>
#include <cstring>
#include <vector>

#include "fakes/netfront_rig.h"
#include "fuzz_gtest.h"

namespace keel::test {
namespace {

using keel::fuzz::Input;

class Harness : public NetfrontTest {
public:
    void TestBody() override {}
    void play(Input& in);

private:
    template <typename Done>
    bool run_until_quiet(Done&& done, int max) {
        return keel::fuzz::run_until_quiet(loop, done, [this] { return busy(); }, max);
    }
    void transmit(Input& in);
    void answer_tx(Input& in);
    void answer_rx(Input& in);
    void publish(Input& in);
    void sink(netfront::RxBuffer b);

    std::vector<netfront::RxBuffer> kept_;
    std::uint64_t sum_ = 0;
};

void Harness::sink(netfront::RxBuffer b) {
    std::size_t total = 0;
    for (std::size_t i = 0; i < b.segment_count(); ++i) {
        const auto seg = b.segment(i);
        CHECK(seg.size() <= FakeBackend::page);
        for (std::byte x : seg) sum_ += static_cast<std::uint8_t>(x);  // ASan: every byte is ours
        total += seg.size();
    }
    CHECK(total == b.size());
    CHECK(total > 0);
    if (kept_.size() < 300) kept_.push_back(std::move(b));
}

void Harness::transmit(Input& in) {
    static std::vector<std::byte> frame(70000);
    const std::uint8_t how = in.u8();
    std::size_t len = in.u16() % (how & 1 ? 65600 : 9100);
    std::memset(frame.data(), how, std::min(len, frame.size()));
    const std::span<const std::byte> parts[] = {std::span(frame).first(std::min(len, frame.size()))};
    const auto flags = how & 2 ? netfront::TxFlags::checksum_blank : netfront::TxFlags::none;
    (void)nf->transmit(parts, flags, how & 4 ? in.u16() % 9000 : 0);
}

void Harness::answer_tx(Input& in) {
    auto& ring = nb.tx_back();
    if (!nb.tx_channel()) return;
    const RING_IDX prod = __atomic_load_n(&ring.sring->req_prod, __ATOMIC_ACQUIRE);
    CHECK(!RING_REQUEST_PROD_OVERFLOW(&ring, prod));
    std::uint8_t n = in.u8() % 24;
    while (n-- > 0 && ring.req_cons != prod) {
        netif_tx_request_t req;
        std::memcpy(&req, RING_GET_REQUEST(&ring, ring.req_cons), sizeof req);
        ++ring.req_cons;
        const std::uint8_t how = in.u8();
        netif_tx_response_t* rsp = RING_GET_RESPONSE(&ring, ring.rsp_prod_pvt);
        ++ring.rsp_prod_pvt;
        // Mostly the right id (else nothing gets far); the status anything.
        rsp->id = how & 0x80 ? in.u16() : req.id;
        static constexpr std::int16_t statuses[] = {NETIF_RSP_OKAY, NETIF_RSP_OKAY, NETIF_RSP_ERROR,
                                                    NETIF_RSP_DROPPED, NETIF_RSP_NULL, 7};
        rsp->status = statuses[how % 6];
    }
}

void Harness::answer_rx(Input& in) {
    auto& ring = nb.rx_back();
    if (!nb.rx_channel()) return;
    const RING_IDX prod = __atomic_load_n(&ring.sring->req_prod, __ATOMIC_ACQUIRE);
    CHECK(!RING_REQUEST_PROD_OVERFLOW(&ring, prod));
    std::uint8_t n = 1 + in.u8() % 20;
    while (n-- > 0 && ring.req_cons != prod) {
        netif_rx_request_t req;
        std::memcpy(&req, RING_GET_REQUEST(&ring, ring.req_cons), sizeof req);
        CHECK(req.id == (ring.req_cons & (RING_SIZE(&ring) - 1)));  // netfront's id = slot rule
        ++ring.req_cons;
        netif_rx_response_t* rsp = RING_GET_RESPONSE(&ring, ring.rsp_prod_pvt);
        ++ring.rsp_prod_pvt;
        const std::uint8_t how = in.u8();
        if (how & 0x80) {
            // An extra-info slot over the response.
            netif_extra_info_t extra{};
            extra.type = in.u8() % 6;
            extra.flags = in.u8() & 1;
            extra.u.gso.size = how & 0x40 ? 1448 : in.u16();
            extra.u.gso.type = in.u8() % 4;
            std::memcpy(rsp, &extra, sizeof extra);
            continue;
        }
        rsp->id = how & 0x40 ? in.u16() : req.id;
        rsp->flags = in.u8() & 0x0F;
        rsp->offset = how & 0x20 ? in.u16() : static_cast<std::uint16_t>(in.u8());
        rsp->status = how & 0x10 ? static_cast<std::int16_t>(in.u16()) : static_cast<std::int16_t>(in.u8() * 16);
        // A request whose slot the backend already claimed to answer (rsp_prod published past
        // it) has had its grant ended by the guest: Xen would refuse the copy, so do nothing.
        if (req.gref >= entries.size() || (entries[req.gref].flags & GTF_type_mask) != GTF_permit_access) continue;
        std::byte* page = nb.granted_page(req.gref, true);
        const std::size_t off = rsp->offset, len = rsp->status > 0 ? static_cast<std::size_t>(rsp->status) : 0;
        if (page && off < FakeBackend::page) {
            std::memset(page + off, how, std::min(len, FakeBackend::page - off));
        }
        if (how & 0x08) nb.map_page(req.gref);  // and keep it mapped (the late-write backend)
    }
}

void Harness::publish(Input& in) {
    const std::uint8_t how = in.u8();
    const bool on_rx = how & 1;
    FakeChannel* ch = on_rx ? nb.rx_channel() : nb.tx_channel();
    if (!ch) return;
    RING_IDX* rsp_prod = on_rx ? &nb.rx_back().sring->rsp_prod : &nb.tx_back().sring->rsp_prod;
    const RING_IDX pvt = on_rx ? nb.rx_back().rsp_prod_pvt : nb.tx_back().rsp_prod_pvt;
    // Publish what was written, or throw rsp_prod anywhere (a jump, backwards, a wrap).
    const RING_IDX to = how & 2 ? pvt + static_cast<std::int16_t>(in.u16()) : pvt;
    __atomic_store_n(rsp_prod, to, __ATOMIC_RELEASE);
    // Published ahead of what we wrote: those slots count as answered (with whatever they
    // held), as the guest sees them; the back ring follows, or its own bookkeeping would
    // claim the guest overran it.
    // (Beyond the guest's requests it resets; then there is nothing to follow.)
    const auto ahead = static_cast<std::int32_t>(to - pvt);
    if (ahead > 0 && ahead <= 256) {
        auto follow = [to](auto& ring) {
            if (static_cast<std::int32_t>(ring.sring->req_prod - to) < 0) return;
            ring.rsp_prod_pvt = to;
            if (static_cast<std::int32_t>(to - ring.req_cons) > 0) ring.req_cons = to;
        };
        if (on_rx) {
            follow(nb.rx_back());
        } else {
            follow(nb.tx_back());
        }
    }
    if (how & 4) ch->fire();
}

void Harness::play(Input& in) {
    netfront::Options o;
    static constexpr std::uint16_t pools[] = {4, 19, 64, 256};
    const std::uint8_t setup = in.u8();
    o.rx_buffers = pools[setup & 3];
    o.tx_buffers = pools[(setup >> 2) & 3];
    o.rx_gso = setup & 0x10;
    BackendFeatures f;
    const std::uint8_t feat = in.u8();
    f.sg = feat & 1;
    f.split_event_channels = feat & 2;
    f.gso_tcpv4 = feat & 4;
    f.no_csum_offload = feat & 8;
    if (o.tx_buffers < 4) return;
    nb.passive = true;
    make(f, o);
    nf->set_receive_handler([this](netfront::RxBuffer b) { sink(std::move(b)); });
    nf->set_link_handler([this](bool up) {
        // Re-entrancy probe: the link handler transmits (as the net layer's pump would).
        if (up) return;
        const std::byte frame[60]{};
        const std::span<const std::byte> parts[] = {frame};
        CHECK(nf->transmit(parts).error() == Error::closed);
    });
    nf->set_tx_ready_handler([this] {
        const std::byte frame[60]{};
        const std::span<const std::byte> parts[] = {frame};
        (void)nf->transmit(parts);
    });
    nf->start();
    (void)run_until_quiet([&] { return nf->link_up() || !nf->supervising(); }, 2000);

    for (int ops = 0; !in.empty() && ops < 4000; ++ops) {
        switch (in.u8() % 12) {
        case 0:
        case 1: transmit(in); break;
        case 2: answer_tx(in); break;
        case 3:
        case 4: answer_rx(in); break;
        case 5: publish(in); break;
        case 6: settle(); break;
        case 7: {  // time passes: back-off, reconnects, the watchdog
            const std::uint64_t until = loop.now() + ms(in.u8()) * 20;
            (void)run_until_quiet([&] { return loop.now() >= until; }, 400);
            break;
        }
        case 8: {  // the stack gives frames back
            const std::size_t keep = in.u8() % (kept_.size() + 1);
            kept_.resize(std::min(keep, kept_.size()));
            break;
        }
        case 9: nb.let_go(); break;
        case 10:  // the rx check, and a metrics scrape (stats() takes back tx responses)
            nf->check_rx();
            (void)nf->stats();
            break;
        case 11:
            if (in.u8() % 8 == 0) nb.xenbus().set_state(XenbusState::closing);  // the backend leaves
            break;
        }
    }
    kept_.clear();
    nb.let_go();
    settle();
}

}  // namespace
}  // namespace keel::test

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return keel::fuzz::play_rig<keel::test::Harness>(data, size);
}

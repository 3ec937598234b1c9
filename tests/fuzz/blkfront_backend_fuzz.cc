// libFuzzer plays blkback against the real blkfront (xenbus handshake, supervisor, resets): the
// input is a program of backend moves -- responses with any id, operation and status (to
// direct, indirect and flush/discard requests, read data written into the granted pages),
// rsp_prod published, held back or thrown anywhere, events delivered or not, pages kept mapped
// across resets, the backend leaving and coming back with another sector size, size or
// features -- mixed with the guest's reads, writes, flushes and discards and time passing. The
// fake blkback keeps the xenbus column and its checks on the frontend (grants, channels,
// teardown); its data path is off (passive).
//
// What must hold: no crash or sanitizer report; every call completes (no waiter is lost); a
// read that succeeds on a disk the backend never changed size of returns only bytes the
// backend wrote; after a reconnect to another disk the device stays failed and every call
// fails with Error::io; grants in use stay bounded by what one connection needs, however many
// resets; after the device is gone nothing is left granted, allocated or open (the rig's
// checks; any gtest failure aborts).
#include <cstdint>
#include <cstring>
#include <vector>

#include "fakes/blkfront_rig.h"
#include "fuzz_gtest.h"

namespace keel::test {
namespace {

using keel::fuzz::Input;

constexpr std::size_t max_calls = 8;
constexpr std::size_t call_bytes = 96 * 1024;

class Harness : public BlkfrontTest {
public:
    void TestBody() override {}
    void play(Input& in);

private:
    template <typename Done>
    bool run_until_quiet(Done&& done, int max) {
        return keel::fuzz::run_until_quiet(loop, done, [this] { return busy(); }, max);
    }
    struct Call {
        std::span<std::byte> buf;  // this call's part of the buffers, its first `bytes` in use
        std::size_t bytes = 0;
        bool busy = false;
        bool read = false;
        bool after_change = false;  // started once the device had failed
        Error result = Error::ok;
    };
    static Task<void> track(Task<Result<void>> t, Call& c) {
        Result<void> r = co_await std::move(t);
        c.result = r.error();
        c.busy = false;
    }
    void call(Input& in);
    void answer(Input& in);
    void publish(Input& in);
    void change_disk(Input& in);
    void check_done(Call& c);

    DiskConfig disk_;
    Call calls_[max_calls];
    // Allocated once, not per input: zeroing them is most of an input's cost otherwise.
    static inline std::vector<std::byte> buffers_ = std::vector<std::byte>(max_calls * call_bytes);
    std::size_t grant_bound_ = 0;
};

void Harness::check_done(Call& c) {
    if (c.after_change) CHECK(c.result == Error::io);
    // Only the backend's filler byte (0x5A) may appear in a read it answered with OKAY.
    if (c.read && c.result == Error::ok) {
        for (std::byte b : c.buf.first(c.bytes)) CHECK(b == std::byte{0x5A} || b == std::byte{0});
    }
    c.after_change = false;
}

void Harness::call(Input& in) {
    Call* c = nullptr;
    for (Call& k : calls_) {
        if (!k.busy) {
            check_done(k);
            c = &k;
            break;
        }
    }
    if (!c) return;
    const std::uint8_t how = in.u8();
    const std::uint32_t ss = bf->geometry().sector_size ? bf->geometry().sector_size : 512;
    const std::size_t bytes = std::min<std::size_t>(call_bytes / ss, 1 + in.u8() % 48) * ss;
    const std::uint64_t sector = in.u16() % 64;
    c->busy = true;
    c->read = false;
    c->after_change = bf->failed();
    c->bytes = bytes;
    std::memset(c->buf.data(), 0, bytes);
    switch (how % 6) {
    case 0:
    case 1:
        c->read = true;
        spawn(track(bf->read(sector, std::span(c->buf).first(bytes)), *c));
        break;
    case 2:
    case 3: spawn(track(bf->write(sector, std::span(c->buf).first(bytes)), *c)); break;
    case 4: spawn(track(bf->flush(), *c)); break;
    case 5: spawn(track(bf->discard(sector, 1 + how / 8), *c)); break;
    }
}

void Harness::answer(Input& in) {
    if (!bb.channel()) return;
    auto& ring = bb.back();
    const RING_IDX prod = __atomic_load_n(&ring.sring->req_prod, __ATOMIC_ACQUIRE);
    CHECK(!RING_REQUEST_PROD_OVERFLOW(&ring, prod));
    std::uint8_t n = 1 + in.u8() % 16;
    while (n-- > 0 && ring.req_cons != prod) {
        blkif_request_t req;
        std::memcpy(&req, RING_GET_REQUEST(&ring, ring.req_cons), sizeof req);
        ++ring.req_cons;
        const std::uint8_t how = in.u8();
        // The read data: into the pages the request names (the indirect page's list too).
        if (req.operation == BLKIF_OP_READ || req.operation == BLKIF_OP_INDIRECT) {
            const bool indirect = req.operation == BLKIF_OP_INDIRECT;
            blkif_request_indirect_t ind;
            std::memcpy(&ind, &req, sizeof ind);
            const blkif_request_segment* segs = req.seg;
            if (indirect) {
                CHECK(ind.nr_segments > BLKIF_MAX_SEGMENTS_PER_REQUEST && ind.nr_segments <= 512);
                std::byte* table = bb.granted_page(ind.indirect_grefs[0], false);
                segs = reinterpret_cast<const blkif_request_segment*>(table);
            } else {
                CHECK(req.nr_segments >= 1 && req.nr_segments <= BLKIF_MAX_SEGMENTS_PER_REQUEST);
            }
            const unsigned nseg = indirect ? ind.nr_segments : req.nr_segments;
            if (segs && (!indirect || ind.indirect_op == BLKIF_OP_READ)) {
                for (unsigned i = 0; i < nseg; ++i) {
                    std::byte* page = bb.granted_page(segs[i].gref, true);
                    if (page) std::memset(page, 0x5A, FakeBackend::page);
                    if (how & 0x40 && page) bb.map_page(segs[i].gref);  // and keeps it
                }
            }
        }
        blkif_response_t* rsp = RING_GET_RESPONSE(&ring, ring.rsp_prod_pvt);
        ++ring.rsp_prod_pvt;
        rsp->id = how & 0x80 ? (how & 0x20 ? in.u16() : req.id ^ (std::uint64_t{in.u8()} << 16)) : req.id;
        rsp->operation = how & 0x10 ? in.u8() : req.operation;
        static constexpr std::int16_t statuses[] = {BLKIF_RSP_OKAY, BLKIF_RSP_OKAY,        BLKIF_RSP_OKAY,
                                                    BLKIF_RSP_ERROR, BLKIF_RSP_EOPNOTSUPP, 7};
        rsp->status = statuses[how % 6];
    }
}

void Harness::publish(Input& in) {
    FakeChannel* ch = bb.channel();
    if (!ch) return;
    const std::uint8_t how = in.u8();
    auto& ring = bb.back();
    const RING_IDX to = how & 2 ? ring.rsp_prod_pvt + static_cast<std::int16_t>(in.u16()) : ring.rsp_prod_pvt;
    __atomic_store_n(&ring.sring->rsp_prod, to, __ATOMIC_RELEASE);
    if (how & 4) ch->fire();
}

void Harness::change_disk(Input& in) {
    const std::uint8_t how = in.u8();
    DiskConfig c = disk_;
    if (how & 1) c.sector_size = c.sector_size == 512 ? 4096 : 512;
    if (how & 2) c.sectors512 = how & 4 ? c.sectors512 / 2 : c.sectors512 * 2;
    if (how & 8) c.flush_cache = !c.flush_cache;
    if (how & 16) c.barrier = !c.barrier;
    if (how & 32) c.discard = !c.discard;
    if (how & 64) c.max_indirect_segments = c.max_indirect_segments ? 0 : 128;
    bb.reconfigure(c);
    bb.xenbus().set_state(XenbusState::closing);  // the backend leaves; it comes back as `c`
}

void Harness::play(Input& in) {
    for (std::size_t i = 0; i < max_calls; ++i) calls_[i].buf = std::span(buffers_).subspan(i * call_bytes, call_bytes);
    blkfront::Options o;
    static constexpr std::uint16_t pools[] = {16, 33, 64, 256};
    const std::uint8_t setup = in.u8();
    o.data_pages = pools[setup & 3];
    o.max_indirect_segments = (setup & 4) ? 11 : 64;
    o.max_ring_page_order = (setup >> 3) & 3;
    const std::uint8_t feat = in.u8();
    disk_.sector_size = feat & 1 ? 4096 : 512;
    disk_.persistent = feat & 2;
    disk_.flush_cache = feat & 4;
    disk_.barrier = feat & 8;
    disk_.discard = feat & 16;
    disk_.max_indirect_segments = feat & 32 ? 0 : 256;
    disk_.sectors512 = 4096;
    bb.passive = true;
    make(disk_, o);
    bf->start();
    (void)run_until_quiet([&] { return bf->connected() || !bf->supervising(); }, 2000);
    // One connection's worth: ring, data and indirect pages; resets must not add to it.
    grant_bound_ = (1u << blkfront::max_ring_page_order) + o.data_pages + o.data_pages / 12 + 1;

    for (int ops = 0; !in.empty() && ops < 3000; ++ops) {
        switch (in.u8() % 12) {
        case 0:
        case 1:
        case 2: call(in); break;
        case 3:
        case 4:
        case 5: answer(in); break;
        case 6: publish(in); break;
        case 7: settle(); break;
        case 8: {  // time passes: back-off, reconnects
            const std::uint64_t until = loop.now() + ms(in.u8()) * 20;
            (void)run_until_quiet([&] { return loop.now() >= until; }, 400);
            break;
        }
        case 9: bb.keep_mapped = in.u8() & 1; break;
        case 10:
            if (in.u8() % 4 == 0) bb.xenbus().set_state(XenbusState::closing);  // leaves, comes back
            break;
        case 11:
            if (in.u8() % 4 == 0) change_disk(in);
            break;
        }
        CHECK(grants.stats().in_use <= grant_bound_);
    }
    // The backend leaves for good: every call still running must complete.
    bb.keep_mapped = false;
    bb.xenbus().set_state(XenbusState::closing);
    settle();
    for (Call& c : calls_) {
        CHECK(!c.busy);
        check_done(c);
    }
    // The backend's domain goes away with every mapping it kept, so the rig can check that
    // the device, once destroyed, leaves nothing behind.
    for (grant_entry_v1_t& e : entries) {
        __atomic_and_fetch(&e.flags, static_cast<std::uint16_t>(~(GTF_reading | GTF_writing)), __ATOMIC_SEQ_CST);
    }
}

}  // namespace
}  // namespace keel::test

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return keel::fuzz::play_rig<keel::test::Harness>(data, size);
}

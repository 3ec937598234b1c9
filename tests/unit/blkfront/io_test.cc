// Blkfront's data path against the fake blkback: round trips of many sizes and alignments,
// splitting and indirect requests, flush, discard, read-only disks, back-pressure, cancelled
// calls, persistent grants, no allocation in steady state, and two disks at once.
#include <gtest/gtest.h>

#include <cstring>

#include "fakes/blkfront_rig.h"

namespace keel::test {
namespace {

using blkfront::Blkfront;

/// A big enough disk for the large transfers: 4 MiB.
DiskConfig big_disk() {
    DiskConfig c;
    c.sectors512 = 8192;
    return c;
}

/// A span of `n` bytes starting `misalign` bytes into `storage` (which must be large enough).
std::span<std::byte> at(std::vector<std::byte>& storage, std::size_t misalign, std::size_t n) {
    return std::span<std::byte>(storage).subspan(misalign, n);
}

Task<void> store(Task<Result<void>> t, Error& out, int& done) {
    Result<void> r = co_await std::move(t);
    out = r.error();
    ++done;
}

TEST_F(BlkfrontTest, RoundTripsOfManySizesAndAlignments) {
    make_connected(big_disk());
    const std::size_t sizes[] = {1,  2,  7,  8,   9,   87,  88,  89,
                                 95, 96, 97, 511, 512, 513, 1000};  // in 512-byte sectors
    std::uint64_t sector = 0;
    unsigned seed = 0;
    for (std::size_t sectors : sizes) {
        for (std::size_t misalign : {0u, 1u, 3u, 511u}) {
            const std::size_t n = sectors * 512;
            const auto data = pattern(n, ++seed);
            std::vector<std::byte> src(n + 4096), dst(n + 4096, std::byte{0x5A});
            std::memcpy(src.data() + misalign, data.data(), n);
            sector = (sector + 37) % (8192 - 1000);
            ASSERT_EQ(io(bf->write(sector, at(src, misalign, n))), Error::ok) << sectors << "@" << misalign;
            ASSERT_EQ(std::memcmp(bb.disk().data() + sector * 512, data.data(), n), 0)
                << sectors << "@" << misalign;
            const std::size_t read_misalign = (misalign * 7 + 5) % 64;
            ASSERT_EQ(io(bf->read(sector, at(dst, read_misalign, n))), Error::ok);
            ASSERT_EQ(std::memcmp(dst.data() + read_misalign, data.data(), n), 0)
                << sectors << "@" << misalign;
            // Nothing outside the span was touched.
            for (std::size_t i = 0; i < read_misalign; ++i) ASSERT_EQ(dst[i], std::byte{0x5A});
            for (std::size_t i = read_misalign + n; i < dst.size(); ++i) ASSERT_EQ(dst[i], std::byte{0x5A});
        }
    }
    const auto s = bf->stats();
    EXPECT_EQ(s.reads, std::size(sizes) * 4);
    EXPECT_EQ(s.writes, std::size(sizes) * 4);
    EXPECT_EQ(s.errors, 0u);
    EXPECT_EQ(s.sectors_written, s.sectors_read);
    EXPECT_EQ(s.sectors_written, bb.sectors_written);
}

TEST_F(BlkfrontTest, LargeTransfersSplitIntoRequestsOfElevenSegments) {
    DiskConfig c = big_disk();
    c.max_indirect_segments = 0;
    make_connected(c);
    const auto data = pattern(100 * 4096, 1);
    ASSERT_EQ(io(bf->write(8, data)), Error::ok);
    EXPECT_EQ(bb.writes, 10u);  // 100 pages: 9 x 11 + 1
    EXPECT_EQ(bb.max_segments, 11u);
    EXPECT_EQ(bb.indirect, 0u);
    std::vector<std::byte> back(data.size());
    ASSERT_EQ(io(bf->read(8, back)), Error::ok);
    EXPECT_EQ(back, data);
    EXPECT_EQ(bf->stats().requests, 20u);
    EXPECT_EQ(bf->stats().indirect_requests, 0u);
}

TEST_F(BlkfrontTest, LargeTransfersUseIndirectRequests) {
    make(big_disk());  // offers 256 indirect segments; we use up to 64
    connect();
    ASSERT_TRUE(bf->features().indirect);
    const auto data = pattern(65 * 4096, 2);
    ASSERT_EQ(io(bf->write(16, data)), Error::ok);
    EXPECT_EQ(bb.writes, 2u);  // 64 pages indirect, then 1 page direct
    EXPECT_EQ(bb.indirect, 1u);
    EXPECT_EQ(bb.max_segments, 64u);
    std::vector<std::byte> back(data.size());
    ASSERT_EQ(io(bf->read(16, back)), Error::ok);
    EXPECT_EQ(back, data);
    EXPECT_EQ(bf->stats().indirect_requests, 2u);
    // Requests of up to 11 segments stay direct.
    ASSERT_EQ(io(bf->write(0, std::span<const std::byte>(data).first(11 * 4096))), Error::ok);
    EXPECT_EQ(bf->stats().indirect_requests, 2u);
}

TEST_F(BlkfrontTest, FourKilobyteSectorsAreAddressedIn512ByteUnitsOnTheRing) {
    DiskConfig c;
    c.sector_size = 4096;
    make_connected(c);
    const auto data = pattern(2 * 4096, 3);
    ASSERT_EQ(io(bf->write(3, data)), Error::ok);
    EXPECT_EQ(bb.last_sector, 24u);
    EXPECT_EQ(std::memcmp(bb.disk().data() + 3 * 4096, data.data(), data.size()), 0);
    std::vector<std::byte> back(data.size());
    ASSERT_EQ(io(bf->read(3, back)), Error::ok);
    EXPECT_EQ(back, data);
    std::vector<std::byte> half(512);
    EXPECT_EQ(io(bf->read(0, half)), Error::invalid_argument);
    EXPECT_EQ(io(bf->read(255, std::span<std::byte>(back).first(4096))), Error::ok);
    EXPECT_EQ(io(bf->read(255, back)), Error::invalid_argument) << "past the 256th sector";
}

TEST_F(BlkfrontTest, ArgumentsAreChecked) {
    make();  // 2048 sectors
    connect();
    std::vector<std::byte> two(1024), odd(100), none;
    EXPECT_EQ(io(bf->read(2047, two)), Error::invalid_argument);
    EXPECT_EQ(io(bf->write(2047, two)), Error::invalid_argument);
    EXPECT_EQ(io(bf->read(2046, two)), Error::ok);
    EXPECT_EQ(io(bf->read(0, odd)), Error::invalid_argument);
    EXPECT_EQ(io(bf->read(~0ull, two)), Error::invalid_argument);
    EXPECT_EQ(io(bf->read(2048, none)), Error::ok);
    EXPECT_EQ(io(bf->read(2049, none)), Error::invalid_argument);
    EXPECT_EQ(io(bf->discard(2000, 49)), Error::invalid_argument);
    EXPECT_EQ(io(bf->discard(~0ull, 2)), Error::invalid_argument);
    EXPECT_EQ(bf->stats().errors, 7u);
    EXPECT_EQ(bb.requests, 1u) << "only the valid read reached the backend";
}

TEST_F(BlkfrontTest, ReadOnlyDiskRefusesWritesAndDiscards) {
    DiskConfig c;
    c.info = VDISK_READONLY;
    make_connected(c);
    bb.disk()[0] = std::byte{0x42};
    std::vector<std::byte> buf(512);
    EXPECT_EQ(io(bf->write(0, buf)), Error::permission);
    EXPECT_EQ(io(bf->write(1, buf)), Error::permission);
    EXPECT_EQ(io(bf->discard(0, 1)), Error::permission);
    EXPECT_TRUE(logged("write refused: the disk is read-only"));
    std::size_t lines = 0;
    for (const auto& l : log.lines) lines += l.find("refused") != std::string::npos;
    EXPECT_EQ(lines, 1u) << "logged once, then counted";
    EXPECT_EQ(bf->stats().refused_read_only, 3u);
    EXPECT_EQ(io(bf->read(0, buf)), Error::ok);
    EXPECT_EQ(buf[0], std::byte{0x42});
    EXPECT_EQ(io(bf->flush()), Error::ok);
    EXPECT_EQ(bb.writes + bb.discards + bb.flushes, 0u);
}

TEST_F(BlkfrontTest, FlushUsesFlushDiskcache) {
    make_connected();
    std::vector<std::byte> buf(4096);
    ASSERT_EQ(io(bf->write(0, buf)), Error::ok);
    EXPECT_EQ(io(bf->flush()), Error::ok);
    EXPECT_EQ(bb.flushes, 1u);
    EXPECT_EQ(bb.barriers, 0u);
    EXPECT_EQ(bf->stats().flushes, 1u);
}

TEST_F(BlkfrontTest, FlushFallsBackToABarrier) {
    DiskConfig c;
    c.flush_cache = false;
    c.barrier = true;
    make_connected(c);
    EXPECT_EQ(io(bf->flush()), Error::ok);
    EXPECT_EQ(bb.barriers, 1u);
    EXPECT_EQ(bb.flushes, 0u);
}

TEST_F(BlkfrontTest, FlushWithoutTheFeatureCompletesAtOnce) {
    DiskConfig c;
    c.flush_cache = false;
    make_connected(c);
    EXPECT_EQ(io(bf->flush()), Error::ok);
    EXPECT_EQ(bb.requests, 0u);
    EXPECT_EQ(bf->stats().flushes, 1u);
}

TEST_F(BlkfrontTest, AFlushTheBackendRefusesSaysNotSupported) {
    make_connected();
    bb.misbehave(FakeBlkback::Fault::eopnotsupp);
    EXPECT_EQ(io(bf->flush()), Error::not_supported);
    EXPECT_EQ(bf->stats().not_supported, 1u);
    EXPECT_TRUE(bf->geometry().flush) << "still offered: the next flush asks again";
    EXPECT_EQ(io(bf->flush()), Error::ok);
    EXPECT_EQ(bf->stats().resets, 0u);
}

TEST_F(BlkfrontTest, DiscardReachesTheBackend) {
    make_connected();
    const auto data = pattern(8 * 512, 4);
    ASSERT_EQ(io(bf->write(0, data)), Error::ok);
    EXPECT_EQ(io(bf->discard(2, 4)), Error::ok);
    EXPECT_EQ(bb.discards, 1u);
    for (std::size_t i = 2 * 512; i < 6 * 512; ++i) ASSERT_EQ(bb.disk()[i], std::byte{0}) << i;
    EXPECT_EQ(bb.disk()[6 * 512], data[6 * 512]);
    EXPECT_EQ(io(bf->discard(0, 0)), Error::ok);
    EXPECT_EQ(bb.discards, 1u);
    EXPECT_EQ(bf->stats().discards, 2u);
}

TEST_F(BlkfrontTest, DiscardWithoutTheFeatureIsNotSupported) {
    DiskConfig c;
    c.discard = false;
    make_connected(c);
    EXPECT_EQ(io(bf->discard(0, 8)), Error::not_supported);
    EXPECT_EQ(bb.requests, 0u);
}

TEST_F(BlkfrontTest, ADiscardTheBackendRefusesTurnsDiscardOff) {
    make_connected();
    bb.misbehave(FakeBlkback::Fault::eopnotsupp);
    EXPECT_EQ(io(bf->discard(0, 8)), Error::not_supported);
    EXPECT_FALSE(bf->geometry().discard);
    EXPECT_EQ(io(bf->discard(0, 8)), Error::not_supported);
    EXPECT_EQ(bb.requests, 1u);
    EXPECT_EQ(bf->stats().resets, 0u);
}

TEST_F(BlkfrontTest, BackendErrorsFailTheCallWithIo) {
    make_connected();
    bb.misbehave(FakeBlkback::Fault::status_error);
    std::vector<std::byte> buf(4096);
    EXPECT_EQ(io(bf->read(0, buf)), Error::io);
    EXPECT_EQ(bf->stats().backend_error, 1u);
    EXPECT_EQ(io(bf->read(0, buf)), Error::ok);
    EXPECT_EQ(bf->stats().resets, 0u);
}

TEST_F(BlkfrontTest, CallsWaitForAFullRingInsteadOfFailing) {
    DiskConfig c = big_disk();
    c.max_ring_page_order = -1;  // 32 slots
    make_connected(c);
    bb.hold = true;
    constexpr int calls = 40;
    std::vector<std::vector<std::byte>> data;
    Error results[calls];
    int done = 0;
    for (int i = 0; i < calls; ++i) data.push_back(pattern(4096, 100 + i));
    for (int i = 0; i < calls; ++i) spawn(store(bf->write(i * 8, data[i]), results[i], done));
    settle();
    EXPECT_EQ(bb.held(), 32u) << "the ring is full";
    EXPECT_EQ(done, 0);
    EXPECT_EQ(bf->stats().waits, 8u);
    bb.hold = false;
    bb.release();
    ASSERT_TRUE(run_until([&] { return done == calls; }));
    for (int i = 0; i < calls; ++i) {
        EXPECT_EQ(results[i], Error::ok);
        EXPECT_EQ(std::memcmp(bb.disk().data() + i * 4096, data[i].data(), 4096), 0) << i;
    }
    EXPECT_EQ(bb.max_in_flight, 32u);
}

TEST_F(BlkfrontTest, CallsWaitForPagesInsteadOfFailing) {
    blkfront::Options o;
    o.data_pages = 16;
    make_connected(big_disk(), o);
    bb.hold = true;
    std::vector<std::vector<std::byte>> data;
    Error results[5];
    int done = 0;
    for (int i = 0; i < 5; ++i) data.push_back(pattern(8 * 4096, 200 + i));
    for (int i = 0; i < 5; ++i) spawn(store(bf->write(i * 64, data[i]), results[i], done));
    settle();
    EXPECT_EQ(bb.held(), 2u) << "16 pages: two calls of 8";
    EXPECT_EQ(bb.max_pages_held, 16u);
    bb.hold = false;
    bb.release();
    ASSERT_TRUE(run_until([&] { return done == 5; }));
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(results[i], Error::ok);
        EXPECT_EQ(std::memcmp(bb.disk().data() + i * 64 * 512, data[i].data(), data[i].size()), 0) << i;
    }
    EXPECT_LE(bb.max_pages_held, 16u);
}

TEST_F(BlkfrontTest, WaitingCallsAreServedInOrder) {
    blkfront::Options o;
    o.data_pages = 16;
    o.max_indirect_segments = 0;
    make_connected(big_disk(), o);
    bb.hold = true;
    const auto ten = pattern(10 * 4096, 1), eleven = pattern(11 * 4096, 2), one = pattern(4096, 3);
    Error r1 = Error::cancelled, r2 = Error::cancelled, r3 = Error::cancelled;
    int done = 0;
    spawn(store(bf->write(0, ten), r1, done));
    spawn(store(bf->write(100, eleven), r2, done));  // 6 pages free: waits
    spawn(store(bf->write(200, one), r3, done));     // would fit, but waits behind it
    settle();
    EXPECT_EQ(bb.held(), 1u);
    bb.hold = false;
    bb.release();
    ASSERT_TRUE(run_until([&] { return done == 3; }));
    EXPECT_EQ(r1, Error::ok);
    EXPECT_EQ(r2, Error::ok);
    EXPECT_EQ(r3, Error::ok);
}

Task<void> mixed_io(Blkfront& b, unsigned seed, int rounds, int& failures, int& done) {
    std::vector<std::byte> out, in;
    for (int i = 0; i < rounds; ++i) {
        const std::size_t sectors = 1 + (seed * 31 + i * 17) % 150;
        out = pattern(sectors * 512 + 3, seed + i);
        in.assign(sectors * 512 + 5, std::byte{0});
        // Each task keeps to its own 1024 sectors, so what it reads back is what it wrote.
        const std::uint64_t mine = seed * 1024 + (i % 4) * 160;
        if (!(co_await b.write(mine, std::span<const std::byte>(out).subspan(3, sectors * 512)))) ++failures;
        if (!(co_await b.read(mine, std::span<std::byte>(in).subspan(5, sectors * 512)))) ++failures;
        if (std::memcmp(in.data() + 5, out.data() + 3, sectors * 512) != 0) ++failures;
    }
    ++done;
}

TEST_F(BlkfrontTest, ConcurrentCallsReuseThePersistentGrants) {
    make_connected(big_disk());
    const auto granted = grants.stats().grants;
    int failures = 0, done = 0;
    for (unsigned t = 0; t < 8; ++t) spawn(mixed_io(*bf, t, 40, failures, done));
    ASSERT_TRUE(run_until([&] { return done == 8; }));
    EXPECT_EQ(failures, 0);
    EXPECT_EQ(grants.stats().grants, granted) << "no grant per request";
    EXPECT_TRUE(bb.persistent());
    EXPECT_GT(bb.persistent_grants(), 0u);
    EXPECT_LE(bb.persistent_grants(), 256u + 22u);
    EXPECT_EQ(bf->stats().errors, 0u);
}

TEST_F(BlkfrontTest, WorksWithABackendWithoutPersistentGrants) {
    DiskConfig c = big_disk();
    c.persistent = false;
    make_connected(c);
    const auto granted = grants.stats().grants;
    int failures = 0, done = 0;
    for (unsigned t = 0; t < 4; ++t) spawn(mixed_io(*bf, t, 20, failures, done));
    ASSERT_TRUE(run_until([&] { return done == 4; }));
    EXPECT_EQ(failures, 0);
    EXPECT_EQ(grants.stats().grants, granted);
    EXPECT_EQ(bb.persistent_grants(), 0u);
}

Task<void> steady(Blkfront& b, std::span<std::byte> buf, int rounds, int& calls, bool& ok) {
    for (int i = 0; i < rounds; ++i) {
        const std::uint64_t sector = static_cast<std::uint64_t>(i % 64) * 32;
        if (!(co_await b.write(sector, buf))) ok = false;
        if (!(co_await b.read(sector, buf))) ok = false;
        calls += 2;
    }
    if (!(co_await b.flush())) ok = false;
    ++calls;
}

TEST_F(BlkfrontTest, SteadyStateAllocatesNothingButTheCallFrames) {
    make_connected(big_disk());
    std::vector<std::byte> buf = pattern(3 * 4096 + 1024, 7);  // 3.25 pages: 4 segments
    std::vector<std::byte> storage(buf.size() + 1);
    std::memcpy(storage.data() + 1, buf.data(), buf.size());
    std::span<std::byte> unaligned(storage.data() + 1, buf.size());
    int calls = 0;
    bool ok = true;
    bool finished = false;
    Task<void> t = steady(*bf, unaligned, 5000, calls, ok);
    data_only = true;
    std::size_t allocations = 0;
    {
        AllocationCounter counter;
        spawn([](Task<void> inner, bool& fin) -> Task<void> {
            co_await std::move(inner);
            fin = true;
        }(std::move(t), finished));
        for (int i = 0; i < 1000000 && !finished; ++i) loop.run_once(true);
        allocations = counter.count();
    }
    data_only = false;
    ASSERT_TRUE(finished);
    EXPECT_TRUE(ok);
    EXPECT_EQ(calls, 10001);
    // One coroutine frame per block call (the API returns a Task), plus the wrapper task above:
    // the driver, the ring and the waits allocate nothing.
    EXPECT_EQ(allocations, static_cast<std::size_t>(calls) + 1);
    EXPECT_EQ(std::memcmp(bb.disk().data() + 63 * 32 * 512, buf.data(), buf.size()), 0);
}

TEST_F(BlkfrontTest, ACancelledCallLeavesNoTrace) {
    make_connected();
    bb.hold = true;
    {
        std::vector<std::byte> doomed(8 * 4096);
        Task<Result<void>> t = bf->read(0, doomed);
        t.start();
        settle();
        ASSERT_EQ(bb.held(), 1u);
        t = Task<Result<void>>{};  // the caller gives up: its buffer goes away with it
    }
    bb.disk()[0] = std::byte{0x77};
    bb.hold = false;
    bb.release();
    settle();
    std::vector<std::byte> buf(512);
    EXPECT_EQ(io(bf->read(0, buf)), Error::ok);
    EXPECT_EQ(buf[0], std::byte{0x77});
    EXPECT_EQ(bf->stats().errors, 0u);
}

TEST_F(BlkfrontTest, ACancelledWaiterLeavesTheQueue) {
    blkfront::Options o;
    o.data_pages = 4;
    make_connected({}, o);
    bb.hold = true;
    std::vector<std::byte> a(4 * 4096), b(4 * 4096), c(4096);
    Error ra = Error::cancelled, rc = Error::cancelled;
    int done = 0;
    spawn(store(bf->write(0, a), ra, done));
    Task<Result<void>> waiting = bf->write(8, b);
    waiting.start();  // no pages left: it queues
    spawn(store(bf->write(16, c), rc, done));
    settle();
    EXPECT_EQ(bb.held(), 1u);
    waiting = Task<Result<void>>{};
    bb.hold = false;
    bb.release();
    ASSERT_TRUE(run_until([&] { return done == 2; }));
    EXPECT_EQ(ra, Error::ok);
    EXPECT_EQ(rc, Error::ok);
}

TEST_F(BlkfrontTest, TwoDisksAtOnce) {
    DiskConfig small;
    small.sectors512 = 1024;
    small.persistent = false;
    make(big_disk());
    make_second(small);
    connect(*bf);
    connect(*bf2);
    EXPECT_EQ(bf->geometry().sectors, 8192u);
    EXPECT_EQ(bf2->geometry().sectors, 1024u);
    EXPECT_EQ(bf2->name(), "device/vbd/51728");

    const auto x = pattern(20 * 4096, 1), y = pattern(20 * 4096, 2);
    Error r1 = Error::cancelled, r2 = Error::cancelled;
    int done = 0;
    spawn(store(bf->write(0, x), r1, done));
    spawn(store(bf2->write(0, y), r2, done));
    ASSERT_TRUE(run_until([&] { return done == 2; }));
    EXPECT_EQ(r1, Error::ok);
    EXPECT_EQ(r2, Error::ok);
    EXPECT_EQ(std::memcmp(bb.disk().data(), x.data(), x.size()), 0);
    EXPECT_EQ(std::memcmp(bb2.disk().data(), y.data(), y.size()), 0);

    ASSERT_TRUE(blkfront::register_device(*bf).ok());
    ASSERT_TRUE(blkfront::register_device(*bf2).ok());
    ASSERT_EQ(block::devices().size(), 2u);
    EXPECT_EQ(block::devices()[1]->name(), "device/vbd/51728");
    EXPECT_EQ(blkfront::blkfront_devices()[0], &*bf);
    std::vector<std::byte> back(4096);
    EXPECT_EQ(io(block::devices()[1]->read(0, back)), Error::ok);
    EXPECT_EQ(std::memcmp(back.data(), y.data(), 4096), 0);
    for (std::size_t i = 2; i < blkfront::max_attached; ++i) ASSERT_TRUE(blkfront::register_device(*bf).ok());
    EXPECT_EQ(blkfront::register_device(*bf).error(), Error::no_space);

    // One disk going away leaves the other alone.
    (void)run(bf2->close());
    settle();
    EXPECT_EQ(io(bf->read(0, back)), Error::ok);
    EXPECT_EQ(io(bf2->read(0, back)), Error::closed);
}

}  // namespace
}  // namespace keel::test

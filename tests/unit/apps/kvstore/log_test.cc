// The log on a FakeDisk: format, replay, group commit, torn writes at every byte and sector,
// flipped bits, stale records after a cut, compaction (also with writes during it), a crash at
// every device operation of a workload with compactions, failed writes, refused disks.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "rig.h"

namespace keel::kv::test {
namespace {

using namespace std::literals;

class LogTest : public KvTest {
protected:
    /// SET `key` `value` on `n` and commit it: the commit must succeed.
    void set_and_commit(Node& n, std::string_view key, std::string_view value) {
        n.exec({"SET", key, value});
        ASSERT_TRUE(commit(n).ok());
    }
};

std::string value_of(const Store& s, std::string_view k) {
    const Entry* e = s.peek(k);
    return e ? std::string(e->value()) : "(absent)";
}

TEST_F(LogTest, FormatsABlankDiskAndBumpsTheEpochOnEveryOpen) {
    FakeDisk disk(512);
    {
        Node n(disk, small_log_options());
        const ReplayReport r = open(n);
        EXPECT_TRUE(r.formatted);
        EXPECT_EQ(r.records, 0u);
        EXPECT_EQ(r.end_offset, 0u);
        EXPECT_EQ(r.end, ReplayEnd::clean);
        EXPECT_EQ(r.epoch, 2u);
        EXPECT_EQ(r.region, 0u);
    }
    Node n(disk, small_log_options());
    const ReplayReport r = open(n);
    EXPECT_FALSE(r.formatted);
    EXPECT_EQ(r.epoch, 3u);
    EXPECT_TRUE(n.log.ready());
}

TEST_F(LogTest, ReplaysEveryKindOfChange) {
    FakeDisk disk(512);
    std::map<std::string, std::string> want;
    {
        Node n(disk, small_log_options());
        open(n);
        EXPECT_EQ(n.exec({"SET", "gone", "x"}), "+OK\r\n");
        EXPECT_EQ(n.exec({"FLUSHALL"}), "+OK\r\n");
        EXPECT_EQ(n.exec({"SET", "a", "1"}), "+OK\r\n");
        EXPECT_EQ(n.exec({"MSET", "b", "2", "c", "3", "bin", "\0\r\n"sv}), "+OK\r\n");
        EXPECT_EQ(n.exec({"DEL", "c", "nothing"}), ":1\r\n");
        EXPECT_EQ(n.exec({"INCR", "a"}), ":2\r\n");
        EXPECT_EQ(n.exec({"SET", "t", "soon", "EX", "10"}), "+OK\r\n");
        EXPECT_EQ(n.exec({"SET", "u", "later", "EX", "1000"}), "+OK\r\n");
        EXPECT_EQ(n.exec({"SET", "e", "", "KEEPTTL"}), "+OK\r\n");
        EXPECT_EQ(n.log.appended_lsn(), 9u);  // DEL: one record; the NX-less SETs: one each
        ASSERT_TRUE(commit(n).ok());
        EXPECT_EQ(n.log.durable_lsn(), 9u);
    }
    Node n(disk, small_log_options(), wall_t0 + 60'000'000'000ull);  // a minute later
    const ReplayReport r = open(n);
    EXPECT_EQ(r.records, 9u);
    EXPECT_EQ(r.end, ReplayEnd::clean);
    EXPECT_EQ(value_of(n.store, "gone"), "(absent)");
    EXPECT_EQ(value_of(n.store, "a"), "2");
    EXPECT_EQ(value_of(n.store, "b"), "2");
    EXPECT_EQ(value_of(n.store, "c"), "(absent)");
    EXPECT_EQ(value_of(n.store, "bin"), "\0\r\n"sv);
    EXPECT_EQ(value_of(n.store, "t"), "(absent)");  // expired while the server was down
    EXPECT_EQ(value_of(n.store, "u"), "later");
    EXPECT_EQ(n.store.peek("u")->expire_ns(), wall_t0 + 1000'000'000'000ull);
    EXPECT_EQ(value_of(n.store, "e"), "");
    EXPECT_EQ(n.store.size(), 5u);
}

TEST_F(LogTest, OnlyCommittedRecordsSurviveACrash) {
    FakeDisk disk(512);
    Node n(disk, small_log_options());
    open(n);
    ASSERT_NO_FATAL_FAILURE(set_and_commit(n, "a", "1"));
    n.exec({"SET", "b", "2"});  // appended, never committed
    Expect e;
    e.issue("a", "1");
    e.ack("a");
    e.keys["b"];
    reopen_and_check(disk.durable, e, "after the crash");
    EXPECT_TRUE(disk.unflushed.empty());
}

TEST_F(LogTest, GroupCommitSharesWriteAndFlush) {
    FakeDisk disk(1024);
    disk.latency_ns = 100'000;
    Node n(disk, small_log_options());
    open(n);
    const std::uint64_t flushes_before = disk.flushes;
    int done = 0;
    auto client = [&](int i) -> Task<void> {
        const std::string k = "k" + std::to_string(i);
        n.exec({"SET", k, "v"});
        auto r = co_await n.log.commit(n.log.appended_lsn());
        EXPECT_TRUE(r.ok());
        ++done;
    };
    for (int i = 0; i < 50; ++i) spawn(client(i));
    ASSERT_TRUE(run_until([&] { return done == 50; }));
    // The first client's round is in flight while the other 49 append: they share round two.
    EXPECT_LE(disk.flushes - flushes_before, 2u);
    EXPECT_EQ(n.log.durable_lsn(), 50u);
    EXPECT_EQ(n.log.stats().commits, disk.flushes - flushes_before);
    Expect e;
    for (int i = 0; i < 50; ++i) {
        e.issue("k" + std::to_string(i), "v");
        e.ack("k" + std::to_string(i));
    }
    reopen_and_check(disk.durable, e, "after group commit");
}

// The last write (one record crossing sectors) torn after every byte: replay keeps everything
// before it, takes the record only when all of it arrived, and later appends go right there.
TEST_F(LogTest, TornLastRecordAtEveryByte) {
    FakeDisk disk(512);
    Node n(disk, small_log_options());
    open(n);
    auto value = [](int i) { return std::string(100 + i * 37, static_cast<char>('a' + i)); };
    for (int i = 0; i < 5; ++i) {
        n.exec({"SET", "k" + std::to_string(i), value(i)});
        ASSERT_TRUE(commit(n).ok());
    }
    const Image base = disk.durable;  // everything flushed: the disk before the last write
    const std::uint64_t end_before = n.log.stats().log_bytes;
    std::optional<DiskWrite> last;
    disk.before_op = [&](const FakeDisk::Op& op) {
        if (op.kind == FakeDisk::OpKind::write && !last) last = *op.write;
    };
    const std::string big(900, 'z');
    n.exec({"SET", "big", big});
    ASSERT_TRUE(commit(n).ok());
    ASSERT_TRUE(last.has_value());
    ASSERT_GE(last->data.size(), 1024u);  // the record crosses a sector boundary
    const std::uint64_t end_after = n.log.stats().log_bytes;
    const std::uint64_t rec_end_in_write = end_after - end_before / 512 * 512;

    for (std::size_t b = 0; b <= last->data.size(); ++b) {
        FakeDisk d(apply(base, {torn(*last, b)}, 512), 512);
        Node m(d, small_log_options());
        auto r = run(m.log.open(m.now_ns));
        ASSERT_TRUE(r.ok()) << "torn at " << b << ": " << m.log.failure();
        const bool whole = b >= rec_end_in_write;
        ASSERT_EQ(r.value().records, whole ? 6u : 5u) << "torn at " << b;
        ASSERT_EQ(r.value().end_offset, whole ? end_after : end_before) << "torn at " << b;
        ASSERT_EQ(value_of(m.store, "big"), whole ? big : "(absent)") << "torn at " << b;
        for (int i = 0; i < 5; ++i) ASSERT_EQ(value_of(m.store, "k" + std::to_string(i)), value(i));
        // The next append lands at the cut and replays cleanly after another crash.
        m.exec({"SET", "after", std::to_string(b)});
        ASSERT_TRUE(commit(m).ok());
        FakeDisk d2(d.durable, 512);
        Node m2(d2, small_log_options());
        auto r2 = run(m2.log.open(m2.now_ns));
        ASSERT_TRUE(r2.ok());
        ASSERT_EQ(r2.value().records, r.value().records + 1) << "torn at " << b;
        ASSERT_EQ(value_of(m2.store, "after"), std::to_string(b)) << "torn at " << b;
        ASSERT_EQ(value_of(m2.store, "big"), whole ? big : "(absent)") << "torn at " << b;
    }
}

// A multi-sector write of which only some sectors arrived (any order is possible on a disk).
TEST_F(LogTest, TornLastWriteInAnySector) {
    FakeDisk disk(512);
    Node n(disk, small_log_options());
    open(n);
    ASSERT_NO_FATAL_FAILURE(set_and_commit(n, "first", "1"));
    const Image base = disk.durable;
    std::optional<DiskWrite> last;
    disk.before_op = [&](const FakeDisk::Op& op) {
        if (op.kind == FakeDisk::OpKind::write && !last) last = *op.write;
    };
    // Three records in one write: they replay in order, up to the first missing piece.
    n.exec({"SET", "a", std::string(400, 'a')});
    n.exec({"SET", "b", std::string(400, 'b')});
    n.exec({"SET", "c", std::string(400, 'c')});
    ASSERT_TRUE(commit(n).ok());
    ASSERT_TRUE(last.has_value());
    const std::size_t sectors = last->data.size() / 512;
    ASSERT_GE(sectors, 3u);
    auto check = [&](std::vector<DiskWrite> pieces, const std::string& what) {
        FakeDisk d(apply(base, pieces, 512), 512);
        Node m(d, small_log_options());
        auto r = run(m.log.open(m.now_ns));
        ASSERT_TRUE(r.ok()) << what;
        EXPECT_EQ(value_of(m.store, "first"), "1") << what;
        // Prefix property: b only with a, c only with b.
        const bool a = m.store.peek("a") != nullptr, b = m.store.peek("b") != nullptr,
                   c = m.store.peek("c") != nullptr;
        EXPECT_TRUE((!b || a) && (!c || b)) << what;
        if (a) {
            EXPECT_EQ(value_of(m.store, "a"), std::string(400, 'a')) << what;
        }
        if (b) {
            EXPECT_EQ(value_of(m.store, "b"), std::string(400, 'b')) << what;
        }
        if (c) {
            EXPECT_EQ(value_of(m.store, "c"), std::string(400, 'c')) << what;
        }
    };
    for (std::size_t s = 0; s < sectors; ++s) {
        DiskWrite only{
            last->sector + s,
            std::vector<std::byte>(last->data.begin() + static_cast<std::ptrdiff_t>(s * 512),
                                   last->data.begin() + static_cast<std::ptrdiff_t>((s + 1) * 512))};
        check({only}, "only sector " + std::to_string(s));
        std::vector<DiskWrite> all_but;
        for (std::size_t k = 0; k < sectors; ++k) {
            if (k == s) continue;
            all_but.push_back(DiskWrite{
                last->sector + k,
                std::vector<std::byte>(last->data.begin() + static_cast<std::ptrdiff_t>(k * 512),
                                       last->data.begin() + static_cast<std::ptrdiff_t>((k + 1) * 512))});
        }
        check(all_but, "all but sector " + std::to_string(s));
    }
}

TEST_F(LogTest, FlippedBitsStopReplayAtTheDamagedRecord) {
    FakeDisk disk(512);
    Node n(disk, small_log_options());
    open(n);
    std::vector<std::uint64_t> ends;  // log offset after each record
    for (int i = 0; i < 4; ++i) {
        n.exec({"SET", "k" + std::to_string(i), std::string(40, static_cast<char>('0' + i))});
        ASSERT_TRUE(commit(n).ok());
        ends.push_back(n.log.stats().log_bytes);
    }
    const Image good = disk.durable;
    const std::uint64_t region0 = 2 * 512;  // first byte of region 0
    for (std::uint64_t bit = 0; bit < ends.back() * 8; ++bit) {
        Image img = good;
        img[region0 + bit / 8] ^= static_cast<std::byte>(1u << (bit % 8));
        FakeDisk d(img, 512);
        Node m(d, small_log_options());
        auto r = run(m.log.open(m.now_ns));
        ASSERT_TRUE(r.ok()) << "bit " << bit;
        std::size_t damaged = 0;
        while (bit / 8 >= ends[damaged]) ++damaged;
        ASSERT_EQ(r.value().records, damaged) << "bit " << bit;
        ASSERT_EQ(r.value().end_offset, damaged == 0 ? 0 : ends[damaged - 1]) << "bit " << bit;
        ASSERT_NE(r.value().end, ReplayEnd::clean) << "bit " << bit;
        for (std::size_t i = 0; i < 4; ++i) {
            ASSERT_EQ(m.store.peek("k" + std::to_string(i)) != nullptr, i < damaged) << "bit " << bit;
        }
    }
}

// Leftovers of a torn write, valid in themselves, that follow the cut must never come back
// once later appends have filled the gap up to them: they carry an older epoch.
TEST_F(LogTest, StaleRecordsBehindTheCutStayDead) {
    FakeDisk disk(512);
    Node n(disk, small_log_options());
    open(n);
    ASSERT_NO_FATAL_FAILURE(set_and_commit(n, "base", "0"));  // 16 + 17 + 4 + 1 = 38 bytes
    ASSERT_EQ(n.log.stats().log_bytes, 38u);
    const Image base = disk.durable;
    std::optional<DiskWrite> last;
    disk.before_op = [&](const FakeDisk::Op& op) {
        if (op.kind == FakeDisk::OpKind::write && !last) last = *op.write;
    };
    // "k" ends exactly on a sector boundary; "stale" fills the start of the next sector. The
    // crash keeps only that sector.
    n.exec({"SET", "k", std::string(952, 'x')});
    ASSERT_EQ(n.log.stats().log_bytes, 1024u);
    n.exec({"SET", "stale", std::string(100, 'y')});
    ASSERT_TRUE(commit(n).ok());
    ASSERT_EQ(last->data.size(), 3 * 512u);
    const DiskWrite third{last->sector + 2,
                          std::vector<std::byte>(last->data.begin() + 1024, last->data.end())};
    FakeDisk d(apply(base, {third}, 512), 512);
    {
        Node m(d, small_log_options());
        const ReplayReport r = open(m);
        EXPECT_EQ(r.records, 1u);
        EXPECT_EQ(r.end_offset, 38u);
        EXPECT_EQ(value_of(m.store, "stale"), "(absent)");
        // A record of the same size: it ends right where the stale one starts.
        m.exec({"SET", "k", std::string(952, 'n')});
        ASSERT_TRUE(commit(m).ok());
    }
    Node m(d, small_log_options());
    const ReplayReport r = open(m);
    EXPECT_EQ(r.records, 2u);
    EXPECT_EQ(r.end, ReplayEnd::stale);
    EXPECT_EQ(r.end_offset, 1024u);
    EXPECT_EQ(value_of(m.store, "k"), std::string(952, 'n'));
    EXPECT_EQ(value_of(m.store, "stale"), "(absent)");
}

TEST_F(LogTest, CompactionShrinksTheLogAndKeepsTheData) {
    FakeDisk disk(512);
    Node n(disk, small_log_options());
    open(n);
    for (int round = 0; round < 30; ++round) {
        for (int k = 0; k < 10; ++k)
            n.exec({"SET", "k" + std::to_string(k), "round " + std::to_string(round)});
        ASSERT_TRUE(commit(n).ok());
    }
    n.exec({"SET", "ttl", "v", "EX", "100"});
    n.exec({"SET", "dead", "v", "PX", "1"});
    n.exec({"DEL", "k9"});
    ASSERT_TRUE(commit(n).ok());
    const LogStats before = n.log.stats();
    EXPECT_TRUE(n.log.wants_compaction());
    n.now_ns += 2'000'000;  // "dead" expired: the snapshot leaves it out
    ASSERT_TRUE(run(n.log.compact(n.now_ns)).ok());
    const LogStats after = n.log.stats();
    EXPECT_EQ(after.region, 1u);
    EXPECT_EQ(after.compactions, 1u);
    EXPECT_LT(after.log_bytes * 10, before.log_bytes);
    EXPECT_EQ(after.epoch, before.epoch + 1);
    EXPECT_FALSE(n.log.wants_compaction());
    // Appends continue in the new region.
    ASSERT_NO_FATAL_FAILURE(set_and_commit(n, "new", "1"));

    Node m(disk, small_log_options(), n.now_ns);
    const ReplayReport r = open(m);
    EXPECT_EQ(r.region, 1u);
    for (int k = 0; k < 9; ++k) EXPECT_EQ(value_of(m.store, "k" + std::to_string(k)), "round 29");
    EXPECT_EQ(value_of(m.store, "k9"), "(absent)");
    EXPECT_EQ(value_of(m.store, "ttl"), "v");
    EXPECT_EQ(m.store.peek("ttl")->expire_ns(), wall_t0 + 100'000'000'000ull);
    EXPECT_EQ(value_of(m.store, "dead"), "(absent)");
    EXPECT_EQ(value_of(m.store, "new"), "1");
    EXPECT_EQ(m.store.size(), 11u);

    // And back into region 0, over the old log: its records must not come back.
    m.exec({"DEL", "k0"});
    ASSERT_TRUE(commit(m).ok());
    ASSERT_TRUE(run(m.log.compact(m.now_ns)).ok());
    EXPECT_EQ(m.log.stats().region, 0u);
    Node o(disk, small_log_options(), n.now_ns);
    const ReplayReport r2 = open(o);
    EXPECT_EQ(r2.region, 0u);
    EXPECT_EQ(value_of(o.store, "k0"), "(absent)");
    EXPECT_EQ(value_of(o.store, "k1"), "round 29");
    EXPECT_EQ(o.store.size(), 10u);
}

TEST_F(LogTest, AFullRegionRefusesWritesClearly) {
    FakeDisk disk(300);  // regions of 149 sectors: 74.5 KiB
    Node n(disk, small_log_options());
    open(n);
    std::string reply;
    int stored = 0;
    for (int i = 0; i < 20 && reply.empty(); ++i) {
        const std::string r = n.exec({"SET", "k" + std::to_string(i), std::string(7000, 'v')});
        if (r == "+OK\r\n") {
            ++stored;
        } else {
            reply = r;
        }
    }
    EXPECT_EQ(reply, "-ERR disk full: the append-only log has no room for this write\r\n");
    EXPECT_EQ(n.store.size(), static_cast<std::size_t>(stored));  // the refused write changed nothing
    EXPECT_FALSE(n.log.wants_compaction());  // live data is most of the region: it would not help
    ASSERT_TRUE(commit(n).ok());
    Node m(disk, small_log_options());
    open(m);
    EXPECT_EQ(m.store.size(), static_cast<std::size_t>(stored));
}

TEST_F(LogTest, AFullRegionOfGarbageAsksForCompaction) {
    FakeDisk disk(300);
    LogOptions o = small_log_options();
    o.compact_min_bytes = 1u << 30;  // only a full region triggers it here
    Node n(disk, o);
    open(n);
    std::string reply;
    for (int i = 0; i < 100 && reply.empty(); ++i) {
        const std::string r = n.exec({"SET", "same", std::string(3000, static_cast<char>('a' + i % 26))});
        if (r != "+OK\r\n") reply = r;
    }
    EXPECT_EQ(reply, "-ERR disk full: the append-only log has no room for this write\r\n");
    EXPECT_TRUE(n.log.wants_compaction());
    ASSERT_TRUE(commit(n).ok());
    ASSERT_TRUE(run(n.log.compact(n.now_ns)).ok());
    EXPECT_EQ(n.exec({"SET", "same", "small"}), "+OK\r\n");
    ASSERT_TRUE(commit(n).ok());
    Node m(disk, o);
    open(m);
    EXPECT_EQ(value_of(m.store, "same"), "small");
}

// Writers keep going while the snapshot is written; everything acknowledged is in the new log.
TEST_F(LogTest, WritesDuringCompactionSurvive) {
    FakeDisk disk(512);
    disk.latency_ns = 50'000;
    Node n(disk, small_log_options());
    open(n);
    Expect e;
    int done = 0;
    auto writer = [&](int id, int count) -> Task<void> {
        for (int i = 0; i < count; ++i) {
            const std::string k = "w" + std::to_string(id) + ":" + std::to_string(i % 7);
            const std::string v = std::string(60, static_cast<char>('a' + id)) + std::to_string(i);
            e.issue(k, v);
            n.exec({"SET", k, v});
            auto r = co_await n.log.commit(n.log.appended_lsn());
            EXPECT_TRUE(r.ok());
            e.ack(k);
        }
        ++done;
    };
    for (int id = 0; id < 3; ++id) spawn(writer(id, 80));
    ASSERT_TRUE(run_until([&] { return n.log.stats().log_bytes > 12 * 1024; }));
    std::optional<Result<void>> compacted;
    spawn(capture(n.log.compact(n.now_ns), compacted));
    ASSERT_TRUE(run_until([&] { return done == 3 && compacted.has_value(); }));
    ASSERT_TRUE(compacted->ok());
    EXPECT_EQ(n.log.stats().region, 1u);
    EXPECT_TRUE(e.check(n.store));
    reopen_and_check(disk.durable, e, "after compaction under load");
}

// The heart of it: a workload with concurrent writers and two compactions, and a crash
// before every single device operation (with unflushed writes dropped or kept, and the write
// about to start torn at several places). Whatever was acknowledged before the crash is there.
TEST_F(LogTest, CrashAtEveryStepKeepsAcknowledgedWrites) {
    FakeDisk disk(512);
    disk.latency_ns = 20'000;
    Node n(disk, small_log_options());
    open(n);
    Expect e;
    std::vector<CrashImage> images;
    disk.before_op = [&](const FakeDisk::Op& op) { capture_crash(images, disk, op, e); };
    int done = 0;
    auto writer = [&](int id, int count) -> Task<void> {
        for (int i = 0; i < count; ++i) {
            const std::string k = "w" + std::to_string(id) + ":" + std::to_string(i % 5);
            std::optional<std::string> v =
                std::string(50 + 10 * id, static_cast<char>('a' + id)) + std::to_string(i);
            if (i % 9 == 8) v.reset();  // a DEL now and then
            e.issue(k, v);
            if (v) {
                n.exec({"SET", k, *v});
            } else {
                n.exec({"DEL", k});
            }
            auto r = co_await n.log.commit(n.log.appended_lsn());
            EXPECT_TRUE(r.ok());
            e.ack(k);
        }
        ++done;
    };
    for (int id = 0; id < 3; ++id) spawn(writer(id, 150));
    for (int c = 0; c < 3; ++c) {
        ASSERT_TRUE(run_until([&] { return n.log.wants_compaction() || done == 3; }));
        if (done == 3) break;
        std::optional<Result<void>> compacted;
        spawn(capture(n.log.compact(n.now_ns), compacted));
        ASSERT_TRUE(run_until([&] { return compacted.has_value(); }));
        ASSERT_TRUE(compacted->ok());
    }
    ASSERT_TRUE(run_until([&] { return done == 3; }));
    EXPECT_GE(n.log.stats().compactions, 2u)
        << "log " << n.log.stats().log_bytes << " live " << n.log.stats().live_bytes << " ops " << disk.ops;
    disk.before_op = nullptr;
    images.push_back({disk.snapshot, disk.unflushed, e, "the end"});
    ASSERT_GT(images.size(), 1000u);
    ASSERT_FALSE(HasFailure());
    std::size_t checked = 0;
    for (const CrashImage& img : images) {
        const Image bytes = apply(*img.base, img.writes, 512);
        reopen_and_check(bytes, img.expect, img.what);
        if (HasFailure()) break;  // the first is enough to go on
        ++checked;
    }
    EXPECT_EQ(checked, images.size());
}

TEST_F(LogTest, AFailedWriteFailsTheLogAndRefusesWrites) {
    FakeDisk disk(512);
    Node n(disk, small_log_options());
    open(n);
    ASSERT_NO_FATAL_FAILURE(set_and_commit(n, "a", "1"));
    disk.fail_op = disk.ops;  // the next write
    n.exec({"SET", "b", "2"});
    EXPECT_EQ(commit(n).error(), Error::io);
    EXPECT_FALSE(n.log.ready());
    EXPECT_EQ(n.log.failed(), Error::io);
    EXPECT_NE(std::string(n.log.failure()).find("a log write failed"), std::string::npos);
    EXPECT_EQ(n.exec({"SET", "c", "3"}),
              "-ERR disk failed: the append-only log cannot be written (I/O error); writes are refused, reads are "
              "served from memory\r\n");
    EXPECT_EQ(n.exec({"GET", "a"}), "$1\r\n1\r\n");  // reads still run (their replies wait for commit)
    EXPECT_EQ(commit(n).error(), Error::io);
    Expect e;
    e.issue("a", "1");
    e.ack("a");
    e.issue("b", "2");  // unknown outcome
    e.keys["c"];
    reopen_and_check(disk.durable, e, "after the failure");
}

TEST_F(LogTest, ABlankReadOnlyDiskIsAClearError) {
    FakeDisk disk(512);
    disk.geo.read_only = true;
    Node n(disk, small_log_options());
    auto r = run(n.log.open(n.now_ns));
    EXPECT_EQ(r.error(), Error::permission);
    EXPECT_NE(std::string(n.log.failure()).find("blank and read-only"), std::string::npos) << n.log.failure();
    EXPECT_EQ(disk.writes, 0u);
    // A log that is not open refuses writes (the Server attaches it only once open).
    EXPECT_EQ(n.exec({"SET", "a", "1"}).substr(0, 16), "-ERR disk failed");
}

TEST_F(LogTest, AReadOnlyDiskIsServedAndNeverWritten) {
    FakeDisk disk(512);
    {
        Node n(disk, small_log_options());
        open(n);
        EXPECT_EQ(n.exec({"MSET", "a", "1", "b", "2"}), "+OK\r\n");
        ASSERT_TRUE(commit(n).ok());
    }
    const auto before = disk.durable;
    const auto writes = disk.writes;
    disk.geo.read_only = true;
    Node n(disk, small_log_options());
    const ReplayReport r = open(n);
    EXPECT_EQ(r.records, 1u);
    EXPECT_EQ(r.epoch, 2u) << "the epoch is not bumped: that would be a write";
    EXPECT_TRUE(n.log.read_only());
    EXPECT_EQ(n.exec({"GET", "b"}), "$1\r\n2\r\n");
    EXPECT_EQ(n.exec({"SET", "c", "3"}), "-READONLY the disk is read-only\r\n");
    EXPECT_EQ(n.exec({"DEL", "a"}), "-READONLY the disk is read-only\r\n");
    EXPECT_EQ(n.exec({"FLUSHALL"}), "-READONLY the disk is read-only\r\n");
    EXPECT_EQ(n.exec({"DBSIZE"}), ":2\r\n") << "refused changes left the data alone";
    EXPECT_FALSE(n.log.wants_compaction());
    EXPECT_EQ(run(n.log.compact(n.now_ns)).error(), Error::permission);
    EXPECT_EQ(disk.writes, writes);
    EXPECT_TRUE(disk.durable == before);
}

TEST_F(LogTest, RefusesDisksItCannotUse) {
    {
        FakeDisk disk(512);
        for (std::size_t i = 0; i < 1024; ++i)
            disk.durable[i] = disk.current[i] = static_cast<std::byte>(i * 7 + 1);
        Node n(disk, small_log_options());
        EXPECT_EQ(run(n.log.open(n.now_ns)).error(), Error::bad_input);
        EXPECT_NE(std::string(n.log.failure()).find("not a kvstore disk"), std::string::npos);
        EXPECT_EQ(disk.writes, 0u);  // never formats over data
    }
    {
        FakeDisk disk(512);
        LogOptions o = small_log_options();
        o.format_blank = false;
        Node n(disk, o);
        EXPECT_EQ(run(n.log.open(n.now_ns)).error(), Error::bad_input);
    }
    {
        FakeDisk disk(100);  // 50 KiB
        Node n(disk, small_log_options());
        EXPECT_EQ(run(n.log.open(n.now_ns)).error(), Error::no_space);
        EXPECT_NE(std::string(n.log.failure()).find("too small"), std::string::npos);
    }
    {
        FakeDisk disk(512);
        disk::Header h;
        h.epoch = h.base_epoch = 1;
        h.data_start = 2;
        h.region_sectors = 255;
        h.sector_size = 512;
        char bytes[disk::header_bytes];
        disk::encode_header(h, bytes);
        bytes[8] = 2;  // version 2
        std::memcpy(disk.durable.data(), bytes, sizeof(bytes));
        disk.current = disk.durable;
        Node n(disk, small_log_options());
        EXPECT_EQ(run(n.log.open(n.now_ns)).error(), Error::not_supported);
    }
    {
        FakeDisk disk(512, 4096);  // a log written with 512-byte sectors read on a 4096-byte disk
        disk::Header h;
        h.epoch = h.base_epoch = 1;
        h.data_start = 2;
        h.region_sectors = 100;
        h.sector_size = 512;
        disk::encode_header(h, reinterpret_cast<char*>(disk.durable.data()));
        disk.current = disk.durable;
        Node n(disk, small_log_options());
        EXPECT_EQ(run(n.log.open(n.now_ns)).error(), Error::not_supported);
    }
}

TEST_F(LogTest, WorksWith4096ByteSectors) {
    FakeDisk disk(64, 4096);
    Node n(disk, small_log_options());
    open(n);
    for (int i = 0; i < 50; ++i)
        n.exec({"SET", "k" + std::to_string(i % 5), std::string(300, 'x') + std::to_string(i)});
    ASSERT_TRUE(commit(n).ok());
    ASSERT_TRUE(run(n.log.compact(n.now_ns)).ok());
    ASSERT_NO_FATAL_FAILURE(set_and_commit(n, "z", "1"));
    FakeDisk d(disk.durable, 4096);
    Node m(d, small_log_options());
    open(m);
    EXPECT_EQ(value_of(m.store, "k4"), std::string(300, 'x') + "49");
    EXPECT_EQ(value_of(m.store, "z"), "1");
}

// A header write torn at every byte: the other copy carries on.
TEST_F(LogTest, TornHeaderWriteFallsBackToTheOtherCopy) {
    FakeDisk disk(512);
    {
        Node n(disk, small_log_options());
        open(n);
        ASSERT_NO_FATAL_FAILURE(set_and_commit(n, "a", "1"));
    }
    std::optional<DiskWrite> header_write;
    disk.before_op = [&](const FakeDisk::Op& op) {
        if (op.kind == FakeDisk::OpKind::write && op.write->sector < 2 && !header_write)
            header_write = *op.write;
    };
    const Image before = disk.durable;
    Node n(disk, small_log_options());
    open(n);  // writes the bumped header
    ASSERT_TRUE(header_write.has_value());
    Expect e;
    e.issue("a", "1");
    e.ack("a");
    for (std::size_t b = 0; b <= 512; b += (b < 80 ? 1 : 64)) {
        reopen_and_check(apply(before, {torn(*header_write, b)}, 512), e,
                         "header torn at " + std::to_string(b));
    }
}

TEST_F(LogTest, HeaderRoundTrip) {
    disk::Header h;
    h.epoch = 77;
    h.base_epoch = 70;
    h.log_id = 0x0123456789abcdefull;
    h.data_start = 2;
    h.region_sectors = 1000;
    h.sector_size = 4096;
    h.active_region = 1;
    char b[disk::header_bytes];
    disk::encode_header(h, b);
    disk::Header g;
    ASSERT_TRUE(disk::decode_header(b, g));
    EXPECT_EQ(g.epoch, 77u);
    EXPECT_EQ(g.base_epoch, 70u);
    EXPECT_EQ(g.log_id, h.log_id);
    EXPECT_EQ(g.region_sectors, 1000u);
    EXPECT_EQ(g.sector_size, 4096u);
    EXPECT_EQ(g.active_region, 1u);
    EXPECT_EQ(std::string_view(b, 8), "KEELKVLG");
    for (std::size_t i = 0; i < disk::header_bytes * 8; ++i) {
        char c[disk::header_bytes];
        std::memcpy(c, b, sizeof(c));
        c[i / 8] ^= static_cast<char>(1 << (i % 8));
        EXPECT_FALSE(disk::decode_header(c, g)) << "bit " << i;
    }
}

}  // namespace
}  // namespace keel::kv::test

// Test rig for the log: a loop with a virtual clock, an engine + log on a FakeDisk, a model of
// what was acknowledged, and crash images to reopen and check against that model.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fakes/fake_disk.h"
#include "fakes/fake_loop.h"
#include "kv/engine.h"
#include "kv/log.h"
#include "kv/store.h"

namespace keel::kv::test {

inline constexpr std::uint64_t wall_t0 = 1'700'000'000'000'000'000ull;  // Unix ns

/// Small enough to go through many crash images, big enough for several compactions.
inline LogOptions small_log_options() {
    LogOptions o;
    o.compact_min_bytes = 8 * 1024;
    o.io_chunk_bytes = 2048;
    o.format_id = 0x5eed;
    return o;
}

/// What clients were told, key by key: the last acknowledged state, and the one write in
/// flight (each key has one writer that waits for its acknowledgement).
struct Expect {
    struct Key {
        std::optional<std::string> acked;                   // nullopt: absent
        std::optional<std::optional<std::string>> pending;  // a write issued, not acknowledged
    };
    std::map<std::string, Key> keys;

    void issue(const std::string& k, std::optional<std::string> v) { keys[k].pending = std::move(v); }
    void ack(const std::string& k) {
        Key& e = keys[k];
        e.acked = *e.pending;
        e.pending.reset();
    }
    /// The store holds, for every key, its acknowledged state or its pending one; nothing else.
    ::testing::AssertionResult check(const Store& store) const {
        for (const auto& [k, e] : keys) {
            const Entry* en = store.peek(k);
            const std::optional<std::string> actual =
                en != nullptr ? std::optional<std::string>(std::string(en->value())) : std::nullopt;
            if (actual == e.acked) continue;
            if (e.pending.has_value() && actual == *e.pending) continue;
            return ::testing::AssertionFailure()
                   << "key " << k << ": found " << (actual ? *actual : "(absent)") << ", acknowledged "
                   << (e.acked ? *e.acked : "(absent)");
        }
        std::size_t unknown = 0;
        store.for_each([&](const Entry& en) { unknown += keys.count(std::string(en.key())) == 0 ? 1 : 0; });
        if (unknown != 0) return ::testing::AssertionFailure() << unknown << " keys nobody wrote";
        return ::testing::AssertionSuccess();
    }
};

/// A crash: a durable snapshot plus writes that reached the disk (some maybe torn).
struct CrashImage {
    std::shared_ptr<const Image> base;
    std::vector<DiskWrite> writes;
    Expect expect;
    std::string what;
};

/// run() a task to completion on the loop; a task frame that outlives the test fails it.
class KvTest : public keel::test::TaskLoopTest {
protected:
    /// A server on a disk: store, log, engine.
    struct Node {
        Node(block::Device& disk, const LogOptions& options, std::uint64_t now = wall_t0)
            : now_ns(now),
              log(disk, store, options),
              engine(store, &log, Clock([this] { return now_ns; }), Config{}) {}
        std::uint64_t now_ns;
        Store store;
        Log log;
        Engine engine;

        std::string exec(std::vector<std::string_view> args) {
            Bytes out;
            engine.execute(Args(args.data(), args.size()), out);
            return std::string(out.data(), out.size());
        }
    };

    /// Opens `node` (asserting success) and returns the replay report.
    ReplayReport open(Node& node) {
        auto r = run(node.log.open(node.now_ns));
        EXPECT_TRUE(r.ok()) << to_string(r.error()) << ": " << node.log.failure();
        return r.ok() ? r.value() : ReplayReport{};
    }

    Result<void> commit(Node& node) { return run(node.log.commit(node.log.appended_lsn())); }

    /// Boots a fresh node on `image` and checks it against `expect`. Returns the report.
    ReplayReport reopen_and_check(const Image& image, const Expect& expect, const std::string& what,
                                  const LogOptions& options = small_log_options()) {
        FakeDisk disk(image, 512);
        Node node(disk, options);
        auto r = run(node.log.open(node.now_ns));
        EXPECT_TRUE(r.ok()) << what << ": " << node.log.failure();
        EXPECT_TRUE(expect.check(node.store)) << what;
        return r.ok() ? r.value() : ReplayReport{};
    }

    /// Records what a crash at this point could leave on `disk`: only what is durable; that
    /// plus every completed write, or plus only the latest of them; and for a write about to
    /// start, durable + completed + each of a few torn prefixes of it (sector boundaries, odd
    /// bytes).
    void capture_crash(std::vector<CrashImage>& images, const FakeDisk& disk, const FakeDisk::Op& op,
                       const Expect& expect) {
        const std::string at = "op " + std::to_string(op.index);
        images.push_back({disk.snapshot, {}, expect, at + ": durable only"});
        if (!disk.unflushed.empty()) {
            images.push_back({disk.snapshot, disk.unflushed, expect, at + ": + completed"});
            // Unflushed writes reach the disk in any order: also the latest one without the others.
            if (disk.unflushed.size() > 1) {
                images.push_back(
                    {disk.snapshot, {disk.unflushed.back()}, expect, at + ": + the latest completed only"});
            }
        }
        if (op.kind != FakeDisk::OpKind::write) return;
        const std::size_t n = op.write->data.size();
        std::vector<std::size_t> cuts = {1, 17, 200};
        for (std::size_t b = 512; b < n; b += 512) {
            cuts.push_back(b);
            cuts.push_back(b + 3);
        }
        cuts.push_back(n - 1);
        for (std::size_t b : cuts) {
            if (b == 0 || b >= n) continue;
            std::vector<DiskWrite> w = disk.unflushed;
            w.push_back(torn(*op.write, b));
            images.push_back({disk.snapshot, std::move(w), expect, at + ": torn at " + std::to_string(b)});
        }
        std::vector<DiskWrite> all = disk.unflushed;
        all.push_back(*op.write);
        images.push_back({disk.snapshot, std::move(all), expect, at + ": + this write"});
    }
};

}  // namespace keel::kv::test

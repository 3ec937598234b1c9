// libFuzzer writes kvstore's disk and kvstore reads it at startup: a log is formatted on an
// in-memory disk and some SETs and DELs (from the input) are acknowledged, some more completed
// but never flushed; then the input damages the image, and a fresh Log opens and replays it.
//   - Damage anywhere (headers, records, both regions): open either refuses with an error and
//     a failure() sentence, or replays; it never crashes, and a replayed log takes a new write.
//   - Damage only to sectors the acknowledged log never wrote (the tail, the other region):
//     open must succeed and every acknowledged key must read back as acknowledged -- a torn or
//     forged record after the end is cut off, never accepted in place of data.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fakes/fake_disk.h"
#include "fakes/fake_loop.h"
#include "fuzz_support.h"
#include "kv/engine.h"
#include "kv/log.h"
#include "kv/store.h"

namespace keel::kv::test {
namespace {

constexpr std::uint32_t ss = 512;
constexpr std::uint64_t sectors = 512;
constexpr std::uint64_t now = 1'700'000'000'000'000'000ull;

using keel::fuzz::Input;

LogOptions options() {
    LogOptions o;
    o.compact_min_bytes = 4096;
    o.io_chunk_bytes = 1024;
    o.format_id = 0x5eed;
    return o;
}

struct World {
    keel::test::FakePlatform platform;
    EventLoop loop{platform};
    World() { set_loop(&loop); }
    ~World() { set_loop(nullptr); }

    template <typename T>
    std::optional<T> run(Task<T> t) {
        std::optional<T> out;
        spawn(capture(std::move(t), out));
        for (int i = 0; i < 100000 && !out; ++i) loop.run_once(true);
        return out;
    }
    template <typename T>
    static Task<void> capture(Task<T> t, std::optional<T>& out) {
        out.emplace(co_await std::move(t));
    }
};

struct Node {
    Node(block::Device& disk) : log(disk, store, options()), engine(store, &log, Clock([] { return now; }), Config{}) {}
    std::string exec(std::vector<std::string_view> args) {
        Bytes out;
        engine.execute(Args(args.data(), args.size()), out);
        return std::string(out.data(), out.size());
    }
    Store store;
    Log log;
    Engine engine;
};

// The disks and images of one input, kept from one input to the next: allocating them anew
// (each 256 KiB) cost more than the rest of an input. Every input resets what it uses.
struct Disks {
    Disks() {
        for (FakeDisk* d : {&disk, &other}) d->keep_snapshot = false;
    }
    FakeDisk disk{sectors, ss};
    FakeDisk other{sectors, ss};
    const Image blank = Image(sectors * ss);
    Image base;
    Image written;  // base plus the unflushed writes
    Image image;
};

bool zero_sector(const Image& img, std::uint64_t s) {
    static constexpr std::byte zeros[ss]{};
    return std::memcmp(img.data() + s * ss, zeros, ss) == 0;
}

void play(Input& in) {
    static Disks disks;
    World w;
    // Per key: the acknowledged state, and the state written since the last commit (either
    // may be what a crash leaves).
    std::map<std::string, std::optional<std::string>> acked, pending;
    Image& base = disks.base;
    Image& written = disks.written;
    {
        FakeDisk& disk = disks.disk;
        disk.reset(disks.blank);
        Node n(disk);
        auto r = w.run(n.log.open(now));
        CHECK(r && r->ok());
        const unsigned writes = in.u8() % 24;
        for (unsigned i = 0; i < writes; ++i) {
            const std::uint8_t how = in.u8();
            const std::string key(1, static_cast<char>('a' + how % 6));
            const std::string value(how / 4 * 7 % 300, static_cast<char>(how));
            const std::string reply = how & 0x80 ? n.exec({"DEL", key}) : n.exec({"SET", key, value});
            if (reply[0] != '-') pending[key] = how & 0x80 ? std::nullopt : std::optional<std::string>(value);
            if (how & 0x40) continue;  // not committed yet (a later commit covers it)
            auto c = w.run(n.log.commit(n.log.appended_lsn()));
            CHECK(c);
            if (!c->ok()) continue;
            for (auto& [k, v] : pending) acked[k] = v;
            pending.clear();
        }
        // What was acknowledged is durable; the rest may have reached the disk or not.
        base = disk.durable;
        written = disk.current;
    }
    const bool anywhere = in.u8() & 1;
    Image& image = disks.image;
    image = in.u8() & 1 ? written : base;
    // Sectors the acknowledged log never wrote: zero in `base`.
    std::vector<std::uint64_t> blank;
    for (std::uint64_t s = 0; s < sectors; ++s) {
        if (zero_sector(base, s)) blank.push_back(s);
    }
    for (int patches = 0; !in.empty() && patches < 64; ++patches) {
        const std::uint8_t how = in.u8();
        std::uint64_t sector;
        if (anywhere) {
            sector = in.u8() % sectors;
        } else {
            if (blank.empty()) break;
            sector = blank[in.u8() % blank.size()];
        }
        const std::size_t at = sector * ss + in.u16() % ss;
        const std::size_t len = std::min<std::size_t>(1 + how % 16, image.size() - at);
        for (std::size_t i = 0; i < len; ++i) image[at + i] = how & 0x80 ? std::byte{in.u8()} : std::byte{0};
        if ((how & 0x60) == 0x60 && at + ss <= image.size() && sector + 1 < sectors) {
            // A whole sector copied from elsewhere: a record moved or replayed.
            const std::uint64_t from = in.u8() % sectors;
            if (!anywhere && std::find(blank.begin(), blank.end(), sector) == blank.end()) continue;
            std::memcpy(image.data() + sector * ss, written.data() + from * ss, ss);
        }
    }

    FakeDisk& disk = disks.disk;
    disk.reset(image);
    Node n(disk);
    auto r = w.run(n.log.open(now));
    CHECK(r);
    if (!r->ok()) {
        CHECK(anywhere);  // only damage to what was acknowledged may stop the open
        CHECK(n.log.failure()[0] != '\0');
        return;
    }
    if (!anywhere) {
        auto is = [&](const std::string& k, const std::optional<std::string>& v) {
            const Entry* e = n.store.peek(k);
            return v ? e != nullptr && e->value() == *v : e == nullptr;
        };
        for (const auto& [k, v] : acked) {
            const auto p = pending.find(k);
            CHECK(is(k, v) || (p != pending.end() && is(k, p->second)));
        }
    }
    // The replayed log goes on: a write after it is durable and reads back.
    if (n.log.read_only()) return;
    const std::string reply = n.exec({"SET", "z", "after"});
    if (reply[0] == '-') return;  // full, or refused with a reason
    auto c = w.run(n.log.commit(n.log.appended_lsn()));
    CHECK(c);
    if (!c->ok()) return;
    FakeDisk& again = disks.other;
    again.reset(disk.durable);
    Node m(again);
    auto r2 = w.run(m.log.open(now));
    CHECK(r2 && r2->ok());
    const Entry* e = m.store.peek("z");
    CHECK(e != nullptr && e->value() == "after");
}

}  // namespace
}  // namespace keel::kv::test

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    keel::kv::test::Input in(data, size);
    keel::kv::test::play(in);
    return 0;
}

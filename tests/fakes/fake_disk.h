// A block::Device in memory that knows what a crash would leave behind.
//
// It keeps three things: `durable` (what survives any crash), `current` (what reads see:
// durable plus every completed write) and the writes completed since the last flush
// (`unflushed`). flush() makes durable what was completed when it was called. A crash image is
// built from a durable snapshot plus a chosen list of writes, any of which may be cut short
// (`torn`: its first n bytes new, the rest old), or reduced to some of its sectors.
//
// Hooks: before_op runs at the start of every write and flush, before it takes effect: the
// place to record crash images together with what the test knows was acknowledged. fail_op
// makes one operation fail. latency makes every operation take virtual time, so that commits
// and compaction interleave on the loop. completions makes operations complete from the loop
// as blkfront's do (from event-channel events, later, and not necessarily in issue order).
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "keel/block/block.h"
#include "keel/loop.h"
#include "keel/task.h"

namespace keel::kv::test {

using Image = std::vector<std::byte>;

struct DiskWrite {
    std::uint64_t sector = 0;
    std::vector<std::byte> data;
};

/// base with `writes` applied in order.
inline Image apply(const Image& base, const std::vector<DiskWrite>& writes, std::uint32_t ss) {
    Image img = base;
    for (const DiskWrite& w : writes) {
        if (!w.data.empty()) std::memcpy(img.data() + w.sector * ss, w.data.data(), w.data.size());
    }
    return img;
}

/// The first `bytes` bytes of `w` only (the rest of the range keeps its old content).
inline DiskWrite torn(const DiskWrite& w, std::size_t bytes) {
    DiskWrite t{w.sector,
                std::vector<std::byte>(w.data.begin(), w.data.begin() + static_cast<std::ptrdiff_t>(bytes))};
    return t;
}

class FakeDisk final : public block::Device {
public:
    enum class OpKind { write, flush };
    struct Op {
        OpKind kind;
        std::uint64_t index;     // 0, 1, ... over writes and flushes
        const DiskWrite* write;  // for writes
    };

    FakeDisk(std::uint64_t sectors, std::uint32_t sector_size = 512)
        : durable(sectors * sector_size), current(sectors * sector_size) {
        geo.sectors = sectors;
        geo.sector_size = sector_size;
        geo.flush = true;
        snapshot = std::make_shared<const Image>(durable);
    }
    /// A disk holding `image` (after a crash: everything durable).
    FakeDisk(const Image& image, std::uint32_t sector_size) : durable(image), current(image) {
        geo.sectors = image.size() / sector_size;
        geo.sector_size = sector_size;
        geo.flush = true;
        snapshot = std::make_shared<const Image>(durable);
    }

    /// A disk holding `image` again, everything durable, no history (hooks and knobs stay):
    /// reuses the images' memory, where a new FakeDisk per fuzz input would allocate it.
    void reset(const Image& image) {
        durable.assign(image.begin(), image.end());
        current = durable;
        geo.sectors = image.size() / geo.sector_size;
        unflushed.clear();
        flushed_ = completed = ops = reads = writes = flushes = discards = bytes_written = 0;
        if (keep_snapshot) snapshot = std::make_shared<const Image>(durable);
    }

    std::string_view name() const override { return "fake0"; }
    const block::Geometry& geometry() const override { return geo; }

    Task<Result<void>> read(std::uint64_t sector, std::span<std::byte> out) override {
        ++reads;
        if (!in_range(sector, out.size())) co_return Error::invalid_argument;
        co_await settle();
        std::memcpy(out.data(), current.data() + sector * geo.sector_size, out.size());
        co_return Result<void>{};
    }

    Task<Result<void>> write(std::uint64_t sector, std::span<const std::byte> data) override {
        if (!in_range(sector, data.size())) co_return Error::invalid_argument;
        if (geo.read_only) co_return Error::permission;
        DiskWrite w{sector, std::vector<std::byte>(data.begin(), data.end())};
        const std::uint64_t index = ops++;
        ++writes;
        if (before_op) before_op(Op{OpKind::write, index, &w});
        if (index == fail_op) co_return fail_error;
        co_await settle();
        std::memcpy(current.data() + sector * geo.sector_size, w.data.data(), w.data.size());
        bytes_written += w.data.size();
        unflushed.push_back(std::move(w));
        co_return Result<void>{};
    }

    Task<Result<void>> flush() override {
        const std::uint64_t index = ops++;
        ++flushes;
        if (before_op) before_op(Op{OpKind::flush, index, nullptr});
        if (index == fail_op) co_return fail_error;
        // Durable: what had completed when flush was called (the writes, in completion order,
        // numbered from the first ever; durable holds those below flushed_).
        const std::uint64_t upto = flushed_ + unflushed.size();
        co_await settle();
        if (upto <= flushed_) co_return Result<void>{};  // a later flush got there first
        const auto n = static_cast<std::ptrdiff_t>(upto - flushed_);
        for (auto w = unflushed.begin(); w != unflushed.begin() + n; ++w) {
            std::memcpy(durable.data() + w->sector * geo.sector_size, w->data.data(), w->data.size());
        }
        unflushed.erase(unflushed.begin(), unflushed.begin() + n);
        flushed_ = upto;
        if (keep_snapshot) snapshot = std::make_shared<const Image>(durable);
        co_return Result<void>{};
    }

    Task<Result<void>> discard(std::uint64_t sector, std::uint64_t count) override {
        if (!geo.discard) co_return Error::not_supported;
        if (!in_range(sector, count * geo.sector_size)) co_return Error::invalid_argument;
        ++discards;
        co_await settle();
        co_return Result<void>{};
    }

    /// Resumes the caller from a post()ed callback: the next loop iteration, after what is queued.
    struct Posted {
        bool await_ready() const noexcept { return false; }
        void await_suspend(std::coroutine_handle<> h) {
            ASSERT_TRUE(loop().post([h] { h.resume(); }).ok());
        }
        void await_resume() const noexcept {}
    };

    // Where an operation waits for its completion (after its checks, before its effect).
    Task<void> settle() {
        if (latency_ns != 0) co_await sleep_for(latency_ns);
        if (completions.empty()) co_return;
        const std::uint64_t d = completions[completed++ % completions.size()];
        if (d == 0) {
            co_await Posted{};
        } else {
            co_await sleep_for(d);
        }
    }

    bool in_range(std::uint64_t sector, std::size_t bytes) const {
        return bytes % geo.sector_size == 0 && sector <= geo.sectors &&
               bytes / geo.sector_size <= geo.sectors - sector;
    }

    block::Geometry geo;
    Image durable;
    Image current;
    std::shared_ptr<const Image> snapshot;  // of durable, shared by crash images
    /// false: flush() leaves `snapshot` alone (no crash images wanted: a fuzzer's speed).
    bool keep_snapshot = true;
    std::vector<DiskWrite> unflushed;

    std::function<void(const Op&)> before_op;
    std::uint64_t fail_op = ~0ull;
    Error fail_error = Error::io;
    std::uint64_t latency_ns = 0;
    /// Empty: operations complete inline. Otherwise operation n (reads, writes, flushes and
    /// discards, in call order) completes from the loop after completions[n % size()] ns of
    /// virtual time, 0 meaning a post()ed callback (the next iteration).
    std::vector<std::uint64_t> completions;
    std::uint64_t completed = 0;

    std::uint64_t ops = 0;
    std::uint64_t reads = 0;
    std::uint64_t writes = 0;
    std::uint64_t flushes = 0;
    std::uint64_t discards = 0;
    std::uint64_t bytes_written = 0;

private:
    std::uint64_t flushed_ = 0;  // writes ever made durable by a flush
};

}  // namespace keel::kv::test

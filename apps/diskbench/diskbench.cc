// diskbench: raw sequential write and read of the first disk through the block API, the keel
// half of bench/kvstore's disk rows (the Linux guest runs dd with O_DIRECT on an identical
// disk). Writes `mib=` MiB (default 64) in `chunk-kib=` KiB calls (default 1024), `depth=` of
// them in flight (default 2), flushes, reads them back the same way, checks the pattern, prints
// one line per direction, and powers off.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "keel/block/block.h"
#include "keel/heap.h"
#include "keel/log.h"
#include "keel/loop.h"
#include "keel/service.h"

namespace {

using keel::Error;
using keel::Task;

class DiskBench final : public keel::Service {
public:
    Task<int> run(const keel::CommandLine& args) override {
        const auto mib = args.get_uint("mib", 64, 1, 4096);
        const auto chunk_kib = args.get_uint("chunk-kib", 1024, 4, 4096);
        const auto depth = args.get_uint("depth", 2, 1, max_depth);
        if (!mib || !chunk_kib || !depth) {
            KLOG_ERROR("diskbench: usage: [mib=1..4096] [chunk-kib=4..4096] [depth=1..%zu]", max_depth);
            co_return 2;
        }
        co_await keel::block::discovered().wait();
        const auto disks = keel::block::devices();
        if (disks.empty()) {
            KLOG_ERROR("diskbench: no disk (add disk = [...] to the xl config)");
            co_return 1;
        }
        keel::block::Device& disk = *disks[0];
        const auto& g = disk.geometry();
        const std::uint64_t total = *mib << 20, chunk = *chunk_kib << 10;
        if (g.read_only || g.sectors * g.sector_size < total || chunk % g.sector_size != 0) {
            KLOG_ERROR("diskbench: %.*s cannot take %lu MiB of writes (%lu sectors of %u bytes%s)",
                       static_cast<int>(disk.name().size()), disk.name().data(), static_cast<unsigned long>(*mib),
                       static_cast<unsigned long>(g.sectors), g.sector_size, g.read_only ? ", read-only" : "");
            co_return 1;
        }
        // Each of `depth` workers has its own buffer and takes the next chunk when its last
        // one is done: up to depth calls in flight, so copying into and checking a buffer
        // overlaps the backend's work on the others (as a service with several clients would).
        const std::size_t n = *depth;
        std::byte* bufs[max_depth] = {};
        for (std::size_t i = 0; i < n; ++i) {
            bufs[i] = static_cast<std::byte*>(keel::global_heap().alloc(chunk, 4096));
            if (bufs[i] == nullptr) {
                KLOG_ERROR("diskbench: no memory for %zu buffers of %lu KiB", n, static_cast<unsigned long>(*chunk_kib));
                free_all(bufs, n);
                co_return 1;
            }
        }
        Pass write_pass{disk, Op::write, total, chunk, chunk / g.sector_size};
        std::uint64_t t0 = keel::loop().now();
        co_await run_pass(write_pass, bufs, n);
        if (write_pass.status == 0) {
            if (auto r = co_await disk.flush(); !r) write_pass.status = fail("flush", r.error());
        }
        if (write_pass.status == 0) report("write", total, keel::loop().now() - t0);
        int status = write_pass.status;

        if (status == 0) {
            Pass read_pass{disk, Op::read, total, chunk, chunk / g.sector_size};
            t0 = keel::loop().now();
            co_await run_pass(read_pass, bufs, n);
            status = read_pass.status;
            if (status == 0) report("read", total, keel::loop().now() - t0);
            if (read_pass.bad != 0) {
                KLOG_ERROR("diskbench: %lu words read back differ from what was written",
                           static_cast<unsigned long>(read_pass.bad));
                status = 1;
            }
        }
        free_all(bufs, n);
        co_return status;
    }

private:
    static constexpr std::size_t max_depth = 8;
    enum class Op { write, read };
    /// One direction over the whole span: the next chunk to take, and what went wrong.
    struct Pass {
        keel::block::Device& disk;
        Op op;
        std::uint64_t total, chunk, sectors_per_chunk;
        std::uint64_t next = 0;  ///< byte offset of the next chunk nobody took yet
        int status = 0;
        std::uint64_t bad = 0;   ///< words read back wrong
    };

    static Task<void> worker(Pass& p, std::byte* buf) {
        while (p.status == 0 && p.next < p.total) {
            const std::uint64_t off = p.next;
            p.next += p.chunk;
            const std::uint64_t sector = off / p.chunk * p.sectors_per_chunk;
            if (p.op == Op::write) {
                fill(buf, p.chunk, off);
                auto r = co_await p.disk.write(sector, std::span<const std::byte>(buf, p.chunk));
                if (!r && p.status == 0) p.status = fail("write", r.error());
            } else {
                auto r = co_await p.disk.read(sector, std::span<std::byte>(buf, p.chunk));
                if (!r) {
                    if (p.status == 0) p.status = fail("read", r.error());
                } else {
                    p.bad += check(buf, p.chunk, off);
                }
            }
        }
    }

    static Task<void> run_pass(Pass& p, std::byte* const* bufs, std::size_t n) {
        Task<void> workers[max_depth];
        for (std::size_t i = 0; i < n; ++i) {
            workers[i] = worker(p, bufs[i]);
            workers[i].start();
        }
        for (std::size_t i = 0; i < n; ++i) co_await workers[i];
    }

    static void free_all(std::byte* const* bufs, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            if (bufs[i] != nullptr) keel::global_heap().free(bufs[i]);
        }
    }

    // Every 8-byte word holds its own disk offset: a misplaced or stale block shows.
    static void fill(std::byte* b, std::uint64_t n, std::uint64_t base) {
        for (std::uint64_t i = 0; i < n; i += 8) {
            const std::uint64_t v = base + i;
            std::memcpy(b + i, &v, 8);
        }
    }
    static std::uint64_t check(const std::byte* b, std::uint64_t n, std::uint64_t base) {
        std::uint64_t bad = 0;
        for (std::uint64_t i = 0; i < n; i += 8) {
            std::uint64_t v;
            std::memcpy(&v, b + i, 8);
            bad += v != base + i;
        }
        return bad;
    }
    static int fail(const char* what, Error e) {
        KLOG_ERROR("diskbench: %s failed: %s", what, keel::to_string(e));
        return 1;
    }
    static void report(const char* what, std::uint64_t bytes, std::uint64_t ns) {
        const std::uint64_t bytes_s = ns == 0 ? 0 : bytes * 1'000'000'000ull / ns;  // bytes <= 4 GiB: no overflow
        KLOG_INFO("diskbench: %s %lu bytes in %lu us: %lu.%02lu MB/s", what, static_cast<unsigned long>(bytes),
                  static_cast<unsigned long>(ns / 1000), static_cast<unsigned long>(bytes_s / 1000000),
                  static_cast<unsigned long>(bytes_s / 10000 % 100));
    }
};

}  // namespace

KEEL_SERVICE(DiskBench)

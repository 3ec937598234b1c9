// diskbench: raw sequential write and read of the first disk through the block API, the keel
// half of bench/kvstore's disk rows (the Linux guest runs dd with O_DIRECT on an identical
// disk). Writes `mib=` MiB (default 64) in `chunk-kib=` KiB requests (default 1024), flushes,
// reads them back, checks the pattern, prints one line per direction, and powers off.
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
        if (!mib || !chunk_kib) {
            KLOG_ERROR("diskbench: usage: [mib=1..4096] [chunk-kib=4..4096]");
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
        auto* buf = static_cast<std::byte*>(keel::global_heap().alloc(chunk, 4096));
        if (buf == nullptr) {
            KLOG_ERROR("diskbench: no memory for a %lu KiB buffer", static_cast<unsigned long>(*chunk_kib));
            co_return 1;
        }
        const std::uint64_t per = chunk / g.sector_size;
        int status = 0;

        std::uint64_t t0 = keel::loop().now();
        for (std::uint64_t off = 0; off < total && status == 0; off += chunk) {
            fill(buf, chunk, off);
            if (auto r = co_await disk.write(off / chunk * per, std::span<const std::byte>(buf, chunk)); !r) status = fail("write", r.error());
        }
        if (status == 0) {
            if (auto r = co_await disk.flush(); !r) status = fail("flush", r.error());
        }
        if (status == 0) report("write", total, keel::loop().now() - t0);

        t0 = keel::loop().now();
        std::uint64_t bad = 0;
        for (std::uint64_t off = 0; off < total && status == 0; off += chunk) {
            if (auto r = co_await disk.read(off / chunk * per, std::span<std::byte>(buf, chunk)); !r) {
                status = fail("read", r.error());
                break;
            }
            bad += check(buf, chunk, off);
        }
        if (status == 0) report("read", total, keel::loop().now() - t0);
        if (bad != 0) {
            KLOG_ERROR("diskbench: %lu words read back differ from what was written", static_cast<unsigned long>(bad));
            status = 1;
        }
        keel::global_heap().free(buf);
        co_return status;
    }

private:
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

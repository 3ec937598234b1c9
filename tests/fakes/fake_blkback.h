// A fake blkback for host tests: the backend's side of io/blkif.h over the very pages blkfront
// shares, reached through FakeBackend's grant mapping that fails the test on a revoked, foreign
// or unknown grant and on a write through a read-only one. It runs the backend's xenbus column
// with FakeBackend / FakeXenbusBackend the way Linux's blkback does (InitWait with its transport parameters;
// on the frontend's Initialised it reads the keys, publishes the disk's properties, connects),
// keeps a disk in memory, and enforces the protocol on the frontend: ring initialised, req_prod
// within the ring, the req_event notification rule, ids unique in flight, segment counts,
// first/last_sect within the page, sectors within the disk and aligned to the logical sector,
// the indirect page layout, operations only when offered, no writes to a read-only disk, a
// persistently mapped grant never re-pointed, and nothing left granted once the frontend says
// Closed. It misbehaves on demand.
//
// The back ring is driven with Xen's own macros (io/ring.h), not with blkfront's BlkRing. The
// data path (data_step) allocates nothing, so allocation-counting tests can run through it.
#pragma once

#include <stdint.h>

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <xen/io/blkif.h>

#include "keel/blkfront/blkfront.h"
#include "keel/xen/event_channel.h"
#include "fakes/fake_backend.h"
#include "fakes/test_platform.h"
#include "fakes/fake_xenstored.h"

namespace keel::test {

/// What the toolstack and the backend publish for one disk.
struct DiskConfig {
    std::uint64_t sectors512 = 2048;       ///< "sectors": 1 MiB (512-byte units, as Linux's blkback)
    std::uint32_t sector_size = 512;       ///< "sector-size"; 0: key absent
    std::uint32_t info = 0;                ///< "info" (VDISK_*)
    bool flush_cache = true;               ///< feature-flush-cache
    bool barrier = false;                  ///< feature-barrier
    bool discard = true;                   ///< feature-discard
    bool persistent = true;                ///< feature-persistent
    int max_ring_page_order = 3;           ///< -1: key absent
    int max_ring_pages = 0;                ///< the deprecated key; 0: absent
    unsigned max_indirect_segments = 256;  ///< feature-max-indirect-segments; 0: absent
    const char* sectors_text = nullptr;    ///< overrides "sectors" (malformed values)
    bool omit_sectors = false;
};

class FakeBlkback final : public FakeBackend {
public:
    /// What the backend does wrong next (to the response it is about to write).
    enum class Fault {
        none,
        unknown_id,     ///< an id outside the frontend's id space (high bits set)
        not_in_flight,  ///< the right slot, a generation never issued
        duplicate,      ///< the id of the previous response (the real one never comes)
        bad_status,     ///< status 7
        status_error,   ///< BLKIF_RSP_ERROR
        eopnotsupp,     ///< BLKIF_RSP_EOPNOTSUPP
        bad_operation,  ///< READ answered as WRITE and the other way round
        rsp_prod_jump,  ///< rsp_prod moves 3 ring sizes past the responses
    };

    FakeBlkback(FakeXenstored& d, TestPlatform& platform, std::span<grant_entry_v1_t> grants,
                std::string front = "device/vbd/51712",
                std::string back = "/local/domain/0/backend/vbd/7/51712");

    /// The toolstack's nodes and the backend's transport parameters; the disk, zeroed.
    void create(const DiskConfig& c = {});

    /// The data path alone. Allocates nothing, touches no xenstore.
    void data_step() override;

    // ---- the disk
    std::vector<std::byte>& disk() { return disk_; }

    // ---- knobs
    /// Keep requests (mapped, unanswered) until release().
    bool hold = false;
    void release();
    std::size_t held() const { return held_count_; }
    void misbehave(Fault f, int times = 1, int after = 0) {
        fault_ = f;
        fault_times_ = times;
        fault_after_ = after;
    }
    /// Never unmap anything at close (the guest's revokes find the grants busy).
    bool keep_mapped = false;
    /// data_step() does nothing: someone else (a fuzzer) answers the ring through back().
    /// Set before create(): the disk then holds no bytes.
    bool passive = false;
    blkif_back_ring_t& back() { return ring_; }
    FakeChannel* channel() { return mapped_ ? ch_ : nullptr; }
    std::byte* granted_page(grant_ref_t ref, bool write) { return grant_page(ref, write); }
    /// Map a grant and never let go of it (a backend writing late): the frontend cannot
    /// revoke it, so the teardown check leaves it alone.
    void map_page(grant_ref_t ref) {
        mark_mapped(ref);
        keep(ref);
    }
    /// What the next connection publishes; the disk keeps its bytes.
    void reconfigure(const DiskConfig& c) { config_ = c; }

    // ---- what happened
    unsigned ring_order() const { return order_; }
    bool persistent() const { return persistent_; }
    /// Distinct grants mapped persistently on this connection.
    std::size_t persistent_grants() const { return persistent_count_; }
    std::uint64_t requests = 0, reads = 0, writes = 0, flushes = 0, barriers = 0, discards = 0, indirect = 0;
    std::uint64_t sectors_read = 0, sectors_written = 0;  ///< 512-byte units
    std::size_t max_segments = 0;                         ///< the most segments seen in one request
    std::size_t max_in_flight = 0;                        ///< the most requests held at once
    std::size_t max_pages_held = 0;                       ///< the most data pages held at once
    std::uint64_t last_sector = 0;                        ///< sector_number of the last read/write request

private:
    struct Job {
        std::uint64_t id;
        std::uint64_t sector;           // 512-byte units
        std::uint64_t count;            // discard: sectors
        std::uint8_t op;                // the data operation (indirect_op for BLKIF_OP_INDIRECT)
        std::uint32_t first_seg, nseg;  // in segs_
        std::uint32_t indirect_first, indirect_count;  // indirect pages, in indirect_refs_
        bool ok;  // passed validation (a broken request is answered with BLKIF_RSP_ERROR)
    };

    void before_xenbus() override;
    bool kept_everything() const override { return keep_mapped; }
    void write_properties();
    void map() override;
    void unmap() override;
    /// Drop every held request, segment and persistent grant (on map and unmap).
    void forget_requests();
    /// Map a data or indirect grant for a request; persistently if negotiated.
    std::byte* use_grant(grant_ref_t ref, bool write);
    void unuse_grant(grant_ref_t ref);
    void check_notify();
    bool parse(const blkif_request_t& req, Job& job);
    void emit(const Job& job);
    Fault take_fault();

    DiskConfig config_;
    std::vector<std::byte> disk_;

    bool jumped_ = false;
    unsigned order_ = 0;
    bool persistent_ = false;
    std::array<grant_ref_t, 16> ring_refs_{};
    blkif_back_ring_t ring_{};
    FakeChannel* ch_ = nullptr;
    bool armed_ = false;
    RING_IDX seen_ = 0;

    // Persistent grants: mapped once, kept until unmap; the frame each was first mapped at.
    std::bitset<65536> persistent_map_;
    std::uint16_t handle_ = 0;      // what the requests' handle must be: virtual-device
    std::vector<std::uint64_t> persistent_frame_;
    std::size_t persistent_count_ = 0;

    // Requests in flight (held or being answered): ids, and their segments.
    std::array<Job, 1024> held_{};
    std::size_t held_count_ = 0;
    std::vector<blkif_request_segment> segs_;
    std::vector<grant_ref_t> indirect_refs_;
    std::size_t pages_held_ = 0;
    std::uint64_t last_id_ = 0;
    bool answered_any_ = false;

    Fault fault_ = Fault::none;
    int fault_times_ = 0;
    int fault_after_ = 0;
};

}  // namespace keel::test

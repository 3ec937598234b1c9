// The durable append-only log of the key-value store, on a block::Device. kv/log_format.h
// (and docs/kvstore.md) describes the on-disk format; in short:
//
//   sector 0, 1    two copies of the header (magic, version, epoch, active region, CRC-32C)
//   region 0, 1    the rest of the disk in two halves; the header names the active one
//
// A region holds a stream of records (length, epoch, CRC-32C; then operations: set with
// expiry, delete, flush-all). Mutations are applied in memory, encoded into the log buffer and
// the reply waits for commit(): group commit writes everything appended so far (sector
// aligned, rewriting the partly filled last sector) and flushes, once for all waiting
// writers. Replay on open() reads records until the first that is short, torn (CRC), of an
// older epoch or malformed, and appends continue exactly there. Every open() bumps the epoch
// in the header (written and flushed before any append), so leftovers of a write torn before
// the crash can never be taken for new records later. Compaction writes a snapshot of the
// store into the other region, then the records that arrived meanwhile, flushes, and only
// then switches the header (written to the older copy, and flushed): a crash at any point
// leaves either the old region with all acknowledged records, or the new one.
//
// Context: loop only. One Log per disk; open() must complete before anything else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "keel/block/block.h"
#include "keel/result.h"
#include "keel/task.h"
#include "kv/log_format.h"
#include "kv/store.h"
#include "kv/vec.h"

namespace keel::kv {

struct LogOptions {
    /// Compact when the log is at least this long and over compact_ratio times the live data.
    std::uint64_t compact_min_bytes = 16u * 1024 * 1024;
    std::uint32_t compact_ratio = 2;
    /// Largest record payload the writer produces (reserve() refuses bigger ones).
    std::uint32_t max_record_bytes = 4u * 1024 * 1024;
    /// Size of the reads during replay and of the writes of a snapshot.
    std::uint32_t io_chunk_bytes = 256u * 1024;
    /// Format a disk whose two header sectors are all zero (a new, blank disk).
    bool format_blank = true;
    /// Identifies the log created by a format (pass something unpredictable: TSC, clock), so
    /// that records left from an earlier life of the disk never verify.
    std::uint64_t format_id = 0;
};

/// Why replay stopped.
enum class ReplayEnd : std::uint8_t {
    clean,       ///< a zero record header: the end of what was ever written there
    stale,       ///< a record from before the last open or compaction (older epoch)
    torn,        ///< a record whose CRC does not match (torn or damaged write)
    bad_length,  ///< a length past the region end or a non-zero header with length 0
    malformed,   ///< a record whose CRC matches but whose operations do not parse
    region_end,  ///< the region is full up to its end
};
const char* to_string(ReplayEnd e);

struct ReplayReport {
    bool formatted = false;        ///< the disk was blank and has been formatted
    std::uint64_t records = 0;     ///< records replayed
    std::uint64_t ops = 0;         ///< operations in them
    std::uint64_t end_offset = 0;  ///< byte offset in the region where replay stopped
    ReplayEnd end = ReplayEnd::clean;
    std::uint64_t epoch = 0;   ///< the epoch of this boot's records
    std::uint32_t region = 0;  ///< the active region
};

struct LogStats {
    std::uint64_t epoch = 0;
    std::uint32_t region = 0;
    std::uint64_t log_bytes = 0;      ///< bytes of records in the active region
    std::uint64_t region_bytes = 0;   ///< capacity of a region
    std::uint64_t live_bytes = 0;     ///< estimated size of a compacted log
    std::uint64_t appended_lsn = 0;   ///< records appended since open()
    std::uint64_t durable_lsn = 0;    ///< ... of which durable
    std::uint64_t commits = 0;        ///< write + flush rounds
    std::uint64_t bytes_written = 0;  ///< by commits, snapshots and headers
    std::uint64_t compactions = 0;
    std::uint64_t compactions_aborted = 0;  ///< gave up (no room, out of memory); the old log stays
    bool compacting = false;
    ReplayReport replay{};
};

class Log {
public:
    /// Nothing happens until open(). `disk` and `store` must outlive the Log.
    Log(block::Device& disk, Store& store, const LogOptions& options = {});
    /// Must not run while a commit() or compact() is suspended.
    ~Log() = default;
    Log(const Log&) = delete;
    Log& operator=(const Log&) = delete;

    /// Read the header (formatting a blank disk), replay the active region into the store
    /// (which should be empty), write the next epoch into the header and flush. Records whose
    /// expiry is at or before `now_ns` delete their key instead. Errors:
    ///   permission       the disk is read-only and blank (failure() says so)
    ///   bad_input        not a kvstore disk, or both header copies are corrupt
    ///   not_supported    another format version, or a sector size the header does not match
    ///   no_space         the disk is too small for a log
    ///   no_memory        the store could not take the replayed data
    ///   any disk error   from the device
    /// A read-only disk is replayed and served as it is: nothing is written (not even the
    /// epoch), and reserve() refuses every change with Error::permission.
    Task<Result<ReplayReport>> open(std::uint64_t now_ns);

    /// Opened and no write has failed.
    bool ready() const { return opened_ && failed_ == Error::ok; }
    /// Opened on a read-only disk: replayed, never written.
    bool read_only() const { return read_only_; }
    /// Error::ok, or what stopped the log (after which every reserve() and commit() fails).
    Error failed() const { return failed_; }
    /// A sentence for the console about the last failure ("" if none).
    const char* failure() const { return why_; }

    // --- Appending a record: reserve(), begin(), add_*() as the changes are applied, end().

    /// Payload bytes of each operation, to sum for reserve().
    static std::size_t set_bytes(std::size_t key, std::size_t value) {
        return disk::set_overhead + key + value;
    }
    static std::size_t del_bytes(std::size_t key) { return disk::del_overhead + key; }
    static std::size_t flush_all_bytes() { return disk::flush_all_overhead; }

    /// Make room for a record of up to `payload_bytes`, so that the next begin() ... end()
    /// cannot fail. Errors: the failure, if the log has failed; closed before open();
    /// invalid_argument over max_record_bytes; no_space when the region is full (compaction
    /// is then wanted); no_memory.
    Result<void> reserve(std::size_t payload_bytes);
    void begin();
    void add_set(std::string_view key, std::string_view value, std::uint64_t expire_ns);
    void add_del(std::string_view key);
    void add_flush_all();
    /// Seal the record; returns its LSN. A record without operations is dropped (the LSN
    /// returned is then the last one appended).
    std::uint64_t end();

    /// Records appended since open() (the LSN of the last one).
    std::uint64_t appended_lsn() const { return appended_lsn_; }
    std::uint64_t durable_lsn() const { return durable_lsn_; }

    /// Completes once every record up to `lsn` is durable: written and flushed (or moved into
    /// a compacted region whose header is durable). Concurrent callers share write + flush
    /// rounds. An error means the log failed: the records may or may not be on disk.
    Task<Result<void>> commit(std::uint64_t lsn);

    /// The log has outgrown the live data (or is filling its region) and compact() would help.
    bool wants_compaction() const;
    /// Rewrite the live data into the other region and switch to it (see the top). Appends
    /// and commits go on meanwhile. Error::busy if one is running; no_space/no_memory abort it
    /// (the old log stays); a disk error fails the log. `now_ns` skips expired entries.
    Task<Result<void>> compact(std::uint64_t now_ns);

    LogStats stats() const;
    const block::Device& device() const { return disk_; }

private:
    // An append stream over one region. buf holds the bytes [base, end) of the region: the
    // unwritten records and, before them, the start of the partly written last sector, which
    // the next write rewrites with identical bytes.
    struct Stream {
        std::uint32_t region = 0;
        std::uint64_t first_sector = 0;
        std::uint64_t capacity = 0;  // bytes
        std::uint64_t epoch = 0;
        std::uint64_t end = 0;
        std::uint64_t durable = 0;
        std::uint64_t base = 0;
        Bytes buf;
    };
    struct Taken {
        std::uint64_t sector;
        std::uint64_t end;
    };

    Stream& primary() { return switching_ ? next_ : cur_; }
    Taken take(Stream& s, Bytes& out);
    void fail(Error e, const char* why);
    void wake();
    std::uint64_t live_estimate() const;
    void abort_compaction(Error e);
    void seal_snapshot_record();
    Task<Result<void>> write_header(const disk::Header& h, unsigned slot);
    Task<Result<bool>> format_disk(disk::Header& out);
    Task<Result<void>> replay(std::uint64_t now_ns, ReplayReport& report);
    Task<Result<void>> write_stream(Stream& s, Bytes& out, bool flush, std::uint64_t* end_out);

    block::Device& disk_;
    Store& store_;
    LogOptions options_;
    std::uint32_t ss_ = 0;  // sector size
    disk::Header header_{};
    unsigned header_slot_ = 0;  // the copy holding header_
    bool opened_ = false;
    bool read_only_ = false;
    Error failed_ = Error::ok;
    char why_[160] = {};

    Stream cur_;
    Bytes inflight_;  // the bytes of the commit round in flight
    std::size_t record_start_ = 0;
    bool building_ = false;
    std::uint64_t appended_lsn_ = 0;
    std::uint64_t durable_lsn_ = 0;
    bool busy_ = false;            // a commit round or the compaction switch owns the device's write order
    bool switch_pending_ = false;  // the compaction waits for busy_: start no new round
    Event round_;                  // set and reset after each round

    // Compaction.
    bool compacting_ = false;
    bool switching_ = false;     // appends go to next_
    bool collect_tail_ = false;  // appends are copied into tail_ (with next_'s epoch)
    Error compact_error_ = Error::ok;
    Stream next_;
    std::uint64_t compact_epoch_ = 0;  // epoch of the last attempt
    Bytes tail_;
    Bytes compact_out_;
    std::size_t snap_record_start_ = 0;
    bool snap_record_open_ = false;

    ReplayReport replay_{};
    std::uint64_t commits_ = 0;
    std::uint64_t bytes_written_ = 0;
    std::uint64_t compactions_ = 0;
    std::uint64_t compactions_aborted_ = 0;
    bool want_compaction_ = false;
};

}  // namespace keel::kv

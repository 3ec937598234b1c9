// Log: opening (header, format, replay), group commit and compaction (see log.h for the
// protocol, kv/log_format.h for the bytes on the disk and docs/kvstore.md for the crash argument).
#include "kv/log.h"

#include <cstring>

#include "keel/format.h"
#include "keel/log.h"

namespace keel::kv {
namespace {

using disk::encode_set;
using disk::seal_record;
using disk::walk_ops;

std::span<std::byte> writable(Bytes& b) { return {reinterpret_cast<std::byte*>(b.data()), b.size()}; }
std::span<const std::byte> readable(const Bytes& b) {
    return {reinterpret_cast<const std::byte*>(b.data()), b.size()};
}

std::uint64_t round_up(std::uint64_t v, std::uint64_t to) { return (v + to - 1) / to * to; }

// A region smaller than this is not worth a log.
constexpr std::uint64_t min_region_bytes = 64 * 1024;
// Payload of one snapshot record (more entries per record: fewer headers to check).
constexpr std::size_t snapshot_record_payload = 64 * 1024;

}  // namespace

const char* to_string(ReplayEnd e) {
    switch (e) {
        case ReplayEnd::clean:
            return "clean end";
        case ReplayEnd::stale:
            return "stale record";
        case ReplayEnd::torn:
            return "torn or damaged record (CRC)";
        case ReplayEnd::bad_length:
            return "bad record length";
        case ReplayEnd::malformed:
            return "malformed record";
        case ReplayEnd::region_end:
            return "end of region";
    }
    return "?";
}

Log::Log(block::Device& disk, Store& store, const LogOptions& options)
    : disk_(disk), store_(store), options_(options) {}

void Log::fail(Error e, const char* why) {
    if (failed_ == Error::ok) {
        failed_ = e;
        keel::format(why_, sizeof(why_), "%s: %s", why, to_string(e));
        KLOG_ERROR("kvstore: the disk failed (%s): writes are refused from now on, reads are served from memory",
                   why_);
    }
}

void Log::wake() {
    round_.set();
    round_.reset();
}

// ---------------------------------------------------------------------------------------------
// open: header, format, replay

Task<Result<void>> Log::write_header(const disk::Header& h, unsigned slot) {
    Bytes sector;
    if (!sector.resize(ss_, '\0')) co_return Error::no_memory;
    disk::encode_header(h, sector.data());
    auto r = co_await disk_.write(slot, readable(sector));
    if (r.ok()) bytes_written_ += ss_;
    co_return r;
}

// Formats a blank disk: region 0 starts with a zero sector (an empty log), then header copy 0.
Task<Result<bool>> Log::format_disk(disk::Header& h) {
    const block::Geometry& g = disk_.geometry();
    const std::uint64_t region_sectors =
        g.sectors > disk::header_sectors ? (g.sectors - disk::header_sectors) / 2 : 0;
    if (region_sectors * ss_ < min_region_bytes) {
        keel::format(why_, sizeof(why_), "the disk is too small for a log (%llu sectors of %u bytes)",
                     static_cast<unsigned long long>(g.sectors), ss_);
        co_return Error::no_space;
    }
    h = {};
    h.epoch = 1;
    h.base_epoch = 1;
    h.log_id = options_.format_id;
    h.data_start = disk::header_sectors;
    h.region_sectors = region_sectors;
    h.sector_size = ss_;
    h.active_region = 0;
    Bytes zero;
    if (!zero.resize(ss_, '\0')) co_return Error::no_memory;
    auto r = co_await disk_.write(h.data_start, readable(zero));
    if (r.ok()) r = co_await disk_.flush();
    if (r.ok()) r = co_await write_header(h, 0);
    if (r.ok()) r = co_await disk_.flush();
    if (!r.ok()) {
        keel::format(why_, sizeof(why_), "formatting the disk failed: %s", to_string(r.error()));
        co_return r.error();
    }
    co_return true;
}

Task<Result<ReplayReport>> Log::open(std::uint64_t now_ns) {
    const block::Geometry& g = disk_.geometry();
    ss_ = g.sector_size;
    if (ss_ < 512 || ss_ > 65536 || (ss_ & (ss_ - 1)) != 0) {
        keel::format(why_, sizeof(why_), "unsupported sector size %u", ss_);
        co_return Error::not_supported;
    }
    read_only_ = g.read_only;
    if (g.sectors < disk::header_sectors) {
        keel::format(why_, sizeof(why_), "the disk is too small for a log (%llu sectors)",
                     static_cast<unsigned long long>(g.sectors));
        co_return Error::no_space;
    }
    Bytes hb;
    if (!hb.resize(disk::header_sectors * ss_)) co_return Error::no_memory;
    if (auto r = co_await disk_.read(0, writable(hb)); !r.ok()) {
        keel::format(why_, sizeof(why_), "cannot read the log header: %s", to_string(r.error()));
        co_return r.error();
    }
    disk::Header h[2];
    bool valid[2] = {false, false};
    bool blank = true, other_version = false;
    for (unsigned i = 0; i < 2; ++i) {
        const char* p = hb.data() + i * ss_;
        valid[i] = disk::decode_header(p, h[i]);
        if (!valid[i] && disk::is_other_version(p)) other_version = true;
        for (std::size_t k = 0; k < ss_; ++k) blank = blank && p[k] == 0;
    }
    ReplayReport report;
    unsigned slot = 0;
    if (valid[0] || valid[1]) {
        slot = valid[0] && (!valid[1] || h[0].epoch >= h[1].epoch) ? 0 : 1;
        header_ = h[slot];
    } else if (other_version) {
        keel::format(why_, sizeof(why_), "the disk holds a log of another format version");
        co_return Error::not_supported;
    } else if (!blank || !options_.format_blank) {
        keel::format(why_, sizeof(why_), "%s",
                     blank ? "the disk is blank and formatting is off"
                           : "not a kvstore disk, or both copies of its header are damaged");
        co_return Error::bad_input;
    } else if (read_only_) {
        keel::format(why_, sizeof(why_), "the disk %.*s is blank and read-only (xl: access=ro): no log to serve",
                     static_cast<int>(disk_.name().size()), disk_.name().data());
        co_return Error::permission;
    } else {
        auto f = co_await format_disk(header_);
        if (!f.ok()) co_return f.error();
        report.formatted = true;
        slot = 0;
    }
    header_slot_ = slot;
    if (header_.sector_size != ss_) {
        keel::format(why_, sizeof(why_), "the log was written with %u-byte sectors, the disk has %u",
                     header_.sector_size, ss_);
        co_return Error::not_supported;
    }
    if (header_.data_start < disk::header_sectors || header_.data_start > g.sectors ||
        header_.region_sectors < min_region_bytes / ss_ ||
        header_.region_sectors > (g.sectors - header_.data_start) / 2) {
        keel::format(why_, sizeof(why_), "the log's layout does not fit the disk (%llu sectors)",
                     static_cast<unsigned long long>(g.sectors));
        co_return Error::bad_input;
    }

    cur_ = Stream{};
    cur_.region = header_.active_region;
    cur_.first_sector = header_.data_start + cur_.region * header_.region_sectors;
    cur_.capacity = header_.region_sectors * ss_;
    if (auto r = co_await replay(now_ns, report); !r.ok()) co_return r.error();

    if (!read_only_) {
        // The next epoch goes into the header before any record of it is written. A read-only
        // disk is served as it is: nothing is written, and reserve() refuses every change.
        disk::Header bumped = header_;
        bumped.epoch = header_.epoch + 1;
        auto w = co_await write_header(bumped, 1 - slot);
        if (w.ok()) w = co_await disk_.flush();
        if (!w.ok()) {
            keel::format(why_, sizeof(why_), "cannot write the log header: %s", to_string(w.error()));
            co_return w.error();
        }
        header_ = bumped;
        header_slot_ = 1 - slot;
        cur_.epoch = header_.epoch;
        if (!cur_.buf.reserve(2 * ss_) || !inflight_.reserve(2 * ss_)) co_return Error::no_memory;
    }
    report.epoch = header_.epoch;
    report.region = cur_.region;
    replay_ = report;
    opened_ = true;
    co_return report;
}

Task<Result<void>> Log::replay(std::uint64_t now_ns, ReplayReport& report) {
    Stream& s = cur_;
    const std::uint64_t chunk = options_.io_chunk_bytes < ss_ ? ss_ : options_.io_chunk_bytes / ss_ * ss_;
    Bytes win;  // region bytes [win_off, win_off + win.size())
    std::uint64_t win_off = 0;
    std::uint64_t pos = 0;
    std::uint64_t prev_epoch = header_.base_epoch;
    for (;;) {
        if (s.capacity - pos < disk::record_header_bytes) {
            report.end = ReplayEnd::region_end;
            break;
        }
        // Read until `need` bytes of the region are in the window, a chunk at a time.
        std::uint64_t need = pos + disk::record_header_bytes;
        bool have_payload = false;
        for (;;) {
            while (win_off + win.size() < need) {
                const std::uint64_t at = win_off + win.size();
                std::uint64_t want = round_up(need - at, ss_);
                if (want < chunk) want = chunk;
                if (want > s.capacity - at) want = s.capacity - at;
                const std::size_t old = win.size();
                if (!win.resize(old + want)) co_return Error::no_memory;
                auto r = co_await disk_.read(
                    s.first_sector + at / ss_,
                    std::span<std::byte>(reinterpret_cast<std::byte*>(win.data() + old), want));
                if (!r.ok()) {
                    keel::format(why_, sizeof(why_), "reading the log failed: %s", to_string(r.error()));
                    co_return r.error();
                }
            }
            if (have_payload) break;
            const disk::RecordHeader h = disk::decode_record_header(win.data() + (pos - win_off));
            const std::uint32_t len = h.length;
            const std::uint64_t epoch = h.epoch;
            if (len == 0) {
                report.end = h.crc == 0 && epoch == 0 ? ReplayEnd::clean : ReplayEnd::bad_length;
                break;
            }
            if (len > disk::max_record_payload || len > s.capacity - pos - disk::record_header_bytes) {
                report.end = ReplayEnd::bad_length;
                break;
            }
            if (epoch < prev_epoch || epoch > header_.epoch) {
                report.end = ReplayEnd::stale;
                break;
            }
            need = pos + disk::record_header_bytes + len;
            have_payload = true;
        }
        if (!have_payload) break;

        const char* rec = win.data() + (pos - win_off);
        const disk::RecordHeader rh = disk::decode_record_header(rec);
        const std::uint32_t len = rh.length;
        const char* payload = rec + disk::record_header_bytes;
        if (!disk::record_verifies(header_.log_id, rec, len)) {
            report.end = ReplayEnd::torn;
            break;
        }
        std::uint64_t ops = 0;
        if (!walk_ops(payload, len, [&](disk::Op, std::string_view, std::string_view, std::uint64_t) {
                ++ops;
                return true;
            })) {
            report.end = ReplayEnd::malformed;
            break;
        }
        bool out_of_memory = false;
        walk_ops(payload, len,
                 [&](disk::Op op, std::string_view key, std::string_view value, std::uint64_t expire) {
                     if (op == disk::Op::set) {
                         if (expire != 0 && expire <= now_ns) {
                             store_.erase(key);
                         } else if (!store_.set(key, value, expire).ok()) {
                             out_of_memory = true;
                             return false;
                         }
                     } else if (op == disk::Op::del) {
                         store_.erase(key);
                     } else {
                         store_.clear();
                     }
                     return true;
                 });
        if (out_of_memory) {
            keel::format(why_, sizeof(why_), "out of memory replaying the log (record %llu)",
                         static_cast<unsigned long long>(report.records + 1));
            co_return Error::no_memory;
        }
        prev_epoch = rh.epoch;
        pos += disk::record_header_bytes + len;
        ++report.records;
        report.ops += ops;
        // Keep the window from the sector holding pos: the last sector is rewritten later.
        const std::uint64_t keep = pos / ss_ * ss_;
        if (keep - win_off >= chunk) {
            win.erase_front(keep - win_off);
            win_off = keep;
        }
    }
    report.end_offset = pos;
    s.end = s.durable = pos;
    s.base = pos / ss_ * ss_;
    s.buf.clear();
    if (!s.buf.append(win.data() + (s.base - win_off), pos - s.base)) co_return Error::no_memory;
    co_return Result<void>{};
}

// ---------------------------------------------------------------------------------------------
// Appending

Result<void> Log::reserve(std::size_t payload_bytes) {
    if (failed_ != Error::ok) return failed_;
    if (!opened_) return Error::closed;
    if (read_only_) return Error::permission;
    if (payload_bytes > options_.max_record_bytes) return Error::invalid_argument;
    const std::size_t rec = disk::record_header_bytes + payload_bytes;
    Stream& s = primary();
    if (rec > s.capacity - s.end) {
        want_compaction_ = true;
        return Error::no_space;
    }
    if (!s.buf.reserve(s.buf.size() + rec + ss_)) return Error::no_memory;
    if (collect_tail_) {
        // The snapshot record is sealed whenever this can run (compact() seals before yielding).
        if (next_.end + tail_.size() + rec > next_.capacity) {
            abort_compaction(Error::no_space);
        } else if (!tail_.reserve(tail_.size() + rec)) {
            abort_compaction(Error::no_memory);
        }
    }
    return {};
}

void Log::begin() {
    Stream& s = primary();
    record_start_ = s.buf.size();
    (void)s.buf.resize(record_start_ + disk::record_header_bytes);  // reserved
    building_ = true;
}

void Log::add_set(std::string_view key, std::string_view value, std::uint64_t expire_ns) {
    Bytes& b = primary().buf;
    const std::size_t at = b.size();
    (void)b.resize(at + set_bytes(key.size(), value.size()));  // reserved
    encode_set(b.data() + at, key, value, expire_ns);
}

void Log::add_del(std::string_view key) {
    Bytes& b = primary().buf;
    const std::size_t at = b.size();
    (void)b.resize(at + del_bytes(key.size()));  // reserved
    disk::encode_del(b.data() + at, key);
}

void Log::add_flush_all() {
    Bytes& b = primary().buf;
    const std::size_t at = b.size();
    (void)b.resize(at + flush_all_bytes());  // reserved
    disk::encode_flush_all(b.data() + at);
}

std::uint64_t Log::end() {
    building_ = false;
    Stream& s = primary();
    const std::size_t payload = s.buf.size() - record_start_ - disk::record_header_bytes;
    if (payload == 0) {
        s.buf.truncate(record_start_);
        return appended_lsn_;
    }
    char* rec = s.buf.data() + record_start_;
    seal_record(rec, payload, s.epoch, header_.log_id);
    s.end += disk::record_header_bytes + payload;
    ++appended_lsn_;
    if (collect_tail_) {
        // The same record for the compacted region, under its epoch.
        const std::size_t at = tail_.size();
        (void)tail_.append(rec, disk::record_header_bytes + payload);  // reserved
        seal_record(tail_.data() + at, payload, next_.epoch, header_.log_id);
    }
    return appended_lsn_;
}

// ---------------------------------------------------------------------------------------------
// Writing

// Moves the stream's buffered bytes into `out`, padded with zeros to whole sectors, and keeps
// the partly filled last sector in the stream for the next write.
Log::Taken Log::take(Stream& s, Bytes& out) {
    Bytes spare = static_cast<Bytes&&>(out);
    out = static_cast<Bytes&&>(s.buf);
    s.buf = static_cast<Bytes&&>(spare);
    const std::uint64_t new_base = s.end / ss_ * ss_;
    s.buf.clear();
    // Both cannot fail: every buffer keeps at least a sector spare (reserve(), open(), compact()).
    (void)s.buf.append(out.data() + (new_base - s.base), static_cast<std::size_t>(s.end - new_base));
    (void)out.resize(round_up(out.size(), ss_), '\0');
    const Taken t{s.first_sector + s.base / ss_, s.end};
    s.base = new_base;
    return t;
}

Task<Result<void>> Log::write_stream(Stream& s, Bytes& out, bool flush, std::uint64_t* end_out) {
    const Taken t = take(s, out);
    auto r = co_await disk_.write(t.sector, readable(out));
    if (r.ok()) bytes_written_ += out.size();
    if (r.ok() && flush) r = co_await disk_.flush();
    if (end_out != nullptr) *end_out = t.end;
    co_return r;
}

Task<Result<void>> Log::commit(std::uint64_t lsn) {
    if (lsn > appended_lsn_) lsn = appended_lsn_;
    while (durable_lsn_ < lsn) {
        if (failed_ != Error::ok) co_return failed_;
        if (busy_ || switch_pending_) {  // the compaction's switch goes first: it covers us too
            co_await round_.wait();
            continue;
        }
        // Lead a round: everything appended so far goes out in one write and one flush.
        busy_ = true;
        const std::uint64_t target = appended_lsn_;
        std::uint64_t end = 0;
        auto r = co_await write_stream(cur_, inflight_, true, &end);  // not switching: busy_ was free
        busy_ = false;
        if (!r.ok()) {
            fail(r.error(), "a log write failed");
            wake();
            co_return r.error();
        }
        cur_.durable = end;
        if (target > durable_lsn_) durable_lsn_ = target;
        ++commits_;
        wake();
    }
    co_return Result<void>{};
}

// ---------------------------------------------------------------------------------------------
// Compaction

std::uint64_t Log::live_estimate() const {
    const std::uint64_t data = store_.data_bytes() + store_.size() * disk::set_overhead;
    return data + (data / snapshot_record_payload + 1) * disk::record_header_bytes;
}

bool Log::wants_compaction() const {
    if (!ready() || compacting_ || read_only_) return false;
    const std::uint64_t live = live_estimate();
    if (live > cur_.capacity / 4 * 3) return false;  // would not fit with room to spare
    if (want_compaction_ && live < cur_.end) return true;
    if (cur_.end >= options_.compact_min_bytes && cur_.end / options_.compact_ratio > live) return true;
    return cur_.end > cur_.capacity / 4 * 3 && live < cur_.end / 2;
}

void Log::abort_compaction(Error e) {
    if (compact_error_ == Error::ok) compact_error_ = e;
    collect_tail_ = false;
    tail_.free();
}

void Log::seal_snapshot_record() {
    if (!snap_record_open_) return;
    snap_record_open_ = false;
    const std::size_t payload = next_.buf.size() - snap_record_start_ - disk::record_header_bytes;
    if (payload == 0) {
        next_.buf.truncate(snap_record_start_);
        return;
    }
    seal_record(next_.buf.data() + snap_record_start_, payload, next_.epoch, header_.log_id);
    next_.end += disk::record_header_bytes + payload;
}

Task<Result<void>> Log::compact(std::uint64_t now_ns) {
    if (!ready()) co_return failed_ != Error::ok ? failed_ : Error::invalid_argument;
    if (read_only_) co_return Error::permission;
    if (compacting_) co_return Error::busy;
    compacting_ = true;
    compact_error_ = Error::ok;
    want_compaction_ = false;
    next_ = Stream{};
    next_.region = 1 - cur_.region;
    next_.first_sector = header_.data_start + next_.region * header_.region_sectors;
    next_.capacity = cur_.capacity;
    // A fresh epoch for every attempt: leftovers of an attempt that gave up, in the same
    // region, must look stale to a later one.
    next_.epoch = (compact_epoch_ > header_.epoch ? compact_epoch_ : header_.epoch) + 1;
    compact_epoch_ = next_.epoch;
    const std::uint64_t chunk = options_.io_chunk_bytes < ss_ ? ss_ : options_.io_chunk_bytes / ss_ * ss_;
    tail_.clear();
    collect_tail_ = true;
    if (!next_.buf.reserve(chunk + 2 * ss_) || !compact_out_.reserve(2 * ss_))
        abort_compaction(Error::no_memory);

    // 1. The snapshot, a bucket at a time. Records appended meanwhile are also kept in tail_.
    store_.pause_resize();
    for (std::size_t b = 0; compact_error_ == Error::ok && b < store_.bucket_count(); ++b) {
        store_.for_each_in_bucket(b, [&](const Entry& e) {
            if (compact_error_ != Error::ok || (e.expire_ns() != 0 && e.expire_ns() <= now_ns)) return;
            const std::size_t op = set_bytes(e.key().size(), e.value().size());
            if (snap_record_open_ && next_.buf.size() - snap_record_start_ - disk::record_header_bytes + op >
                                         snapshot_record_payload) {
                seal_snapshot_record();
            }
            const std::size_t open_bytes =
                static_cast<std::size_t>(next_.buf.size() - (next_.end - next_.base));
            const std::size_t add = op + (snap_record_open_ ? 0 : disk::record_header_bytes);
            if (next_.end + open_bytes + add + tail_.size() > next_.capacity) {
                abort_compaction(Error::no_space);
                return;
            }
            if (!next_.buf.reserve(next_.buf.size() + add + ss_)) {
                abort_compaction(Error::no_memory);
                return;
            }
            if (!snap_record_open_) {
                snap_record_start_ = next_.buf.size();
                (void)next_.buf.resize(snap_record_start_ + disk::record_header_bytes);
                snap_record_open_ = true;
            }
            const std::size_t at = next_.buf.size();
            (void)next_.buf.resize(at + op);
            encode_set(next_.buf.data() + at, e.key(), e.value(), e.expire_ns());
        });
        if (compact_error_ == Error::ok && next_.buf.size() >= chunk) {
            seal_snapshot_record();  // nothing may stay open across a suspension
            auto r = co_await write_stream(next_, compact_out_, false, nullptr);
            if (!r.ok()) fail(r.error(), "writing a log snapshot failed");
            if (failed_ != Error::ok) abort_compaction(failed_);
        }
    }
    seal_snapshot_record();
    store_.resume_resize();

    // 2. Take the write order from commit rounds (no new round starts meanwhile, or a steady
    //    stream of commits could starve the switch); no append can slip between the snapshot
    //    and the switch.
    switch_pending_ = compact_error_ == Error::ok;
    while (busy_ && compact_error_ == Error::ok && failed_ == Error::ok) {
        co_await round_.wait();
    }
    switch_pending_ = false;
    if (failed_ != Error::ok) abort_compaction(failed_);
    if (compact_error_ == Error::ok) {
        if (next_.end + tail_.size() > next_.capacity) {
            abort_compaction(Error::no_space);
        } else if (!next_.buf.append(tail_.data(), tail_.size()) ||
                   !next_.buf.reserve(next_.buf.size() + ss_)) {
            abort_compaction(Error::no_memory);
        }
    }
    if (compact_error_ != Error::ok) {
        const Error e = compact_error_;
        collect_tail_ = false;
        tail_.free();
        next_ = Stream{};
        compacting_ = false;
        ++compactions_aborted_;
        wake();  // commits held back for the switch
        co_return e;
    }
    busy_ = true;
    next_.end += tail_.size();
    tail_.free();
    collect_tail_ = false;
    switching_ = true;  // from here on, appends go to next_ (with its epoch)
    const std::uint64_t freeze = appended_lsn_;

    // 3. The new region durable, then the header naming it (in the older copy), flushed.
    std::uint64_t end = 0;
    auto r = co_await write_stream(next_, compact_out_, true, &end);
    disk::Header h = header_;
    h.epoch = next_.epoch;
    h.base_epoch = next_.epoch;
    h.active_region = next_.region;
    if (r.ok()) r = co_await write_header(h, 1 - header_slot_);
    if (r.ok()) r = co_await disk_.flush();
    if (!r.ok()) {
        fail(r.error(), "switching to the compacted log failed");
        busy_ = false;
        switching_ = false;
        compacting_ = false;
        wake();
        co_return r.error();
    }
    header_ = h;
    header_slot_ = 1 - header_slot_;
    const std::uint64_t old_first = cur_.first_sector;
    cur_ = static_cast<Stream&&>(next_);
    next_ = Stream{};
    cur_.durable = end;
    switching_ = false;
    if (freeze > durable_lsn_) durable_lsn_ = freeze;
    ++compactions_;
    busy_ = false;
    wake();

    // 4. The old region's contents are garbage now; let the device drop them if it can. The
    //    next compaction writes there, so it waits for this.
    if (disk_.geometry().discard) (void)co_await disk_.discard(old_first, header_.region_sectors);
    compacting_ = false;
    co_return Result<void>{};
}

LogStats Log::stats() const {
    LogStats s;
    s.epoch = header_.epoch;
    s.region = cur_.region;
    s.log_bytes = cur_.end;
    s.region_bytes = cur_.capacity;
    s.live_bytes = live_estimate();
    s.appended_lsn = appended_lsn_;
    s.durable_lsn = durable_lsn_;
    s.commits = commits_;
    s.bytes_written = bytes_written_;
    s.compactions = compactions_;
    s.compactions_aborted = compactions_aborted_;
    s.compacting = compacting_;
    s.replay = replay_;
    return s;
}

}  // namespace keel::kv

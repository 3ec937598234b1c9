// The fake blkback: the backend's half of io/blkif.h with Xen's ring macros, plus the checks it
// makes on the frontend.
#include "fakes/fake_blkback.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <xen/io/protocols.h>

namespace keel::test {

namespace {
constexpr std::size_t sector = 512;

}  // namespace

// ---- FakeBlkback: xenbus -------------------------------------------------------------------------

FakeBlkback::FakeBlkback(FakeXenstored& d, TestPlatform& platform, std::span<grant_entry_v1_t> grants,
                         std::string front, std::string back)
    : FakeBackend("blkfront", d, platform, grants, std::move(front), std::move(back)) {
    only_seen_refs = true;  // another disk shares the grant table
    handle_ = static_cast<std::uint16_t>(std::stoul(front_.substr(front_.rfind('/') + 1)) & 0xFFFF);
    persistent_frame_.assign(grants_.size(), 0);  // grant_page() refuses refs beyond it
}

void FakeBlkback::create(const DiskConfig& c) {
    config_ = c;
    created_ = true;
    disk_.assign(passive ? 0 : c.sectors512 * sector, std::byte{0});  // passive: it serves no data
    if (!passive) {  // the data path's lists, so that it allocates nothing
        segs_.reserve(16384);
        indirect_refs_.reserve(1024);
    }
    xb_.create_nodes();
    d_.set(front_ + "/virtual-device", front_.substr(front_.rfind('/') + 1));
    d_.set(front_ + "/device-type", "disk");
    // Transport parameters: published before InitWait (io/blkif.h "Startup").
    // (A create() after an earlier one replaces what that one wrote.)
    auto set_or_remove = [&](const char* k, bool present, long long v) {
        if (present) {
            d_.set(back_ + "/" + k, std::to_string(v));
        } else if (d_.get(back_ + "/" + k)) {
            d_.remove(back_ + "/" + k);
        }
    };
    set_or_remove("max-ring-page-order", c.max_ring_page_order >= 0, c.max_ring_page_order);
    set_or_remove("max-ring-pages", c.max_ring_pages > 0, c.max_ring_pages);
    set_or_remove("feature-max-indirect-segments", c.max_indirect_segments > 0, c.max_indirect_segments);
}

void FakeBlkback::write_properties() {
    // Linux's blkback, on the frontend's Initialised: decide persistent grants from both sides,
    // publish the disk, then (xb_) go Connected.
    persistent_ = config_.persistent && d_.get(front_ + "/feature-persistent") == "1";
    if (!config_.omit_sectors) {
        d_.set(back_ + "/sectors",
               config_.sectors_text ? config_.sectors_text : std::to_string(config_.sectors512));
    } else if (d_.get(back_ + "/sectors")) {
        d_.remove(back_ + "/sectors");
    }
    if (config_.sector_size) {
        d_.set(back_ + "/sector-size", std::to_string(config_.sector_size));
    } else if (d_.get(back_ + "/sector-size")) {
        d_.remove(back_ + "/sector-size");
    }
    d_.set(back_ + "/info", std::to_string(config_.info));
    d_.set(back_ + "/feature-flush-cache", config_.flush_cache ? "1" : "0");
    d_.set(back_ + "/feature-barrier", config_.barrier ? "1" : "0");
    d_.set(back_ + "/feature-discard", config_.discard ? "1" : "0");
    d_.set(back_ + "/feature-persistent", config_.persistent ? "1" : "0");
}

void FakeBlkback::before_xenbus() {
    // Linux's blkback publishes the disk when the frontend says Initialised, before Connected.
    if (d_.get(front_ + "/state") == state_value(XenbusState::initialised) && xb_.state() == XenbusState::init_wait) {
        write_properties();
    }
}

void FakeBlkback::map() {
    int offered = 0;
    if (config_.max_ring_page_order >= 0) {
        offered = config_.max_ring_page_order;
    } else if (config_.max_ring_pages > 0) {
        offered = __builtin_ctz(static_cast<unsigned>(config_.max_ring_pages));
    }
    unsigned order = 0;
    std::vector<grant_ref_t> refs;
    if (const auto o = key("ring-page-order")) {
        const auto n = number(o);
        if (!n || *n > 4) return violation("ring-page-order \"" + *o + "\"");
        order = static_cast<unsigned>(*n);
        if (static_cast<int>(order) > offered) violation("ring-page-order above what the backend offered");
        if (key("ring-ref")) violation("ring-ref written together with ring-page-order");
        if (const auto pages = key("num-ring-pages"); pages && number(pages) != (1ull << order)) {
            violation("num-ring-pages does not match ring-page-order");
        }
        for (unsigned i = 0; i < (1u << order); ++i) {
            const auto r = number(key("ring-ref" + std::to_string(i)));
            if (!r) return violation("ring-ref" + std::to_string(i) + " missing");
            refs.push_back(static_cast<grant_ref_t>(*r));
        }
    } else {
        const auto r = number(key("ring-ref"));
        if (!r) return violation("ring-ref missing");
        refs.push_back(static_cast<grant_ref_t>(*r));
    }
    const auto port = number(key("event-channel"));
    if (!port) return violation("event-channel missing or malformed");
    ch_ = platform_.channel(static_cast<std::uint32_t>(*port));
    if (!ch_) return violation("event channel not open");
    if (key("protocol") != XEN_IO_PROTO_ABI_X86_64) violation("protocol is not x86_64-abi");

    // Xen maps the ring for as long as the backend holds it: the entries show it in use. The
    // fake needs the pages contiguous in its own view (ours are; a real backend maps them so).
    std::byte* first = nullptr;
    for (std::size_t i = 0; i < refs.size(); ++i) {
        std::byte* p = grant_page(refs[i], true);
        if (!p) return;
        if (i == 0) first = p;
        if (p != first + i * page) return violation("ring pages are not in ring-ref order");
    }
    order_ = order;
    for (std::size_t i = 0; i < refs.size(); ++i) {
        ring_refs_[i] = refs[i];
        mark_mapped(refs[i]);
    }
    auto* s = reinterpret_cast<blkif_sring_t*>(first);
    // The frontend initialised the shared ring (io/ring.h, SHARED_RING_INIT) before publishing.
    if (s->req_prod != 0 || s->rsp_prod != 0 || s->req_event != 1 || s->rsp_event != 1) {
        violation("ring not initialised");
    }
    BACK_RING_INIT(&ring_, s, page << order);
    armed_ = false;
    jumped_ = false;
    forget_requests();
    answered_any_ = false;
    connected_now();
}

void FakeBlkback::forget_requests() {
    held_count_ = 0;
    pages_held_ = 0;
    segs_.clear();
    indirect_refs_.clear();
    persistent_map_.reset();
    persistent_count_ = 0;
}

void FakeBlkback::unmap() {
    mapped_ = false;
    if (!keep_mapped) {
        auto clear = [&](grant_ref_t r) { mark_unmapped(r); };
        for (unsigned i = 0; i < (1u << order_); ++i) clear(ring_refs_[i]);
        for (std::size_t r = 0; r < std::min(grants_.size(), persistent_map_.size()); ++r) {
            if (persistent_map_.test(r)) clear(static_cast<grant_ref_t>(r));
        }
        for (const auto& seg : segs_) clear(seg.gref);
        for (grant_ref_t r : indirect_refs_) clear(r);
    }
    ch_ = nullptr;
    forget_requests();
}

std::byte* FakeBlkback::use_grant(grant_ref_t ref, bool write) {
    // With persistent grants every grant is mapped writable (io/blkif.h, feature-persistent
    // note 8), once, and kept.
    std::byte* p = grant_page(ref, write || persistent_);
    if (!p) return nullptr;
    if (persistent_) {
        if (!persistent_map_.test(ref)) {
            persistent_map_.set(ref);
            persistent_frame_[ref] = grants_[ref].frame;
            ++persistent_count_;
            mark_mapped(ref);
        } else if (persistent_frame_[ref] != grants_[ref].frame) {
            violation("persistently mapped grant " + std::to_string(ref) + " was pointed at another frame");
        }
    } else {
        mark_mapped(ref, write);
    }
    return p;
}

void FakeBlkback::unuse_grant(grant_ref_t ref) {
    if (persistent_ || keep_mapped) return;
    mark_unmapped(ref);
}

// ---- FakeBlkback: the data path -------------------------------------------------------------------

void FakeBlkback::check_notify() {
    const RING_IDX prod = ring_.sring->req_prod;
    const RING_IDX event = ring_.sring->req_event;
    if (!armed_ || prod == seen_) return;
    if (static_cast<RING_IDX>(prod - event) < static_cast<RING_IDX>(prod - seen_) && !ch_->notified) {
        violation("requests pushed past req_event without a notification");
    }
}

FakeBlkback::Fault FakeBlkback::take_fault() {
    if (fault_times_ == 0) return Fault::none;
    if (fault_after_ > 0) {
        --fault_after_;
        return Fault::none;
    }
    const Fault f = fault_;
    if (--fault_times_ == 0) fault_ = Fault::none;
    return f;
}

void FakeBlkback::data_step() {
    if (!mapped_ || jumped_ || passive) return;
    check_notify();
    if (ring_.sring->req_prod != seen_) armed_ = false;  // checked; re-armed when idle again
    ch_->notified = false;
    bool pushed = false;
    for (;;) {
        const std::optional<RING_IDX> prod = requests_published(ring_, "");
        if (!prod) {
            jumped_ = true;
            return;
        }
        while (ring_.req_cons != *prod) {
            blkif_request_t req;
            std::memcpy(&req, RING_GET_REQUEST(&ring_, ring_.req_cons), sizeof req);
            ++ring_.req_cons;
            ++requests;
            for (std::size_t i = 0; i < held_count_; ++i) {
                if (held_[i].id == req.id)
                    violation("request id " + std::to_string(req.id) + " reused while in flight");
            }
            if (held_count_ == held_.size()) {
                violation("more requests in flight than any ring holds");
                continue;
            }
            Job& job = held_[held_count_];
            job.ok = parse(req, job);
            pages_held_ += job.nseg;
            max_pages_held = std::max(max_pages_held, pages_held_);
            if (hold) {
                ++held_count_;
                max_in_flight = std::max(max_in_flight, held_count_);
            } else {
                emit(job);
                if (held_count_ == 0) {
                    segs_.clear();
                    indirect_refs_.clear();
                }
                pushed = true;
                if (jumped_ || !mapped_) return;
            }
        }
        int more;
        RING_FINAL_CHECK_FOR_REQUESTS(&ring_, more);
        if (!more) break;
    }
    armed_ = true;
    seen_ = ring_.req_cons;
    if (pushed) push_responses(ring_, *ch_);
}

void FakeBlkback::release() {
    if (!mapped_ || jumped_) return;
    const std::size_t n = held_count_;
    held_count_ = 0;
    for (std::size_t i = 0; i < n; ++i) {
        emit(held_[i]);
        if (jumped_) return;
    }
    segs_.clear();
    indirect_refs_.clear();
    push_responses(ring_, *ch_);
}

bool FakeBlkback::parse(const blkif_request_t& req, Job& job) {
    job = Job{};
    job.id = req.id;
    job.first_seg = static_cast<std::uint32_t>(segs_.size());
    job.indirect_first = static_cast<std::uint32_t>(indirect_refs_.size());
    job.op = req.operation;
    const std::uint64_t ratio = (config_.sector_size ? config_.sector_size : 512) / sector;
    const bool read_only = (config_.info & VDISK_READONLY) != 0;
    bool ok = true;

    switch (req.operation) {
        case BLKIF_OP_READ:
        case BLKIF_OP_WRITE:
            if (req.nr_segments == 0 || req.nr_segments > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
                violation("a request of " + std::to_string(req.nr_segments) + " segments");
                return false;
            }
            job.sector = req.sector_number;
            job.nseg = req.nr_segments;
            for (unsigned i = 0; i < req.nr_segments; ++i) segs_.push_back(req.seg[i]);
            break;
        case BLKIF_OP_INDIRECT: {
            blkif_request_indirect_t ind;
            std::memcpy(&ind, &req, sizeof ind);
            ++indirect;
            if (config_.max_indirect_segments == 0)
                violation("BLKIF_OP_INDIRECT without feature-max-indirect-segments");
            if (ind.indirect_op != BLKIF_OP_READ && ind.indirect_op != BLKIF_OP_WRITE) {
                violation("indirect_op " + std::to_string(ind.indirect_op));
                return false;
            }
            if (ind.nr_segments == 0 || ind.nr_segments > config_.max_indirect_segments) {
                violation("an indirect request of " + std::to_string(ind.nr_segments) + " segments");
                return false;
            }
            if (ind.handle != handle_) violation("indirect request's handle is not virtual-device");
            job.op = ind.indirect_op;
            job.sector = ind.sector_number;
            job.nseg = ind.nr_segments;
            // io/blkif.h: ceil(segments / (PAGE_SIZE / sizeof(struct blkif_request_segment))) pages,
            // each an array of blkif_request_segment.
            constexpr std::size_t per_page = page / sizeof(blkif_request_segment);
            const std::size_t pages = (job.nseg + per_page - 1) / per_page;
            if (pages > BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST)
                return violation("too many indirect pages"), false;
            std::size_t left = job.nseg;
            for (std::size_t p = 0; p < pages; ++p) {
                const std::byte* table = use_grant(ind.indirect_grefs[p], false);
                if (!table) return false;
                indirect_refs_.push_back(ind.indirect_grefs[p]);
                job.indirect_count++;
                for (std::size_t i = 0; i < std::min(left, per_page); ++i) {
                    blkif_request_segment seg;
                    std::memcpy(&seg, table + i * sizeof seg, sizeof seg);
                    segs_.push_back(seg);
                }
                left -= std::min(left, per_page);
            }
            break;
        }
        case BLKIF_OP_FLUSH_DISKCACHE:
        case BLKIF_OP_WRITE_BARRIER:
            if (req.operation == BLKIF_OP_FLUSH_DISKCACHE && !config_.flush_cache)
                violation("flush without feature-flush-cache");
            if (req.operation == BLKIF_OP_WRITE_BARRIER && !config_.barrier)
                violation("barrier without feature-barrier");
            if (req.nr_segments != 0) violation("a flush carrying data");
            return true;
        case BLKIF_OP_DISCARD: {
            blkif_request_discard_t dis;
            std::memcpy(&dis, &req, sizeof dis);
            if (!config_.discard) violation("discard without feature-discard");
            if (read_only) violation("discard on a read-only disk");
            if (dis.sector_number > config_.sectors512 ||
                dis.nr_sectors > config_.sectors512 - dis.sector_number) {
                violation("discard beyond the disk");
                return false;
            }
            if (dis.sector_number % ratio != 0 || dis.nr_sectors % ratio != 0)
                violation("discard not in logical sectors");
            job.sector = dis.sector_number;
            job.count = dis.nr_sectors;
            return true;
        }
        default:
            violation("operation " + std::to_string(req.operation));
            return false;
    }

    // A read or write, direct or indirect: segments within their pages, sectors within the disk.
    if (job.op == BLKIF_OP_WRITE && read_only) violation("write to a read-only disk");
    if (req.operation != BLKIF_OP_INDIRECT && req.handle != handle_)
        violation("handle is not virtual-device");
    std::uint64_t total = 0;
    for (std::uint32_t i = 0; i < job.nseg; ++i) {
        const blkif_request_segment& s = segs_[job.first_seg + i];
        if (s.first_sect > s.last_sect || s.last_sect >= page / sector) {
            violation("segment sectors " + std::to_string(s.first_sect) + ".." + std::to_string(s.last_sect));
            ok = false;
            continue;
        }
        // Linux's blkback refuses segments that are not whole logical sectors.
        if (s.first_sect % ratio != 0 || (s.last_sect + 1u - s.first_sect) % ratio != 0) {
            violation("segment not in whole logical sectors");
        }
        total += s.last_sect + 1u - s.first_sect;
        if (!use_grant(s.gref, job.op == BLKIF_OP_READ)) ok = false;
    }
    max_segments = std::max<std::size_t>(max_segments, job.nseg);
    if (job.sector > config_.sectors512 || total > config_.sectors512 - job.sector) {
        violation("request beyond the disk (sector " + std::to_string(job.sector) + " + " +
                  std::to_string(total) + ")");
        ok = false;
    }
    if (job.sector % ratio != 0) violation("request not aligned to the logical sector");
    last_sector = job.sector;
    return ok;
}

void FakeBlkback::emit(const Job& job) {
    const Fault f = take_fault();
    std::int16_t status = job.ok ? BLKIF_RSP_OKAY : BLKIF_RSP_ERROR;
    if (job.ok) {
        std::uint64_t at = job.sector * sector;
        switch (job.op) {
            case BLKIF_OP_READ:
            case BLKIF_OP_WRITE:
                for (std::uint32_t i = 0; i < job.nseg; ++i) {
                    const blkif_request_segment& s = segs_[job.first_seg + i];
                    const std::size_t len = (s.last_sect + 1u - s.first_sect) * sector;
                    std::byte* p = grant_page(s.gref, job.op == BLKIF_OP_READ || persistent_);
                    if (p != nullptr) {
                        if (job.op == BLKIF_OP_READ) {
                            std::memcpy(p + s.first_sect * sector, disk_.data() + at, len);
                        } else {
                            std::memcpy(disk_.data() + at, p + s.first_sect * sector, len);
                        }
                    }
                    at += len;
                }
                if (job.op == BLKIF_OP_READ) {
                    ++reads;
                    sectors_read += (at - job.sector * sector) / sector;
                } else {
                    ++writes;
                    sectors_written += (at - job.sector * sector) / sector;
                }
                break;
            case BLKIF_OP_FLUSH_DISKCACHE:
                ++flushes;
                break;
            case BLKIF_OP_WRITE_BARRIER:
                ++barriers;
                break;
            case BLKIF_OP_DISCARD:
                ++discards;
                std::memset(disk_.data() + at, 0, job.count * sector);
                break;
            default:
                break;
        }
    }
    for (std::uint32_t i = 0; i < job.nseg && job.first_seg + i < segs_.size(); ++i)
        unuse_grant(segs_[job.first_seg + i].gref);
    for (std::uint32_t i = 0; i < job.indirect_count; ++i)
        unuse_grant(indirect_refs_[job.indirect_first + i]);
    pages_held_ -= std::min<std::size_t>(pages_held_, job.nseg);

    std::uint64_t id = job.id;
    // Linux's blkback echoes the data operation for an indirect request.
    std::uint8_t op = job.op;
    switch (f) {
        case Fault::unknown_id:
            id |= 0xABCD'0000'0000'0000ull;
            break;
        case Fault::not_in_flight:
            id += 100u << 16;
            break;
        case Fault::duplicate:
            if (answered_any_) id = last_id_;
            break;
        case Fault::bad_status:
            status = 7;
            break;
        case Fault::status_error:
            status = BLKIF_RSP_ERROR;
            break;
        case Fault::eopnotsupp:
            status = BLKIF_RSP_EOPNOTSUPP;
            break;
        case Fault::bad_operation:
            op = op == BLKIF_OP_READ ? BLKIF_OP_WRITE : BLKIF_OP_READ;
            break;
        default:
            break;
    }
    blkif_response_t* rsp = RING_GET_RESPONSE(&ring_, ring_.rsp_prod_pvt);
    rsp->id = id;
    rsp->operation = op;
    rsp->status = status;
    ++ring_.rsp_prod_pvt;
    last_id_ = id;
    answered_any_ = true;
    if (f == Fault::rsp_prod_jump) {
        int notify;
        RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&ring_, notify);
        (void)notify;  // the jump is signalled regardless
        __atomic_store_n(&ring_.sring->rsp_prod, ring_.sring->rsp_prod + 3 * RING_SIZE(&ring_),
                         __ATOMIC_RELEASE);
        jumped_ = true;
        ch_->fire();
    }
}

}  // namespace keel::test

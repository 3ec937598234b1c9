// Blkfront's data path: block API calls become ring requests over the pre-granted pages (data
// copied in and out), calls wait in FIFO order when the ring or the pages run out, and the
// responses come back validated, by id.
#include <algorithm>
#include <cstring>

#include "keel/blkfront/blkfront.h"
#include "keel/log.h"
#include "keel/panic.h"

namespace keel::blkfront {

namespace {

constexpr std::size_t sector_bytes = 512;  // the unit of every sector quantity on the ring

std::uint16_t pages_for(std::size_t bytes) {
    return static_cast<std::uint16_t>((bytes + page_size - 1) / page_size);
}

bool is_data_op(std::uint8_t op) { return op == BLKIF_OP_READ || op == BLKIF_OP_WRITE; }

}  // namespace

// ---- awaiting without allocating: the Op in the call's frame is the queue node and the wakeup

/// Completes when the call may put its next request on the ring: at once if there is room and
/// nobody queued before it, else when wake_waiters() reserved room for it. Error::closed if
/// the connection went down (before or while waiting).
struct Blkfront::RoomAwaiter {
    Op& op;
    bool await_ready() {
        Blkfront& d = op.dev;
        op.wait_error = Error::ok;
        if (!d.live() || d.epoch_ != op.epoch) {
            op.wait_error = d.down_error();
            return true;
        }
        return d.room_for(op);
    }
    void await_suspend(std::coroutine_handle<> h) {
        Blkfront& d = op.dev;
        d.push();  // what this call queued so far goes out before it waits for the rest
        ++d.stats_.waits;
        op.waiter = h;
        op.wait = Op::Wait::room;
        d.waiters_.push_back(op);
    }
    Result<void> await_resume() {
        op.wait = Op::Wait::none;
        Blkfront& d = op.dev;
        if (op.wait_error == Error::ok && (!d.live() || d.epoch_ != op.epoch)) op.wait_error = d.down_error();
        if (op.wait_error != Error::ok) {
            op.granted = false;  // go_down() dropped every reservation
            return op.wait_error;
        }
        return {};
    }
};

/// Completes when every request of the call has been answered (or failed).
struct Blkfront::DoneAwaiter {
    Op& op;
    bool await_ready() const { return op.pending == 0; }
    void await_suspend(std::coroutine_handle<> h) {
        op.waiter = h;
        op.wait = Op::Wait::done;
    }
    void await_resume() { op.wait = Op::Wait::none; }
};

Blkfront::Op::~Op() {
    // The call's task was destroyed with requests in flight: their completions must not write
    // into its buffer or count it.
    if (pending > 0) {
        for (Request& q : dev.requests_) {
            if (q.op == this) q.op = nullptr;
        }
    }
    if (granted && dev.live() && dev.epoch_ == epoch) {
        // Woken with room reserved, then destroyed before using it: give it to the next.
        --dev.reserved_requests_;
        dev.reserved_pages_ -= need_pages;
        if (need_indirect) --dev.reserved_indirect_;
        granted = false;
        dev.wake_waiters();
    }
    // ListNode's destructor leaves waiters_; Wakeup's withdraws a pending resume.
}

void Blkfront::op_part_done(Op& op, Error result) {
    if (result != Error::ok && op.error == Error::ok) op.error = result;
    KASSERT(op.pending > 0);
    if (--op.pending == 0 && op.wait == Op::Wait::done) loop().schedule(op.wakeup);
}

// ---- room --------------------------------------------------------------------------------------

bool Blkfront::fits(std::uint16_t pages, bool indirect) const {
    return request_free_count_ > reserved_requests_ && data_pool_.free_count >= reserved_pages_ + pages &&
           (!indirect || indirect_pool_.free_count > reserved_indirect_);
}

bool Blkfront::room_for(Op& op) { return waiters_.empty() && fits(op.need_pages, op.need_indirect); }

void Blkfront::wake_waiters() {
    if (!live()) return;
    // Strict FIFO: a large request at the head is not overtaken by small ones behind it.
    while (Op* w = waiters_.front()) {
        if (!fits(w->need_pages, w->need_indirect)) break;
        waiters_.pop_front();
        ++reserved_requests_;
        reserved_pages_ += w->need_pages;
        if (w->need_indirect) ++reserved_indirect_;
        w->granted = true;
        loop().schedule(w->wakeup);
    }
}

std::uint16_t Blkfront::pop_page(Page* pages, std::uint16_t* stack, Pool& pool) {
    KASSERT(pool.free_count > 0);
    const std::uint16_t i = stack[--pool.free_count];
    KASSERT(pages[i].state == PageState::free && pages[i].grant.valid());
    pages[i].state = PageState::busy;
    pages[i].next = none;
    return i;
}

void Blkfront::push_page(std::uint16_t i, std::uint16_t* stack, Pool& pool) { stack[pool.free_count++] = i; }

void Blkfront::reset_free_lists() {
    // LIFO stacks, lowest index on top: the same few pages serve a light load (io/blkif.h,
    // feature-persistent: "stores the persistently mapped grants in a LIFO queue").
    data_pool_.free_count = 0;
    for (std::uint16_t i = data_pool_.count; i-- > 0;) {
        if (data_[i].state == PageState::free && data_[i].grant.valid()) push_page(i, data_free_, data_pool_);
    }
    indirect_pool_.free_count = 0;
    for (std::uint16_t i = indirect_pool_.count; i-- > 0;) {
        if (indirect_[i].state == PageState::free && indirect_[i].grant.valid()) {
            push_page(i, indirect_free_, indirect_pool_);
        }
    }
    request_free_count_ = 0;
    const RING_IDX slots = ring_.attached() ? ring_.slots() : 0;
    for (RING_IDX i = slots; i-- > 0;) {
        if (!requests_[i].busy) request_free_[request_free_count_++] = static_cast<std::uint16_t>(i);
    }
}

// ---- the block API -----------------------------------------------------------------------------

Result<void> Blkfront::check_range(std::uint64_t sector, std::uint64_t count) const {
    if (geometry_.sector_size == 0) return Error::closed;  // never connected: no geometry yet
    if (sector > geometry_.sectors || count > geometry_.sectors - sector) return Error::invalid_argument;
    return {};
}

Result<void> Blkfront::check_writable(const char* what) {
    if (!geometry_.read_only) return {};
    ++stats_.refused_read_only;
    if (!read_only_logged_) {
        // Once per device: a service that keeps trying must not flood the console.
        KLOG_ERROR(
            "blkfront: %s: %s refused: the disk is read-only (backend info has VDISK_READONLY); "
            "further refusals are only counted",
            dev_.nodename().data(), what);
        read_only_logged_ = true;
    }
    return Error::permission;
}

Result<void> Blkfront::account(Result<void> r, std::uint8_t operation, std::uint64_t sectors) {
    if (!r) {
        ++stats_.errors;
        return r;
    }
    switch (operation) {
        case BLKIF_OP_READ:
            ++stats_.reads;
            stats_.sectors_read += sectors;
            break;
        case BLKIF_OP_WRITE:
            ++stats_.writes;
            stats_.sectors_written += sectors;
            break;
        case BLKIF_OP_DISCARD:
            ++stats_.discards;
            break;
        default:
            ++stats_.flushes;
            break;
    }
    return r;
}

Task<Result<void>> Blkfront::read(std::uint64_t sector, std::span<std::byte> out) {
    return transfer(BLKIF_OP_READ, sector, out.data(), nullptr, out.size());
}

Task<Result<void>> Blkfront::write(std::uint64_t sector, std::span<const std::byte> data) {
    return transfer(BLKIF_OP_WRITE, sector, nullptr, data.data(), data.size());
}

Task<Result<void>> Blkfront::flush() { return single(BLKIF_OP_FLUSH_DISKCACHE, 0, 0); }

Task<Result<void>> Blkfront::discard(std::uint64_t sector, std::uint64_t count) {
    return single(BLKIF_OP_DISCARD, sector, count);
}

// Each call runs on one connection; a resume in a new domain stops it with Error::again and it
// runs again, whole, on the next (the loops below: one coroutine frame per call, as before).

Result<void> Blkfront::not_resumed(Result<void> waited) {
    if (waited) return waited;
    ++stats_.errors;
    KLOG_WARN("blkfront: %s: no connection to the new backend after the resume (%s); the call fails",
              dev_.nodename().data(), to_string(waited.error()));
    return waited.error() == Error::timed_out ? Error::timed_out : Error::closed;
}

Task<Result<void>> Blkfront::transfer(std::uint8_t operation, std::uint64_t sector, std::byte* into,
                                      const std::byte* from, std::size_t bytes) {
    for (bool first = true;; first = false) {
        if (!first) ++stats_.reissued;
        if (!live() && resuming()) {
            if (Result<void> up = not_resumed(co_await wait_ready(options_.resume_wait_ns)); !up) co_return up;
        }
        const std::uint32_t size = geometry_.sector_size;
        Result<void> r = failed_             ? Result<void>(Error::io)
                         : size == 0         ? Result<void>(Error::closed)
                         : bytes % size != 0 ? Result<void>(Error::invalid_argument)
                                             : check_range(sector, bytes / size);
        if (r && operation == BLKIF_OP_WRITE) r = check_writable("write");
        if (r && !live()) r = Error::closed;
        if (!r || bytes == 0) co_return account(r, operation, 0);

        Op op(*this);
        op.read_into = into;
        op.epoch = epoch_;
        const std::size_t chunk_max = std::size_t{features_.segments_per_request} * page_size;
        const std::uint64_t first512 = sector << sector_shift_;
        for (std::size_t done = 0; done < bytes && op.error == Error::ok;) {
            const std::size_t n = std::min(chunk_max, bytes - done);
            op.need_pages = pages_for(n);
            op.need_indirect = op.need_pages > BLKIF_MAX_SEGMENTS_PER_REQUEST;
            Result<void> room = co_await RoomAwaiter{op};
            if (!room) {
                if (op.error == Error::ok) op.error = room.error();
                break;
            }
            issue(op, operation, first512 + done / sector_bytes, from ? from + done : nullptr, done, n);
            done += n;
        }
        push();
        co_await DoneAwaiter{op};
        if (op.error == Error::again) continue;
        co_return account(op.error == Error::ok ? Result<void>{} : Result<void>(op.error), operation,
                          bytes / size);
    }
}

Task<Result<void>> Blkfront::single(std::uint8_t operation, std::uint64_t sector, std::uint64_t count) {
    for (bool first = true;; first = false) {
        if (!first) ++stats_.reissued;
        if (!live() && resuming()) {
            if (Result<void> up = not_resumed(co_await wait_ready(options_.resume_wait_ns)); !up) co_return up;
        }
        Result<void> r = failed_                     ? Result<void>(Error::io)
                         : geometry_.sector_size == 0 ? Result<void>(Error::closed)
                                                      : Result<void>{};
        std::uint8_t ring_op = operation;
        if (operation == BLKIF_OP_DISCARD) {
            if (r) r = check_range(sector, count);
            if (r) r = check_writable("discard");
            if (r && !features_.discard) r = Error::not_supported;
        } else {
            // A flush: nothing to do on a read-only disk, or when the backend has no cache to
            // flush (it offers neither feature: writes are durable once completed).
            ring_op = features_.flush == FlushOp::write_barrier ? BLKIF_OP_WRITE_BARRIER
                                                                : BLKIF_OP_FLUSH_DISKCACHE;
            if (r && (geometry_.read_only || features_.flush == FlushOp::none)) {
                co_return account(live() ? Result<void>{} : Result<void>(Error::closed), operation, 0);
            }
        }
        if (r && !live()) r = Error::closed;
        if (!r || (operation == BLKIF_OP_DISCARD && count == 0)) co_return account(r, operation, 0);

        Op op(*this);
        op.epoch = epoch_;
        Result<void> room = co_await RoomAwaiter{op};
        if (room) {
            issue_single(op, ring_op, sector << sector_shift_, count << sector_shift_);
            push();
            co_await DoneAwaiter{op};
        } else if (op.error == Error::ok) {
            op.error = room.error();
        }
        if (op.error == Error::again) continue;
        co_return account(op.error == Error::ok ? Result<void>{} : Result<void>(op.error), operation, 0);
    }
}

// ---- requests ----------------------------------------------------------------------------------

namespace {

/// The room reserved for a woken call is now taken for real.
template <typename Op, typename Counter>
void take_reservation(Op& op, Counter& requests, Counter& pages, Counter& indirect) {
    if (!op.granted) return;
    op.granted = false;
    --requests;
    pages -= op.need_pages;
    if (op.need_indirect) --indirect;
}

/// Takes a free request slot for `op`: a new generation in its id, marked busy.
template <class Request, class Op>
Request& claim_request(Request* requests, const std::uint16_t* free, std::uint16_t& free_count, Op& op) {
    KASSERT(free_count > 0);
    const std::uint16_t index = free[--free_count];
    Request& q = requests[index];
    KASSERT(!q.busy);
    ++q.generation;
    q.id = static_cast<std::uint64_t>(q.generation) << 16 | index;
    q.busy = true;
    q.op = &op;
    return q;
}

}  // namespace

void Blkfront::issue(Op& op, std::uint8_t operation, std::uint64_t sector512, const std::byte* from,
                     std::size_t offset, std::size_t bytes) {
    take_reservation(op, reserved_requests_, reserved_pages_, reserved_indirect_);
    const std::uint16_t npages = pages_for(bytes);
    const bool indirect = npages > BLKIF_MAX_SEGMENTS_PER_REQUEST;
    KASSERT(npages > 0 && npages <= features_.segments_per_request && (!indirect || features_.indirect));

    auto& q = claim_request(requests_, request_free_, request_free_count_, op);
    q.offset = offset;
    q.bytes = static_cast<std::uint32_t>(bytes);
    q.inner_op = operation;
    q.operation = indirect ? BLKIF_OP_INDIRECT : operation;
    q.first_page = none;
    q.indirect_page = indirect ? pop_page(indirect_, indirect_free_, indirect_pool_) : none;

    blkif_request_t req{};
    std::byte* table = indirect ? indirect_[q.indirect_page].page : nullptr;
    std::uint16_t prev = none;
    for (std::uint16_t s = 0; s < npages; ++s) {
        const std::uint16_t p = pop_page(data_, data_free_, data_pool_);
        if (prev == none) {
            q.first_page = p;
        } else {
            data_[prev].next = p;
        }
        prev = p;
        const std::size_t len = std::min(page_size, bytes - s * page_size);
        if (from) std::memcpy(data_[p].page, from + s * page_size, len);
        // io/blkif.h, blkif_request_segment: first_sect..last_sect (inclusive, 512-byte units)
        // within the granted frame. Our data always starts at the top of the page.
        blkif_request_segment seg{};
        seg.gref = data_[p].grant.ref();
        seg.first_sect = 0;
        seg.last_sect = static_cast<std::uint8_t>(len / sector_bytes - 1);
        if (indirect) {
            // io/blkif.h, BLKIF_OP_INDIRECT: the indirect page is an array of
            // blkif_request_segment.
            std::memcpy(table + s * sizeof seg, &seg, sizeof seg);
        } else {
            req.seg[s] = seg;
        }
    }
    if (indirect) {
        blkif_request_indirect_t ind{};
        ind.operation = BLKIF_OP_INDIRECT;
        ind.indirect_op = operation;
        ind.nr_segments = npages;
        ind.id = q.id;
        ind.sector_number = sector512;
        ind.handle = handle_;
        ind.indirect_grefs[0] = indirect_[q.indirect_page].grant.ref();
        ring_.put(ind);
        ++stats_.indirect_requests;
    } else {
        req.operation = operation;
        req.nr_segments = static_cast<std::uint8_t>(npages);
        req.handle = handle_;
        req.id = q.id;
        req.sector_number = sector512;
        ring_.put(req);
    }
    ++op.pending;
    ++in_flight_;
    ++stats_.requests;
}

void Blkfront::issue_single(Op& op, std::uint8_t operation, std::uint64_t sector512, std::uint64_t count512) {
    take_reservation(op, reserved_requests_, reserved_pages_, reserved_indirect_);
    auto& q = claim_request(requests_, request_free_, request_free_count_, op);
    q.offset = 0;
    q.bytes = 0;
    q.operation = q.inner_op = operation;
    q.first_page = q.indirect_page = none;
    if (operation == BLKIF_OP_DISCARD) {
        // io/blkif.h, blkif_request_discard: a sector range, no segments; no secure erase.
        blkif_request_discard_t d{};
        d.operation = BLKIF_OP_DISCARD;
        d.flag = 0;
        d.handle = handle_;
        d.id = q.id;
        d.sector_number = sector512;
        d.nr_sectors = count512;
        ring_.put(d);
    } else {
        // A flush or barrier with no data: it covers every write completed before it.
        blkif_request_t req{};
        req.operation = operation;
        req.nr_segments = 0;
        req.handle = handle_;
        req.id = q.id;
        req.sector_number = 0;
        ring_.put(req);
    }
    ++op.pending;
    ++in_flight_;
    ++stats_.requests;
}

void Blkfront::push() {
    if (live() && ring_.push()) channel_->notify();
}

// ---- responses ---------------------------------------------------------------------------------

void Blkfront::on_event() {
    if (live()) poll();
}

bool Blkfront::drain_step() {
    if (!live() || in_flight_ == 0) return false;
    push();
    channel_->wait();  // a second at most
    poll();
    return live() && in_flight_ > 0;
}

void Blkfront::poll() {
    for (;;) {
        const Result<RING_IDX> avail = ring_.unconsumed();
        if (!avail) {
            ++stats_.ring_overrun;
            request_reset("rsp_prod beyond the requests made", Error::protocol);
            return;
        }
        for (RING_IDX i = 0; i < *avail; ++i) {
            take_response(ring_.response(i));
            if (!live()) return;  // reset: the ring is left alone from here on
        }
        ring_.consume(*avail);
        if (!ring_.final_check()) break;
    }
    // Every response takes one request's slot. More requests in flight than slots still
    // unanswered: responses under wrong ids took the places of some, which will never come.
    if (in_flight_ > ring_.outstanding()) {
        stats_.lost += in_flight_ - ring_.outstanding();
        request_reset("responses lost (answered under wrong ids)", Error::protocol);
        return;
    }
    wake_waiters();
}

void Blkfront::take_response(const blkif_response_t& rsp) {
    const char* name = dev_.nodename().data();
    // io/blkif.h, blkif_response.id: "copied from request" -- one of ours, in flight, once.
    const std::uint64_t id = rsp.id;
    const std::uint64_t index = id & 0xFFFF;
    if ((id >> 32) != 0 || index >= ring_.slots()) {
        ++stats_.unknown_id;
        KLOG_WARN("blkfront: %s: response with unknown id %#llx", name, static_cast<unsigned long long>(id));
        protocol_error();
        return;
    }
    Request& q = requests_[index];
    if (!q.busy || q.id != id) {
        if (id == q.last_id) {
            ++stats_.duplicate;
        } else {
            ++stats_.not_in_flight;
        }
        KLOG_WARN("blkfront: %s: response for id %#llx, which is not in flight", name,
                  static_cast<unsigned long long>(id));
        protocol_error();
        return;
    }

    Error result = Error::ok;
    bool fault = false;
    // io/blkif.h, blkif_response.operation: "copied from request". For an indirect request
    // the data operation or BLKIF_OP_INDIRECT itself.
    if (rsp.operation != q.operation && rsp.operation != q.inner_op) {
        ++stats_.bad_operation;
        result = Error::protocol;
        fault = true;
    } else {
        switch (rsp.status) {
            case BLKIF_RSP_OKAY:
                break;
            case BLKIF_RSP_ERROR:
                ++stats_.backend_error;
                result = Error::io;
                break;
            case BLKIF_RSP_EOPNOTSUPP:
                // io/blkif.h: flush, barrier and discard "may still be returned at any time with
                // BLKIF_RSP_EOPNOTSUPP"; reads and writes may not.
                if (!is_data_op(q.inner_op)) {
                    ++stats_.not_supported;
                    result = Error::not_supported;
                    if (q.inner_op == BLKIF_OP_DISCARD && features_.discard) {
                        KLOG_WARN("blkfront: %s: backend refused a discard; discard turned off", name);
                        features_.discard = false;
                        geometry_.discard = false;
                    }
                    break;
                }
                [[fallthrough]];
            default:
                ++stats_.bad_status;
                result = Error::protocol;
                fault = true;
                break;
        }
    }
    if (fault) {
        KLOG_WARN("blkfront: %s: bad response to request %#llx (operation %u, status %d)", name,
                  static_cast<unsigned long long>(id), rsp.operation, rsp.status);
    }
    finish(q, result);
    if (fault) {
        protocol_error();
    } else {
        good_response();
    }
}

void Blkfront::finish(Request& q, Error result) {
    if (q.op != nullptr) {
        Op& op = *q.op;
        q.op = nullptr;
        if (result == Error::ok && q.inner_op == BLKIF_OP_READ && op.read_into != nullptr) {
            // Copy out of the granted pages now; the backend has finished with them.
            std::size_t at = 0;
            for (std::uint16_t p = q.first_page; p != none && at < q.bytes; p = data_[p].next) {
                const std::size_t len = std::min<std::size_t>(page_size, q.bytes - at);
                std::memcpy(op.read_into + q.offset + at, data_[p].page, len);
                at += len;
            }
        }
        op_part_done(op, result);
    }
    for (std::uint16_t p = q.first_page; p != none;) {
        const std::uint16_t next = data_[p].next;
        data_[p].state = PageState::free;
        data_[p].next = none;
        push_page(p, data_free_, data_pool_);
        p = next;
    }
    if (q.indirect_page != none) {
        indirect_[q.indirect_page].state = PageState::free;
        push_page(q.indirect_page, indirect_free_, indirect_pool_);
    }
    q.first_page = q.indirect_page = none;
    q.busy = false;
    q.last_id = q.id;
    request_free_[request_free_count_++] = static_cast<std::uint16_t>(&q - requests_);
    --in_flight_;
}

}  // namespace keel::blkfront

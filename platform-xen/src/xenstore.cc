// XenStore client: request staging and the request ring, reply assembly and validation, watches.
// The wire format is io/xs_wire.h (struct xsd_sockmsg + payload); the ring rules are those of
// struct xenstore_domain_interface in the same header.
#include "keel/xen/xenstore.h"

#include <stdint.h>

#include <cstring>
#include <utility>

#include <xen/io/xs_wire.h>

namespace keel::xen {

// The shared structures as io/xs_wire.h lays them out.
static_assert(sizeof(xsd_sockmsg) == 16);
static_assert(XENSTORE_RING_SIZE == 1024 && XENSTORE_PAYLOAD_MAX == 4096);
static_assert(sizeof(xenstore_domain_interface) == 2076);
static_assert(offsetof(xenstore_domain_interface, rsp) == 1024);
static_assert(offsetof(xenstore_domain_interface, req_cons) == 2048);
static_assert(offsetof(xenstore_domain_interface, req_prod) == 2052);
static_assert(offsetof(xenstore_domain_interface, rsp_cons) == 2056);
static_assert(offsetof(xenstore_domain_interface, rsp_prod) == 2060);
static_assert((XenStore::staging_bytes & (XenStore::staging_bytes - 1)) == 0);
static_assert(XenStore::staging_bytes >= std::size_t{2} * (16 + XENSTORE_PAYLOAD_MAX));

namespace {

constexpr std::uint32_t ring_size = XENSTORE_RING_SIZE;
constexpr std::uint32_t staging_mask = XenStore::staging_bytes - 1;

// The other end's index: read it before touching the bytes it describes.
std::uint32_t load_acquire(const volatile std::uint32_t* index) {
    return __atomic_load_n(index, __ATOMIC_ACQUIRE);
}
// Our index: every byte it covers is written (or read) before the other end can see it.
void store_release(volatile std::uint32_t* index, std::uint32_t value) {
    __atomic_store_n(index, value, __ATOMIC_RELEASE);
}

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

bool valid_path(std::string_view path) { return !path.empty() && !has_nul(path); }

// Payloads that end in one NUL are compared without it.
std::string_view strip_nul(std::string_view s) {
    if (!s.empty() && s.back() == '\0') s.remove_suffix(1);
    return s;
}

// The reply to every request that only acknowledges: "OK" with its NUL.
bool is_ack(std::string_view payload) { return strip_nul(payload) == "OK"; }

Result<std::uint32_t> parse_tx_id(std::string_view payload) {
    std::string_view digits = strip_nul(payload);
    if (digits.empty() || digits.size() > 10) return Error::protocol;
    std::uint64_t v = 0;
    for (char c : digits) {
        if (c < '0' || c > '9') return Error::protocol;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (v == 0 || v > 0xffffffffu) return Error::protocol;
    return static_cast<std::uint32_t>(v);
}

constexpr char hex_digits[] = "0123456789abcdef";

void put_hex(char* out, std::uint32_t v, int digits) {
    for (int i = digits - 1; i >= 0; --i) {
        out[i] = hex_digits[v & 0xf];
        v >>= 4;
    }
}

bool get_hex(std::string_view s, std::uint32_t& v) {
    v = 0;
    for (char c : s) {
        std::uint32_t d;
        if (c >= '0' && c <= '9') {
            d = static_cast<std::uint32_t>(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            d = static_cast<std::uint32_t>(c - 'a' + 10);
        } else {
            return false;
        }
        v = (v << 4) | d;
    }
    return true;
}

// Watch tokens name the slot and its generation: "keel:SS:GGGGGGGG".
constexpr std::string_view token_prefix = "keel:";

bool parse_token(std::string_view token, std::uint32_t& slot, std::uint32_t& generation) {
    if (token.size() != 16 || std::string_view(token.data(), 5) != token_prefix || token[7] != ':')
        return false;
    return get_hex({token.data() + 5, 2}, slot) && get_hex({token.data() + 8, 8}, generation) &&
           slot < XenStore::max_watches && generation != 0;
}

}  // namespace

Error error_from_xs(std::string_view xs_error) {
    std::string_view e = xs_error;
    if (const std::size_t nul = e.find('\0'); nul != std::string_view::npos) e.remove_suffix(e.size() - nul);
    if (e == "ENOENT") return Error::not_found;
    if (e == "EACCES" || e == "EPERM" || e == "EROFS") return Error::permission;
    if (e == "EAGAIN") return Error::again;
    if (e == "EEXIST") return Error::exists;
    if (e == "EINVAL") return Error::invalid_argument;
    if (e == "E2BIG" || e == "ENOSPC") return Error::no_space;
    if (e == "EBUSY") return Error::busy;
    if (e == "ENOMEM") return Error::no_memory;
    return Error::io;
}

// ---- DirList ---------------------------------------------------------------------------------

Result<DirList> DirList::parse(std::string_view payload) {
    if (payload.empty()) return DirList{};
    if (payload.back() != '\0') return Error::protocol;
    std::size_t count = 0;
    std::size_t start = 0;
    for (std::size_t i = 0; i < payload.size(); ++i) {
        if (payload[i] != '\0') continue;
        if (i == start) return Error::protocol;  // an empty name
        ++count;
        start = i + 1;
    }
    return DirList{payload, count};
}

std::string_view DirList::Iterator::operator*() const {
    const char* q = p_;
    while (q < end_ && *q != '\0') ++q;
    return {p_, static_cast<std::size_t>(q - p_)};
}

DirList::Iterator& DirList::Iterator::operator++() {
    while (p_ < end_ && *p_ != '\0') ++p_;
    if (p_ < end_) ++p_;  // past the NUL
    return *this;
}

// ---- Construction and submission ---------------------------------------------------------

XenStore::XenStore(volatile xenstore_domain_interface* ring, EventChannel& evtchn)
    : ring_(ring),
      evtchn_(evtchn),
      // Continue from wherever the page's indices stand (fresh pages start at 0).
      req_prod_(ring->req_prod),
      rsp_cons_(ring->rsp_cons) {}

Result<std::uint32_t> XenStore::submit(std::uint32_t type, Tx tx, std::span<const Part> parts,
                                       Completion& done) {
    std::size_t len = 0;
    for (const Part& p : parts) {
        // An argument that ends in a NUL on the wire cannot contain one.
        if (p.nul && has_nul(p.bytes)) return Error::invalid_argument;
        len += p.bytes.size() + (p.nul ? 1 : 0);
    }
    // xs_wire.h: "Violating this is very bad" -- checked before anything touches the ring.
    if (len > payload_max) return Error::no_space;
    if (queue_count_ == max_queued) return Error::no_space;
    const std::uint32_t size = static_cast<std::uint32_t>(header_size + len);
    if (staging_bytes - staging_used_ < size) return Error::no_space;

    const std::uint32_t id = next_req_id_++;
    if (next_req_id_ == 0) next_req_id_ = 1;

    const std::uint32_t at = (staging_head_ + staging_used_) & staging_mask;
    std::uint32_t pos = at;
    auto put = [&](const char* bytes, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            staging_[pos] = bytes[i];
            pos = (pos + 1) & staging_mask;
        }
    };
    xsd_sockmsg h{type, id, tx, static_cast<std::uint32_t>(len)};
    char raw[header_size];
    std::memcpy(raw, &h, header_size);
    put(raw, header_size);
    for (const Part& p : parts) {
        put(p.bytes.data(), p.bytes.size());
        if (p.nul) put("", 1);
    }

    Request& r = queue_[(queue_head_ + queue_count_) % max_queued];
    r.req_id = id;
    r.type = type;
    r.size = size;
    r.sent = 0;
    r.staged_at = at;
    r.completed = false;
    r.done = std::move(done);
    ++queue_count_;
    staging_used_ += size;
    ++stats_.requests;
    pump_requests();
    return id;
}

void XenStore::submit_or_defer(std::uint32_t type, Tx tx, std::span<const Part> parts, Completion done) {
    auto id = submit(type, tx, parts, done);
    if (!id) defer(std::move(done), id.error());
}

void XenStore::defer(Completion done, Error error) {
    if (!done) return;
    if (deferred_count_ == max_deferred) {
        // Last resort, only when the caller piled up more refused requests than we can hold
        // without an on_event() in between: better a re-entrant callback than a lost one.
        Reply reply;
        reply.error = error;
        done(reply);
        return;
    }
    Deferred& d = deferred_[(deferred_head_ + deferred_count_) % max_deferred];
    d.error = error;
    d.done = std::move(done);
    ++deferred_count_;
    if (wakeup_ && !wakeup_requested_) {
        wakeup_requested_ = true;
        wakeup_();
    }
}

void XenStore::deliver_deferred() {
    // Only what is queued now: a callback that resubmits and is refused again waits for the next
    // on_event() instead of spinning here.
    for (std::size_t n = deferred_count_; n > 0 && deferred_count_ > 0; --n) {
        Deferred& d = deferred_[deferred_head_];
        Completion done = std::move(d.done);
        Reply reply;
        reply.error = d.error;
        deferred_head_ = (deferred_head_ + 1) % max_deferred;
        --deferred_count_;
        done(reply);
    }
}

void XenStore::cancel(std::uint32_t req_id) {
    for (std::size_t i = 0; i < queue_count_; ++i) {
        Request& r = queue_[(queue_head_ + i) % max_queued];
        if (r.req_id != req_id || r.completed) continue;
        r.done.reset();
        r.completed = true;
        if (r.sent > 0) remember_abandoned(req_id);
    }
    pump_requests();
}

void XenStore::pop_head() {
    Request& r = head();
    staging_head_ = (staging_head_ + r.size) & staging_mask;
    staging_used_ -= r.size;
    r.done.reset();
    queue_head_ = (queue_head_ + 1) % max_queued;
    --queue_count_;
}

void XenStore::fail_all_queued() {
    // xenstored moved req_cons beyond what we produced: the request ring cannot be trusted any
    // more, so nothing queued can be delivered (nor answered). Fail it all.
    ++stats_.errors;
    while (queue_count_ > 0) {
        Request& q = head();
        if (!q.completed) {
            if (q.sent > 0) remember_abandoned(q.req_id);
            q.completed = true;
            defer(std::move(q.done), Error::protocol);
        }
        pop_head();
    }
}

void XenStore::pump_requests() {
    if (queue_count_ == 0) return;
    // Checked even when there is nothing to write, so a request waiting for its reply does not
    // wait forever on a daemon that has wrecked the request ring.
    if (req_prod_ - load_acquire(&ring_->req_cons) > ring_size) return fail_all_queued();
    while (queue_count_ > 0) {
        Request& r = head();
        if (r.completed && r.sent == 0) {  // failed or abandoned before a byte went out
            pop_head();
            continue;
        }
        if (r.sent < r.size) {
            if (!write_head(r)) return fail_all_queued();
            if (r.sent < r.size) return;  // ring full: xenstored signals when it consumed
        }
        if (!r.completed) return;  // sent; one request in flight at a time
        pop_head();                // an abandoned request whose last bytes just went out
    }
}

bool XenStore::write_head(Request& r) {
    // xs_wire.h ring rule, producer side: read req_cons before writing into the space it frees.
    const std::uint32_t cons = load_acquire(&ring_->req_cons);
    const std::uint32_t used = req_prod_ - cons;
    if (used > ring_size) return false;
    std::uint32_t n = ring_size - used;
    if (n > r.size - r.sent) n = r.size - r.sent;
    if (n == 0) return true;
    for (std::uint32_t i = 0; i < n; ++i) {
        ring_->req[MASK_XENSTORE_IDX(req_prod_ + i)] = staging_[(r.staged_at + r.sent + i) & staging_mask];
    }
    req_prod_ += n;
    r.sent += n;
    // xs_wire.h: the request bytes are visible before the req_prod that covers them.
    store_release(&ring_->req_prod, req_prod_);
    evtchn_.notify();
    return true;
}

// ---- Replies -----------------------------------------------------------------------------

void XenStore::on_event() {
    if (in_event_) return;  // a callback called us: the outer call finishes the work
    in_event_ = true;
    wakeup_requested_ = false;
    deliver_deferred();
    process_replies();
    flush_unwatches();
    flush_rewatches();
    pump_requests();
    deliver_deferred();
    in_event_ = false;
}

void XenStore::process_replies() {
    // xs_wire.h ring rule, consumer side: read rsp_prod, then the bytes below it.
    const std::uint32_t prod = load_acquire(&ring_->rsp_prod);
    if (prod - rsp_cons_ > ring_size) {
        // More unread bytes than the ring holds: the index is garbage.
        ++stats_.errors;
        discard_response_ring(prod);
        fail_outstanding(Error::protocol);
        return;
    }
    const std::uint32_t start = rsp_cons_;
    // Only what was produced before we looked: xenstored signals again for anything later.
    while (rsp_cons_ != prod) {
        if (header_got_ < header_size) {
            while (header_got_ < header_size && rsp_cons_ != prod) {
                header_[header_got_++] = static_cast<unsigned char>(ring_->rsp[MASK_XENSTORE_IDX(rsp_cons_)]);
                ++rsp_cons_;
            }
            if (header_got_ < header_size) break;
            xsd_sockmsg h;
            std::memcpy(&h, header_, header_size);
            if (h.len > payload_max || h.type >= XS_TYPE_COUNT) {
                // The framing is lost: we cannot tell where the next message starts.
                ++stats_.errors;
                discard_response_ring(prod);
                fail_outstanding(Error::protocol);
                return;
            }
            msg_type_ = h.type;
            msg_req_id_ = h.req_id;
            msg_len_ = h.len;
            body_got_ = 0;
        }
        while (body_got_ < msg_len_ && rsp_cons_ != prod) {
            body_[body_got_++] = ring_->rsp[MASK_XENSTORE_IDX(rsp_cons_)];
            ++rsp_cons_;
        }
        if (body_got_ < msg_len_) break;
        body_[msg_len_] = '\0';
        header_got_ = 0;
        // xs_wire.h: the bytes are copied out before rsp_cons releases them; hand the space back
        // before running callbacks, which may take a while.
        store_release(&ring_->rsp_cons, rsp_cons_);
        dispatch_message();
    }
    store_release(&ring_->rsp_cons, rsp_cons_);
    if (rsp_cons_ != start) evtchn_.notify();  // xenstored may be waiting for space
}

void XenStore::discard_response_ring(std::uint32_t prod) {
    rsp_cons_ = prod;
    header_got_ = 0;
    body_got_ = 0;
    store_release(&ring_->rsp_cons, rsp_cons_);
    evtchn_.notify();
}

void XenStore::dispatch_message() {
    const std::string_view payload(body_, msg_len_);
    if (msg_type_ == XS_WATCH_EVENT) {
        handle_watch_event(payload);
        return;
    }
    const bool outstanding = queue_count_ > 0 && !head().completed && head().sent > 0;
    if (outstanding && msg_req_id_ == head().req_id) {
        ++stats_.replies;
        const std::uint32_t want = head().type;
        Reply reply;
        if (msg_type_ == XS_ERROR) {
            reply.error = error_from_xs(payload);
        } else if (msg_type_ != want) {
            reply.error = Error::protocol;
        } else {
            parse_payload(want, payload, reply);
        }
        if (reply.error == Error::protocol) ++stats_.errors;
        complete_head(reply);
        return;
    }
    if (take_abandoned(msg_req_id_)) return;  // the late reply to a request we gave up on
    ++stats_.errors;                          // a reply to nothing we asked
    fail_outstanding(Error::protocol);
}

void XenStore::parse_payload(std::uint32_t type, std::string_view payload, Reply& reply) {
    switch (type) {
        case XS_READ:
            reply.payload = payload;
            return;
        case XS_DIRECTORY: {
            auto dir = DirList::parse(payload);
            if (!dir) {
                reply.error = dir.error();
                return;
            }
            reply.dir = *dir;
            return;
        }
        case XS_TRANSACTION_START: {
            auto tx = parse_tx_id(payload);
            if (!tx) {
                reply.error = tx.error();
                return;
            }
            reply.tx = *tx;
            return;
        }
        default:  // every other request is answered with "OK"
            if (!is_ack(payload)) reply.error = Error::protocol;
            return;
    }
}

void XenStore::fail_outstanding(Error error) {
    if (queue_count_ == 0) return;
    Request& r = head();
    if (r.completed || r.sent == 0) return;
    remember_abandoned(r.req_id);
    Reply reply;
    reply.error = error;
    complete_head(reply);
}

void XenStore::complete_head(Reply reply) {
    Request& r = head();
    Completion done = std::move(r.done);
    r.completed = true;
    // A request failed before all of it went out keeps its place until its last byte is
    // written: the request stream must stay framed for xenstored.
    if (r.sent == r.size) pop_head();
    if (done) done(reply);
}

void XenStore::remember_abandoned(std::uint32_t req_id) {
    abandoned_[abandoned_next_] = req_id;
    abandoned_next_ = (abandoned_next_ + 1) % max_abandoned;
}

bool XenStore::take_abandoned(std::uint32_t req_id) {
    if (req_id == 0) return false;
    for (std::uint32_t& a : abandoned_) {
        if (a == req_id) {
            a = 0;
            return true;
        }
    }
    return false;
}

// ---- Requests ----------------------------------------------------------------------------

namespace {
// Hands the caller's callback, if it has one, the reply's error or else `value`.
template <typename Cb, typename T>
void deliver(Cb& cb, Error error, T&& value) {
    if (!cb) return;
    if (error != Error::ok) {
        cb(error);
    } else {
        cb(std::forward<T>(value));
    }
}
}  // namespace

void XenStore::read(std::string_view path, Function<void(Result<std::string_view>)> done, Tx tx) {
    Completion c = [cb = std::move(done)](const Reply& r) mutable { deliver(cb, r.error, r.payload); };
    if (!valid_path(path)) return defer(std::move(c), Error::invalid_argument);
    const Part parts[] = {{path, true}};
    submit_or_defer(XS_READ, tx, parts, std::move(c));
}

namespace {
// Completion for every request whose reply is only "OK".
template <typename Cb>
auto ack_completion(Cb cb) {
    return [cb = std::move(cb)](const auto& r) mutable { deliver(cb, r.error, Result<void>{}); };
}
}  // namespace

void XenStore::write(std::string_view path, std::string_view value, Function<void(Result<void>)> done,
                     Tx tx) {
    Completion c = ack_completion(std::move(done));
    if (!valid_path(path)) return defer(std::move(c), Error::invalid_argument);
    // xs_wire.h / docs/misc/xenstore.txt: WRITE <path>|<value> -- the value has no NUL.
    const Part parts[] = {{path, true}, {value, false}};
    submit_or_defer(XS_WRITE, tx, parts, std::move(c));
}

void XenStore::mkdir(std::string_view path, Function<void(Result<void>)> done, Tx tx) {
    Completion c = ack_completion(std::move(done));
    if (!valid_path(path)) return defer(std::move(c), Error::invalid_argument);
    const Part parts[] = {{path, true}};
    submit_or_defer(XS_MKDIR, tx, parts, std::move(c));
}

void XenStore::remove(std::string_view path, Function<void(Result<void>)> done, Tx tx) {
    Completion c = ack_completion(std::move(done));
    if (!valid_path(path)) return defer(std::move(c), Error::invalid_argument);
    const Part parts[] = {{path, true}};
    submit_or_defer(XS_RM, tx, parts, std::move(c));
}

void XenStore::directory(std::string_view path, Function<void(Result<DirList>)> done, Tx tx) {
    Completion c = [cb = std::move(done)](const Reply& r) mutable { deliver(cb, r.error, r.dir); };
    if (!valid_path(path)) return defer(std::move(c), Error::invalid_argument);
    const Part parts[] = {{path, true}};
    submit_or_defer(XS_DIRECTORY, tx, parts, std::move(c));
}

void XenStore::transaction_start(Function<void(Result<Tx>)> done) {
    Completion c = [cb = std::move(done)](const Reply& r) mutable { deliver(cb, r.error, r.tx); };
    // The argument is an empty string: the payload is one NUL.
    const Part parts[] = {{{}, true}};
    submit_or_defer(XS_TRANSACTION_START, 0, parts, std::move(c));
}

void XenStore::transaction_end(Tx tx, bool commit, Function<void(Result<void>)> done) {
    Completion c = ack_completion(std::move(done));
    if (tx == 0) return defer(std::move(c), Error::invalid_argument);
    const Part parts[] = {{commit ? "T" : "F", true}};
    submit_or_defer(XS_TRANSACTION_END, tx, parts, std::move(c));
}

// ---- Blocking helpers for early boot -------------------------------------------------------

Result<void> XenStore::wait_sync(const bool& done, std::uint32_t req_id) {
    for (unsigned i = 0;; ++i) {
        on_event();
        if (done) return {};
        if (i == sync_attempts) break;
        evtchn_.wait();
    }
    cancel(req_id);  // the completion points into our caller's frame
    return Error::timed_out;
}

Result<std::size_t> XenStore::read_sync(std::string_view path, std::span<char> out) {
    if (in_event_) return Error::busy;
    if (!valid_path(path)) return Error::invalid_argument;
    struct State {
        bool done = false;
        Error error = Error::ok;
        std::size_t len = 0;
        std::span<char> out;
    } st;
    st.out = out;
    Completion c = [&st](const Reply& r) {
        st.done = true;
        st.error = r.error;
        if (r.error != Error::ok) return;
        if (r.payload.size() > st.out.size()) {
            st.error = Error::no_space;
            return;
        }
        std::memcpy(st.out.data(), r.payload.data(), r.payload.size());
        st.len = r.payload.size();
    };
    const Part parts[] = {{path, true}};
    const std::uint32_t id = TRY(submit(XS_READ, 0, parts, c));
    TRY_VOID(wait_sync(st.done, id));
    if (st.error != Error::ok) return st.error;
    return st.len;
}

Result<void> XenStore::write_sync(std::string_view path, std::string_view value) {
    if (in_event_) return Error::busy;
    if (!valid_path(path)) return Error::invalid_argument;
    bool done = false;
    Error error = Error::ok;
    Completion c = [&done, &error](const Reply& r) {
        done = true;
        error = r.error;
    };
    const Part parts[] = {{path, true}, {value, false}};
    const std::uint32_t id = TRY(submit(XS_WRITE, 0, parts, c));
    TRY_VOID(wait_sync(done, id));
    if (error != Error::ok) return error;
    return {};
}

// ---- Watches -----------------------------------------------------------------------------

void XenStore::make_token(std::uint32_t slot, std::uint32_t generation, char* out) const {
    std::memcpy(out, token_prefix.data(), token_prefix.size());
    put_hex(out + 5, slot, 2);
    out[7] = ':';
    put_hex(out + 8, generation, 8);
}

Result<WatchId> XenStore::watch(std::string_view path, Function<void(std::string_view path)> on_change,
                                Function<void(Result<void>)> registered) {
    if (!valid_path(path)) return Error::invalid_argument;
    if (path.size() > max_watch_path) return Error::no_space;
    std::uint32_t slot = 0;
    while (slot < max_watches && watches_[slot].state != SlotState::free) ++slot;
    if (slot == max_watches) return Error::no_space;

    WatchSlot& w = watches_[slot];
    std::uint32_t generation = w.generation + 1;
    if (generation == 0) generation = 1;
    char token[token_len];
    make_token(slot, generation, token);

    // The slot is live before XS_WATCH goes out: xenstored may fire before it acknowledges.
    w.state = SlotState::active;
    w.generation = generation;
    w.path_len = static_cast<std::uint16_t>(path.size());
    std::memcpy(w.path, path.data(), path.size());
    w.on_change = std::move(on_change);
    w.registered = std::move(registered);

    Completion c = [this, slot, generation](const Reply& r) {
        WatchSlot& s = watches_[slot];
        if (s.generation != generation) return;  // slot reused since
        auto cb = std::move(s.registered);
        if (r.error != Error::ok && s.state != SlotState::free) {
            s.state = SlotState::free;
            s.on_change.reset();
        }
        deliver(cb, r.error, Result<void>{});
    };
    const Part parts[] = {{path, true}, {{token, token_len}, true}};
    auto id = submit(XS_WATCH, 0, parts, c);
    if (!id) {
        w.state = SlotState::free;
        w.on_change.reset();
        w.registered.reset();
        return id.error();
    }
    return WatchId{slot, generation};
}

void XenStore::unwatch(WatchId id) {
    if (id.slot >= max_watches) return;
    WatchSlot& w = watches_[id.slot];
    if (w.state != SlotState::active || w.generation != id.generation) return;
    w.on_change.reset();
    if (w.registered) defer(ack_completion(std::move(w.registered)), Error::cancelled);
    w.state = SlotState::unwatch_pending;
    if (!send_unwatch(id.slot)) unwatch_backlog_ = true;  // retried from on_event()
}

bool XenStore::send_unwatch(std::uint32_t slot) {
    WatchSlot& w = watches_[slot];
    char token[token_len];
    make_token(slot, w.generation, token);
    const Part parts[] = {{{w.path, w.path_len}, true}, {{token, token_len}, true}};
    Completion none;
    if (!submit(XS_UNWATCH, 0, parts, none)) return false;
    // Events still in flight carry the old generation's token and are ignored.
    w.state = SlotState::free;
    return true;
}

void XenStore::flush_unwatches() {
    if (!unwatch_backlog_) return;
    unwatch_backlog_ = false;
    for (std::uint32_t i = 0; i < max_watches; ++i) {
        if (watches_[i].state == SlotState::unwatch_pending && !send_unwatch(i)) {
            unwatch_backlog_ = true;
            return;
        }
    }
}

// ---- A new connection ----------------------------------------------------------------------

std::uint32_t XenStore::staged_tx(const Request& r) const {
    // xsd_sockmsg's tx_id: the third word of the staged header.
    std::uint32_t tx = 0;
    for (std::uint32_t i = 0; i < 4; ++i) {
        const auto byte = static_cast<unsigned char>(staging_[(r.staged_at + 8 + i) & staging_mask]);
        tx |= std::uint32_t{byte} << (8 * i);
    }
    return tx;
}

void XenStore::reconnect() {
    ++stats_.reconnects;
    // The page as the toolstack left it (cleared: all four indices 0). Responses to the old
    // connection that are still in it are not ours to read.
    req_prod_ = ring_->req_prod;
    rsp_cons_ = load_acquire(&ring_->rsp_prod);
    store_release(&ring_->rsp_cons, rsp_cons_);
    header_got_ = 0;
    body_got_ = 0;
    for (std::uint32_t& a : abandoned_) a = 0;

    for (std::size_t i = 0; i < queue_count_; ++i) {
        Request& r = queue_[(queue_head_ + i) % max_queued];
        if (!r.completed && staged_tx(r) != 0) {
            // The transaction died with the old connection. Nothing of it was applied, except
            // perhaps by an end of transaction that went out: its outcome is unknown.
            r.completed = true;
            defer(std::move(r.done), r.sent > 0 && r.type == XS_TRANSACTION_END ? Error::closed : Error::again);
        }
        // Anything else goes out again, the request in flight included: its reply cannot come,
        // and on the new domain's tree doing it (again) is what its owner wants.
        // Whatever went out went to the old connection; the new one gets whole requests only
        // (completed ones are dropped by pump_requests() before a byte goes out).
        r.sent = 0;
    }

    for (WatchSlot& w : watches_) {
        if (w.state == SlotState::unwatch_pending) {  // nothing to unwatch on the new connection
            w.state = SlotState::free;
            w.on_change.reset();
        }
        w.rewatch = w.state == SlotState::active;
        if (w.rewatch) rewatch_backlog_ = true;
    }
    unwatch_backlog_ = false;
    flush_rewatches();
    pump_requests();
    if (wakeup_ && !wakeup_requested_) {  // the deferred failures, and anything xenstored sent
        wakeup_requested_ = true;
        wakeup_();
    }
}

void XenStore::flush_rewatches() {
    if (!rewatch_backlog_) return;
    rewatch_backlog_ = false;
    for (std::uint32_t i = 0; i < max_watches; ++i) {
        WatchSlot& w = watches_[i];
        if (!w.rewatch) continue;
        if (w.state != SlotState::active) {
            w.rewatch = false;
            continue;
        }
        char token[token_len];
        make_token(i, w.generation, token);
        const Part parts[] = {{{w.path, w.path_len}, true}, {{token, token_len}, true}};
        // The first registration's outcome went to its owner; this one only restores it. A
        // watch whose first XS_WATCH is still queued gets EEXIST here, which is fine.
        Completion none;
        if (!submit(XS_WATCH, 0, parts, none)) {
            rewatch_backlog_ = true;  // queue full: retried from on_event()
            return;
        }
        w.rewatch = false;
    }
}

void XenStore::handle_watch_event(std::string_view payload) {
    // xs_wire.h: XS_WATCH_EVENT carries <path>\0<token>\0 (XS_WATCH_PATH, XS_WATCH_TOKEN).
    const std::size_t path_end = payload.find('\0');
    if (path_end == 0 || path_end == std::string_view::npos) {
        ++stats_.errors;
        return;
    }
    const std::string_view rest(payload.data() + path_end + 1, payload.size() - path_end - 1);
    const std::size_t token_end = rest.find('\0');
    if (token_end == std::string_view::npos) {
        ++stats_.errors;
        return;
    }
    std::uint32_t slot = 0, generation = 0;
    // Not our token (or an old generation's): an event that raced an unwatch. Ignore it.
    if (!parse_token({rest.data(), token_end}, slot, generation)) return;
    WatchSlot& w = watches_[slot];
    if (w.state != SlotState::active || w.generation != generation || !w.on_change) return;
    // xenstored fires a watch for its own path and the paths below it, spelled as the watch
    // was (docs/misc/xenstore.txt, WATCH); any other path with our token is forged.
    const std::string_view path(payload.data(), path_end), watched(w.path, w.path_len);
    const bool below = path.size() > watched.size() && path.substr(0, watched.size()) == watched &&
                       (watched.back() == '/' || path[watched.size()] == '/');
    if (path != watched && !below) {
        ++stats_.errors;
        return;
    }
    ++stats_.watch_events;
    // Run a moved-out copy so the callback may unwatch (or re-watch) itself.
    auto cb = std::move(w.on_change);
    cb(path);
    if (w.state == SlotState::active && w.generation == generation && !w.on_change) {
        w.on_change = std::move(cb);
    }
}

}  // namespace keel::xen

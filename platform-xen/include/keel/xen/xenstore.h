// XenStore client over the shared ring page (io/xs_wire.h, struct xenstore_domain_interface).
// Pure code: the guest hands it the mapped ring and the xenstore event channel; host tests hand
// it a page owned by a fake xenstored (tests/unit/platform/fake_xenstored.h).
//
// Wire format (io/xs_wire.h, docs/misc/xenstore.txt): each message is a struct xsd_sockmsg
// {type, req_id, tx_id, len} followed by len <= XENSTORE_PAYLOAD_MAX payload bytes; arguments are
// NUL-terminated strings except a WRITE's value (the rest of the payload). Replies echo req_id and
// carry the request's type or XS_ERROR ("ENOENT\0"...). XS_WATCH_EVENT messages (<path>\0<token>\0)
// arrive unsolicited, interleaved with replies.
//
// Not handled: XS_DIRECTORY_PART (large directories fail with no_space), XS_GET/SET_PERMS, and
// the ring-reconnection feature (server_features / connection / error fields are left alone).
// A new connection after a resume in a new domain is reconnect().
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "keel/function.h"
#include "keel/result.h"
#include "keel/xen/event_channel.h"

struct xenstore_domain_interface;  // <xen/io/xs_wire.h>

namespace keel::xen {

/// The children named in an XS_DIRECTORY reply: a view over NUL-terminated names. Valid only as
/// long as the buffer it views (for XenStore::directory: during the callback).
class DirList {
public:
    class Iterator {
    public:
        using value_type = std::string_view;
        using difference_type = std::ptrdiff_t;
        Iterator() = default;
        Iterator(const char* p, const char* end) : p_(p), end_(end) {}
        std::string_view operator*() const;
        Iterator& operator++();
        Iterator operator++(int) {
            Iterator old = *this;
            ++*this;
            return old;
        }
        bool operator==(const Iterator& o) const { return p_ == o.p_; }

    private:
        const char* p_ = nullptr;
        const char* end_ = nullptr;
    };

    DirList() = default;
    /// Validate an XS_DIRECTORY payload: empty, or non-empty names each followed by a NUL.
    /// Anything else is Error::protocol (the daemon sent something malformed).
    static Result<DirList> parse(std::string_view payload);

    Iterator begin() const { return {raw_.data(), raw_.data() + raw_.size()}; }
    Iterator end() const { return {raw_.data() + raw_.size(), raw_.data() + raw_.size()}; }
    std::size_t size() const { return count_; }
    bool empty() const { return count_ == 0; }

private:
    DirList(std::string_view raw, std::size_t count) : raw_(raw), count_(count) {}
    std::string_view raw_;
    std::size_t count_ = 0;
};

/// Handle of a registered watch (slot + generation, so a stale id never hits a reused slot).
struct WatchId {
    std::uint32_t slot = 0;
    std::uint32_t generation = 0;  ///< never 0 for a live watch
    bool operator==(const WatchId&) const = default;
};

/// Map an XS_ERROR payload ("ENOENT", with or without its NUL) to keel's Error.
Error error_from_xs(std::string_view xs_error);

/// One connection to xenstored.
///
/// Context: every method runs in the event loop; callbacks run from on_event() only, never from
/// inside the call that started them (a request refused at submission is completed with its
/// error at the next on_event()).
///
/// Requests are serialised into a staging buffer at submission and sent strictly one at a time:
/// the next request goes out only after the reply to the previous one arrived (xenstored answers
/// in order anyway, and one outstanding request makes recovery from a broken reply simple). A
/// request bigger than the free request-ring space is written in pieces as xenstored frees space.
///
/// Untrusted input: ring indices, reply headers and payloads are validated. A reply that breaks
/// the protocol fails the outstanding request with Error::protocol and counts an error; the
/// client then resynchronises: when the framing itself is lost (index overrun, len >
/// XENSTORE_PAYLOAD_MAX, unknown type) every byte then in the response ring is discarded;
/// a well-framed reply that merely does not fit is consumed whole. The failed request's req_id
/// is remembered, so its late reply is dropped instead of being taken for the next request's.
class XenStore {
public:
    using Tx = std::uint32_t;  ///< 0 = no transaction

    static constexpr std::size_t max_queued = 16;        ///< requests waiting or in flight
    static constexpr std::size_t max_watches = 32;       ///< watch slots
    static constexpr std::size_t max_watch_path = 256;   ///< bytes, without the NUL
    static constexpr std::size_t staging_bytes = 16384;  ///< serialised requests not yet sent
    static constexpr unsigned sync_attempts = 1000;      ///< evtchn waits before timed_out

    XenStore(volatile xenstore_domain_interface* ring, EventChannel& evtchn);
    XenStore(const XenStore&) = delete;
    XenStore& operator=(const XenStore&) = delete;

    /// XS_READ. The value is valid only during the callback.
    void read(std::string_view path, Function<void(Result<std::string_view>)> done, Tx tx = 0);
    /// XS_WRITE (creates the node and missing parents).
    void write(std::string_view path, std::string_view value, Function<void(Result<void>)> done, Tx tx = 0);
    /// XS_MKDIR.
    void mkdir(std::string_view path, Function<void(Result<void>)> done, Tx tx = 0);
    /// XS_RM (the node and everything below it).
    void remove(std::string_view path, Function<void(Result<void>)> done, Tx tx = 0);
    /// XS_DIRECTORY: the children's names, valid only during the callback. A directory too large
    /// for one reply fails with Error::no_space (xenstored's E2BIG; XS_DIRECTORY_PART is unused).
    void directory(std::string_view path, Function<void(Result<DirList>)> done, Tx tx = 0);
    /// XS_TRANSACTION_START.
    void transaction_start(Function<void(Result<Tx>)> done);
    /// XS_TRANSACTION_END. A conflicting transaction fails with Error::again: start over.
    void transaction_end(Tx tx, bool commit, Function<void(Result<void>)> done);

    /// XS_WATCH on `path` (relative paths are relative to the domain's home). `on_change` gets
    /// the path that changed (in the form the watch used), valid during the call; xenstored also
    /// fires once right after registering. `registered` gets the outcome of the XS_WATCH request
    /// (Error::cancelled if unwatched first). Fails at once with Error::no_space when all slots
    /// are taken, the path is longer than max_watch_path, or the request queue is full.
    Result<WatchId> watch(std::string_view path, Function<void(std::string_view path)> on_change,
                          Function<void(Result<void>)> registered = nullptr);
    /// Stop calling the watch's callback (at once, even from inside it) and send XS_UNWATCH.
    /// Unknown or stale ids are ignored.
    void unwatch(WatchId id);

    /// Call when the event channel fires (spurious calls are harmless): consume replies and watch
    /// events, dispatch callbacks, send queued requests.
    void on_event();

    /// A request refused at submission (or failed while no reply can come) is completed from the
    /// next on_event(); xenstored may have no reason to signal, so `wakeup` is called (once per
    /// on_event() cycle) to ask the owner to run on_event() soon, e.g. by posting it to the
    /// event loop. Without a wakeup such completions wait for the next xenstore event.
    void set_wakeup(Function<void()> wakeup) { wakeup_ = std::move(wakeup); }

    /// Early boot only (before the event loop runs, never from a callback: Error::busy): send the
    /// request and alternate evtchn.wait() / on_event() until the reply arrives, at most
    /// sync_attempts times (then Error::timed_out and the request is abandoned). read_sync copies
    /// the value into `out` (Error::no_space if it does not fit) and returns its length.
    Result<std::size_t> read_sync(std::string_view path, std::span<char> out);
    Result<void> write_sync(std::string_view path, std::string_view value);

    /// The connection was replaced: after a resume in a new domain the toolstack hands the guest
    /// a cleared ring page and xenstored a new connection, which knows no watch, transaction or
    /// request of the old one (the caller has already put the new event channel behind
    /// `evtchn`). Continues from the page's indices as they stand; drops a half-read reply and
    /// the replies still owed to abandoned requests. Requests in a transaction of the old
    /// connection fail with Error::again (start the transaction over: nothing of it was
    /// committed), except an end of transaction that went out: Error::closed (it may have
    /// committed). Every other request, the one in flight included (its reply cannot come), goes
    /// out again on the new connection, and every active watch is registered again (xenstored
    /// then fires it once, so its owner looks at the node again). Failures complete
    /// from the next on_event(), as always. Counted in Stats::reconnects.
    void reconnect();

    /// Requests queued or in flight (what a suspend waits for, so that none is cut off).
    bool busy() const { return queue_count_ > 0 || deferred_count_ > 0; }

    struct Stats {
        std::uint64_t reconnects;    ///< reconnect() calls
        std::uint64_t requests;      ///< accepted into the queue
        std::uint64_t replies;       ///< replies matched to a request (XS_ERROR included)
        std::uint64_t errors;        ///< protocol violations by xenstored
        std::uint64_t watch_events;  ///< events delivered to a watch callback
    };
    Stats stats() const { return stats_; }

private:
    /// What a request's completion receives, already validated for the request's type.
    struct Reply {
        Error error = Error::ok;
        std::string_view payload;  ///< READ value / DIRECTORY names
        DirList dir;
        Tx tx = 0;  ///< TRANSACTION_START
    };
    using Completion = Function<void(const Reply&), 64>;

    struct Request {
        std::uint32_t req_id = 0;
        std::uint32_t type = 0;
        std::uint32_t size = 0;       ///< header + payload bytes in staging
        std::uint32_t sent = 0;       ///< bytes already in the request ring
        std::uint32_t staged_at = 0;  ///< offset of the first byte in staging
        bool completed = false;       ///< reply seen or request failed; `done` already moved out
        Completion done;
    };

    struct Deferred {
        Error error = Error::ok;
        Completion done;
    };

    enum class SlotState : std::uint8_t { free, active, unwatch_pending };
    struct WatchSlot {
        SlotState state = SlotState::free;
        std::uint32_t generation = 0;
        std::uint16_t path_len = 0;
        char path[max_watch_path];
        Function<void(std::string_view)> on_change;
        Function<void(Result<void>)> registered;
        bool rewatch = false;  ///< to be registered again on a new connection (reconnect())
    };

    static constexpr std::size_t header_size = 16;    // struct xsd_sockmsg
    static constexpr std::size_t payload_max = 4096;  // XENSTORE_PAYLOAD_MAX
    static constexpr std::size_t max_deferred = 2 * max_queued + max_watches;
    static constexpr std::size_t max_abandoned = 4;
    static constexpr std::size_t token_len = 16;  // "keel:SS:GGGGGGGG"

    // Submission (never runs a callback).
    struct Part {
        std::string_view bytes;
        bool nul;  ///< followed by a NUL on the wire
    };
    /// Stage a request; `done` is moved from only on success. Returns the req_id.
    Result<std::uint32_t> submit(std::uint32_t type, Tx tx, std::span<const Part> parts, Completion& done);
    void submit_or_defer(std::uint32_t type, Tx tx, std::span<const Part> parts, Completion done);
    void defer(Completion done, Error error);
    void cancel(std::uint32_t req_id);
    Result<void> wait_sync(const bool& done, std::uint32_t req_id);
    void pump_requests();
    void fail_all_queued();
    bool write_head(Request& r);
    void pop_head();
    Request& head() { return queue_[queue_head_]; }

    // Replies.
    void process_replies();
    void discard_response_ring(std::uint32_t prod);
    void dispatch_message();
    static void parse_payload(std::uint32_t type, std::string_view payload, Reply& reply);
    void complete_head(Reply reply);
    void fail_outstanding(Error error);
    void remember_abandoned(std::uint32_t req_id);
    bool take_abandoned(std::uint32_t req_id);
    void deliver_deferred();

    // Watches.
    void make_token(std::uint32_t slot, std::uint32_t generation, char* out) const;
    void handle_watch_event(std::string_view payload);
    void flush_unwatches();
    bool send_unwatch(std::uint32_t slot);
    void flush_rewatches();
    std::uint32_t staged_tx(const Request& r) const;

    volatile xenstore_domain_interface* ring_;
    EventChannel& evtchn_;

    // Our private copies of the indices we produce / consume (the shared copies are written,
    // never read back, so a backend scribbling on them cannot steer us).
    std::uint32_t req_prod_;
    std::uint32_t rsp_cons_;

    Request queue_[max_queued];
    std::size_t queue_head_ = 0;
    std::size_t queue_count_ = 0;
    char staging_[staging_bytes];
    std::uint32_t staging_head_ = 0;  ///< offset of the oldest staged byte
    std::uint32_t staging_used_ = 0;
    std::uint32_t next_req_id_ = 1;

    Deferred deferred_[max_deferred];
    std::size_t deferred_head_ = 0;
    std::size_t deferred_count_ = 0;

    std::uint32_t abandoned_[max_abandoned] = {};
    std::size_t abandoned_next_ = 0;

    // Reply being assembled (a reply may be up to 4 times the ring size).
    unsigned char header_[header_size];
    std::size_t header_got_ = 0;
    std::size_t body_got_ = 0;
    std::uint32_t msg_type_ = 0, msg_req_id_ = 0, msg_len_ = 0;
    char body_[payload_max + 1];

    WatchSlot watches_[max_watches];
    bool unwatch_backlog_ = false;
    bool rewatch_backlog_ = false;

    bool in_event_ = false;
    bool wakeup_requested_ = false;
    Function<void()> wakeup_;
    Stats stats_{};
};

}  // namespace keel::xen

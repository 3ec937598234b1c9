// The Xen PV block frontend (io/blkif.h): one vbd, its xenbus handshake, and the data path over
// one (possibly multi-page) ring. It implements block::Device; services see only that.
// Namespace keel::blkfront.
//
//   co_await block::discovered().wait();                  // boot-time discovery finished
//   block::Device& disk = *block::devices()[0];           // a Blkfront behind the interface
//   co_await disk.read(0, buffer);                        // any alignment, whole sectors
//
// Data moves through the driver's own pages, granted once per connection and reused for every
// request (persistent grants): reads and writes are copied, so callers' buffers may be of any
// alignment. A large transfer becomes several requests of at most 11 segments (or one indirect
// request of up to features().segments_per_request pages). When the ring or the pages run out,
// requests wait in FIFO order; they are not failed.
//
// Context: everything runs in the event loop of the one vCPU: the methods, the event-channel
// handler and the connection supervisor's Task. Nothing on the data path allocates besides
// the coroutine frame of each read()/write()/flush()/discard() call.
#pragma once

#include <stdint.h>  // Xen's headers expect the fixed-width types first

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <xen/io/blkif.h>

#include "keel/block/block.h"
#include "keel/function.h"
#include "keel/intrusive_list.h"
#include "keel/prometheus.h"
#include "keel/result.h"
#include "keel/task.h"
#include "keel/xen/event_channel.h"
#include "keel/xen/grant_table.h"
#include "keel/xenbus/frontend.h"
#include "keel/xenbus/platform.h"
#include "keel/xenbus/ring.h"
#include "keel/xenbus/xenbus.h"

namespace keel::blkfront {

using xenbus::page_size;

/// The largest ring we ever negotiate: 2^4 = 16 pages, 512 requests in flight (far more than
/// the data pool can fill; a larger ring would only cost grant references).
inline constexpr unsigned max_ring_page_order = 4;
/// The blkif ring over up to 2^max_ring_page_order pages (io/blkif.h "ring-page-order").
using BlkRing = xenbus::FrontRing<blkif_sring, max_ring_page_order>;
static_assert(BlkRing::slots_for(0) == 32 && BlkRing::size == 512);

/// The most bounce pages one device may have (4 MiB).
inline constexpr std::size_t max_data_pages = 1024;
/// Segments one indirect page describes (io/blkif.h, BLKIF_OP_INDIRECT: PAGE_SIZE /
/// sizeof(struct blkif_request_segment)). We use one indirect page per request, so this is
/// also the most segments we put in one request.
inline constexpr std::size_t segments_per_indirect_page = page_size / sizeof(struct blkif_request_segment);
static_assert(segments_per_indirect_page == 512);

/// How flush() reaches the disk.
enum class FlushOp : std::uint8_t {
    none,             ///< the backend offers neither: writes are durable once completed
    flush_diskcache,  ///< BLKIF_OP_FLUSH_DISKCACHE (feature-flush-cache)
    write_barrier,    ///< BLKIF_OP_WRITE_BARRIER (feature-barrier), an empty barrier
};

/// What the handshake settled on (valid while connected; kept after a disconnect).
struct Features {
    unsigned ring_page_order = 0;  ///< the ring is 2^order pages
    RING_IDX ring_slots = 0;       ///< requests in flight at most
    /// The backend said feature-persistent = 1: it keeps our grants mapped. We reuse the same
    /// granted pages either way (and always publish feature-persistent = 1).
    bool persistent = false;
    bool indirect = false;                   ///< BLKIF_OP_INDIRECT for requests above 11 segments
    std::uint16_t segments_per_request = 0;  ///< the largest request we build, in pages
    FlushOp flush = FlushOp::none;
    bool discard = false;  ///< BLKIF_OP_DISCARD (feature-discard)
};

struct Stats {
    // Block API calls that succeeded, and what they moved (in geometry().sector_size units).
    std::uint64_t reads = 0, writes = 0, flushes = 0, discards = 0;
    std::uint64_t sectors_read = 0, sectors_written = 0;
    std::uint64_t errors = 0;  ///< block API calls that failed, for any reason
    // Ring requests.
    std::uint64_t requests = 0;           ///< put on the ring
    std::uint64_t indirect_requests = 0;  ///< of which BLKIF_OP_INDIRECT
    std::uint64_t waits = 0;              ///< a call waited for ring slots or pages (back-pressure)
    // Reported by the backend (legitimate answers, not protocol errors).
    std::uint64_t backend_error = 0;  ///< BLKIF_RSP_ERROR (the call fails with Error::io)
    std::uint64_t not_supported = 0;  ///< BLKIF_RSP_EOPNOTSUPP for a flush or discard
    // Protocol errors by the backend.
    std::uint64_t unknown_id = 0;     ///< an id outside our id space (index beyond the ring, high bits)
    std::uint64_t not_in_flight = 0;  ///< an id in our space but of no request in flight
    std::uint64_t duplicate = 0;      ///< the id of the request last answered on that slot, again
    std::uint64_t bad_status = 0;     ///< a status that is not BLKIF_RSP_* for its operation
    std::uint64_t bad_operation = 0;  ///< the response's operation is not the request's
    std::uint64_t ring_overrun = 0;   ///< rsp_prod beyond the requests made (resets at once)
    std::uint64_t lost = 0;           ///< requests whose response slot a wrong id took (resets)
    // Our side.
    std::uint64_t aborted = 0;            ///< in flight or waiting when the connection ended
    std::uint64_t reissued = 0;           ///< calls run again after a resume interrupted them
    std::uint64_t refused_read_only = 0;  ///< write/discard calls refused on a read-only disk
    std::uint64_t connects = 0;           ///< handshakes that reached Connected
    std::uint64_t resets = 0;             ///< connections ended by us because the backend misbehaved
    /// Data and indirect pages whose grant the backend still held at the last teardown.
    /// They are never replaced, so resets cannot grow the grant table or the heap: the same
    /// backend gets them back as they are (it keeps them mapped, like persistent grants),
    /// another backend only once a revoke succeeds.
    std::uint64_t held_pages = 0;
};

struct Options {
    /// Bounce pages, each granted read/write once per connection and reused (persistent
    /// grants). 256 = 1 MiB in flight at most. Clamped to 1..max_data_pages.
    std::uint16_t data_pages = 256;
    /// Largest ring we ask for when the backend offers max-ring-page-order (capped at
    /// max_ring_page_order). 2 = 4 pages, 128 requests in flight.
    unsigned max_ring_page_order = 2;
    /// Most segments in one indirect request (capped at segments_per_indirect_page and at
    /// data_pages). 11 or less: never use BLKIF_OP_INDIRECT.
    std::uint16_t max_indirect_segments = 64;
    /// Supervision: protocol errors in a row (bad status, wrong operation) before a reset,
    /// reconnect back-off, give-up. Linux's blkback connects when the frontend says
    /// Initialised (io/blkif.h "Startup"), so the keys go out with Initialised and Connected
    /// follows the backend's Connected.
    xenbus::FrontendOptions frontend{.max_consecutive_errors = 8};
    /// After a resume in a new domain (xl restore, migration): how long a call waits for the
    /// device to connect to its new backend before it fails with Error::timed_out.
    std::uint64_t resume_wait_ns = s(30);
};

/// One vbd.
///
/// Lifecycle: construct (pinned), init() once (reads virtual-device, allocates the pages), then
/// start() (a supervisor Task that connects, and reconnects after a reset or a backend
/// restart) or connect()/close() by hand (tests). Destroy every Task using the device first.
///
/// Untrusted backend: every response is copied out of the ring and checked (id, operation,
/// status, rsp_prod). A bad response is counted by kind and fails its request with
/// Error::protocol; max_consecutive_errors in a row reset the device (close through xenbus,
/// grants revoked, connect again). A response that takes another request's slot (unknown,
/// not-in-flight or duplicate id) or a rsp_prod overrun resets at once, failing what was in
/// flight with Error::protocol. Nothing a backend sends can crash the guest.
///
/// Suspend and resume (docs/lifecycle.md): before a suspend the requests in flight are answered
/// (drain_step(), bounded); after a resume in a new domain every call waits for the connection
/// to the new backend (Options::resume_wait_ns) and one the resume interrupted runs again, whole
/// (reads and writes of the same blocks again are harmless). The caller sees no error for it.
///
/// The disk must stay the disk the service saw: a reconnect that changes the sector size,
/// shrinks the disk or withdraws the flush feature it offered fails the device for good
/// (failed(); every later call fails with Error::io), since a log written at the old offsets or
/// trusting a flush that now does nothing would lose data silently.
class Blkfront final : public block::Device, public xenbus::Frontend {
public:
    Blkfront(xen::XenStore& xs, const XenbusNode& node, xen::GrantTable& grants, xenbus::Platform& platform,
             Options options = {});
    /// Stops the supervisor, tears down any connection without xenbus (grants revoked, channel
    /// closed) and frees the pages. No call may be running on the device (our caller's bug).
    ~Blkfront() override;

    // Frontend::init(): read the optional `virtual-device` node (the request handle), allocate
    // and zero the ring, data and indirect pages. Error::no_memory; Error::busy if called twice.
    // Frontend::connect(): ring size, grants, event channel and keys (published with
    // Initialised), the backend's Connected, then its properties (sectors, sector-size, info,
    // features). Errors from XenbusDevice::connect, bad_input (missing or malformed sectors /
    // sector-size), not_supported (a sector size above a page), no_memory. On error nothing
    // stays granted. Frontend::close(): fail what is in flight (Error::closed) and close
    // through xenbus. Frontend::start(): the supervisor.

    // block::Device
    std::string_view name() const override { return dev_.nodename(); }
    /// sectors and sector_size are 0 until the first connection.
    const block::Geometry& geometry() const override { return geometry_; }
    bool failed() const override { return failed_; }
    Task<Result<void>> read(std::uint64_t sector, std::span<std::byte> out) override;
    Task<Result<void>> write(std::uint64_t sector, std::span<const std::byte> data) override;
    Task<Result<void>> flush() override;
    Task<Result<void>> discard(std::uint64_t sector, std::uint64_t count) override;

    /// True while the data path runs (Connected and not being reset). Frontend::wait_ready()
    /// waits for it (discovery, for the first connection).
    bool connected() const { return live(); }
    const Features& features() const { return features_; }
    Stats stats() const { return with_connection_counts(stats_); }

    /// The event-channel entry point (connect() installs it; public for tests).
    void on_event();

private:
    static constexpr std::uint16_t none = 0xFFFF;

    /// One block API call: its requests in flight, and its place in the queue for room.
    /// Lives in the call's coroutine frame; destroying it (the caller's task went away)
    /// detaches its requests, so their completions touch nothing of it.
    struct Op : ListNode<> {
        enum class Wait : std::uint8_t { none, room, done };
        explicit Op(Blkfront& d) : dev(d) {}
        ~Op();
        Op(const Op&) = delete;
        Op& operator=(const Op&) = delete;

        Blkfront& dev;
        std::byte* read_into = nullptr;  ///< reads: where response data goes
        std::uint64_t epoch = 0;         ///< the connection the call runs on
        std::uint32_t pending = 0;       ///< its requests in flight
        Error error = Error::ok;         ///< the first failure among its requests
        std::uint16_t need_pages = 0;    ///< room wanted for the next request
        bool need_indirect = false;
        bool granted = false;  ///< woken with room reserved for it
        Error wait_error = Error::ok;
        Wait wait = Wait::none;
        std::coroutine_handle<> waiter;
        Wakeup wakeup{&resume, this};
        static void resume(void* p) { static_cast<Op*>(p)->waiter.resume(); }
    };
    struct RoomAwaiter;
    struct DoneAwaiter;

    /// held: the backend kept the grant at a teardown; the page waits out of use (see
    /// Stats::held_pages).
    enum class PageState : std::uint8_t { free, busy, held };
    struct Page {
        std::byte* page = nullptr;
        xen::Grant grant;
        xen::DomId granted_to = 0;  ///< the backend domain `grant` is for (valid())
        std::uint16_t next = none;  ///< next page of the same request (busy)
        PageState state = PageState::free;
    };
    struct Pool {
        std::byte* block = nullptr;  ///< the pages as allocated by init()
        std::uint16_t count = 0;
        std::uint16_t free_count = 0;
    };
    /// One ring request in flight; its index is the low 16 bits of its id.
    struct Request {
        Op* op = nullptr;               ///< nullptr once the call is gone or was failed
        std::uint64_t id = 0;           ///< generation << 16 | index
        std::uint64_t last_id = ~0ull;  ///< the id it last completed (duplicate detection)
        std::size_t offset = 0;         ///< its data's place in the call's buffer
        std::uint32_t bytes = 0;
        std::uint16_t generation = 0;
        std::uint16_t first_page = none;
        std::uint16_t indirect_page = none;
        std::uint8_t operation = 0;  ///< BLKIF_OP_* as put on the ring
        std::uint8_t inner_op = 0;   ///< the data operation (== operation unless indirect)
        bool busy = false;
    };

    // Connection (blkfront.cc): the Frontend hooks.
    Task<Result<void>> prepare() override;
    Task<Result<void>> configure(XenbusConfig& cfg) override;
    /// io/blkif.h "Startup": the backend's properties, read once it is Connected.
    Task<Result<void>> backend_connected() override;
    void go_live() override;
    /// The data path stops: fail what is in flight and what waits with `why`.
    void go_down(Error why) override;
    void release() override;
    /// Detached or given up: free the pools and the ring, except pages the backend still maps.
    void retire() override { free_pools(); }
    void free_pools();
    bool drain_step() override;
    void report_reset(const char* why) override;
    Result<void> setup_connection();
    void write_keys(XenbusConfig& cfg) const;
    /// A reconnect found another disk than before: the reason, or nullptr.
    const char* changed_disk(const block::Geometry& g) const;
    /// Before granting: pages still granted to another backend than `backend` are revoked if
    /// it let go; pages still granted to `backend` are taken back as they are.
    void reclaim_pool(Page* pages, Pool& pool, xen::DomId backend);
    Result<void> reclaim_ring(xen::DomId backend);
    Result<void> grant_pool(Page* pages, Pool& pool);
    void revoke_pool(Page* pages, Pool& pool);
    /// Destruction: revoke what is still granted; true if the backend still maps some of it.
    static bool still_held(Page* pages, Pool& pool);

    // Data path (io.cc).
    /// Why a request cannot go out now that the data path is down: again while resuming (the
    /// call runs again on the next connection), else closed.
    Error down_error() const { return resuming() ? Error::again : Error::closed; }
    /// The outcome of a call's wait for the new backend after a resume: counted and logged,
    /// timed_out or closed, if it failed.
    Result<void> not_resumed(Result<void> waited);
    Task<Result<void>> transfer(std::uint8_t operation, std::uint64_t sector, std::byte* into,
                                const std::byte* from, std::size_t bytes);
    Task<Result<void>> single(std::uint8_t operation, std::uint64_t sector, std::uint64_t count);
    /// Block API argument checks: geometry known, whole sectors, within the disk.
    Result<void> check_range(std::uint64_t sector, std::uint64_t sectors) const;
    Result<void> check_writable(const char* what);
    bool fits(std::uint16_t pages, bool indirect) const;
    /// True if `op` may issue its next request now (room, nobody queued before it).
    bool room_for(Op& op);
    void wake_waiters();
    /// Fill and put one request (room checked); the pages hold `from` for writes.
    void issue(Op& op, std::uint8_t operation, std::uint64_t sector512, const std::byte* from,
               std::size_t offset, std::size_t bytes);
    void issue_single(Op& op, std::uint8_t operation, std::uint64_t sector512, std::uint64_t count512);
    void push();
    void poll();
    void take_response(const blkif_response_t& rsp);
    /// The request is answered (or abandoned): data to the call, pages and entry back.
    void finish(Request& q, Error result);
    void op_part_done(Op& op, Error result);
    std::uint16_t pop_page(Page* pages, std::uint16_t* stack, Pool& pool);
    void push_page(std::uint16_t i, std::uint16_t* stack, Pool& pool);
    void reset_free_lists();
    /// Count the call's outcome.
    Result<void> account(Result<void> r, std::uint8_t operation, std::uint64_t sectors);

    Options options_;

    block::Geometry geometry_{};
    Features features_{};
    std::uint16_t handle_ = 0;        ///< blkif_vdev_t: virtual-device, low 16 bits
    std::uint32_t sector_shift_ = 0;  ///< log2(sector_size / 512)
    bool read_only_logged_ = false;
    bool failed_ = false;  ///< the disk changed across a reconnect: every call fails for good
    std::uint64_t epoch_ = 0;  ///< connections gone live so far

    // The ring: 2^ring_alloc_order_ pages allocated, 2^features_.ring_page_order in use.
    unsigned ring_alloc_order_ = 0;
    std::byte* ring_pages_ = nullptr;
    xen::Grant ring_grants_[1u << max_ring_page_order];
    xen::DomId ring_granted_to_ = 0;  ///< the backend the valid ring_grants_ are for
    BlkRing ring_;
    xen::EventChannel* channel_ = nullptr;
    std::uint32_t port_ = 0;

    // Bounce pages and indirect pages (both granted read/write), each with a LIFO free stack:
    // io/blkif.h recommends LIFO so a backend that keeps only some grants mapped reuses them.
    Page data_[max_data_pages];
    std::uint16_t data_free_[max_data_pages];
    Pool data_pool_;
    static constexpr std::size_t max_indirect_pages =
        max_data_pages / (BLKIF_MAX_SEGMENTS_PER_REQUEST + 1) + 1;
    Page indirect_[max_indirect_pages];
    std::uint16_t indirect_free_[max_indirect_pages];
    Pool indirect_pool_;

    // Requests: index = id & 0xFFFF, at most ring_.slots() in use.
    Request requests_[BlkRing::size];
    std::uint16_t request_free_[BlkRing::size];
    std::uint16_t request_free_count_ = 0;
    std::uint32_t in_flight_ = 0;

    // Back-pressure: calls waiting for room, FIFO; room promised to woken ones.
    IntrusiveList<Op> waiters_;
    std::uint32_t reserved_requests_ = 0;
    std::uint32_t reserved_pages_ = 0;
    std::uint32_t reserved_indirect_ = 0;

    Stats stats_{};
};

/// Devices the guest found at boot (device/vbd/<id>, in xenstore order). Valid after
/// block::discovered() is set; the devices live forever. block::devices() is the same list as
/// block::Device pointers.
std::span<Blkfront* const> blkfront_devices();
using xenbus::max_attached;
using xenbus::max_devices;
/// For the discovery code: add a device (Error::no_space beyond max_attached, detached ones
/// included).
Result<void> register_device(Blkfront& device);
/// Forget every registered device and clear block::discovered() (tests).
void clear_devices();

/// The disks' metric families, one sample per disk labelled device="<xenstore node>"
/// (registered by blkfront/guest/init.cc): keel_blkfront_{reads,writes,flushes,discards}_total,
/// keel_blkfront_{read,written}_bytes_total, keel_blkfront_errors_total (calls that failed),
/// keel_blkfront_requests_total, keel_blkfront_indirect_requests_total, keel_blkfront_waits_total,
/// keel_blkfront_backend_errors_total, keel_blkfront_protocol_errors_total,
/// keel_blkfront_aborted_total, keel_blkfront_connects_total, keel_blkfront_resets_total,
/// keel_blkfront_given_up, keel_blkfront_held_pages.
void write_metrics(MetricsWriter& w, std::span<Blkfront* const> devices);

}  // namespace keel::blkfront

// Blkfront's control path, as xenbus::Frontend hooks: init (handle, pages), the handshake's part
// that is blkif's (ring size, grants, event channel, keys; the backend's properties once it is
// Connected), going live and down, teardown; and the device registry. The supervisor is
// Frontend's; the data path is in io.cc.
#include "keel/blkfront/blkfront.h"

#include <algorithm>
#include <bit>

#include <xen/io/protocols.h>

#include "keel/format.h"
#include "keel/log.h"
#include "keel/panic.h"
#include "keel/registry.h"

namespace keel::blkfront {

namespace {

// The layout both ends compute their ring size from (io/ring.h, __CONST_RING_SIZE).
static_assert(sizeof(blkif_request_t) == 112 && sizeof(blkif_response_t) == 16);
static_assert(sizeof(blkif_request_indirect_t) == 64 && sizeof(blkif_request_discard_t) == 32);
static_assert(sizeof(union blkif_sring_entry) == 112);
static_assert(offsetof(blkif_sring, ring) == 64);
static_assert(sizeof(struct blkif_request_segment) == 8);

/// A backend flag: absent means off; a value that is not a number is logged (by XenbusDevice)
/// and taken as off too, the safe reading. Other xenstore errors are errors.
Result<bool> flag_value(Result<std::uint64_t> v) {
    if (v) return *v != 0;
    if (v.error() == Error::not_found || v.error() == Error::bad_input) return false;
    return v.error();
}

/// An optional number: nullopt-like 0 when absent or malformed (logged by XenbusDevice).
Result<std::uint64_t> optional_value(Result<std::uint64_t> v, std::uint64_t fallback) {
    if (v) return *v;
    if (v.error() == Error::not_found || v.error() == Error::bad_input) return fallback;
    return v.error();
}

}  // namespace

Blkfront::Blkfront(xen::XenStore& xs, const XenbusNode& node, xen::GrantTable& grants, xenbus::Platform& platform,
                   Options options)
    : Frontend("blkfront", xs, node, grants, platform, options.frontend), options_(options) {
    options_.data_pages = std::clamp<std::uint16_t>(options_.data_pages, 1, max_data_pages);
    options_.max_ring_page_order = std::min(options_.max_ring_page_order, max_ring_page_order);
    options_.max_indirect_segments = std::min<std::uint16_t>(
        {options_.max_indirect_segments, static_cast<std::uint16_t>(segments_per_indirect_page),
         options_.data_pages});
}

Blkfront::~Blkfront() {
    shutdown();  // the supervisor stops, the connection is released without xenbus
    KASSERT(waiters_.empty());  // a call outlived its device: the owner's bug
    free_pools();
}

void Blkfront::free_pools() {
    // Between connections only (the destructor, retire()). Grants kept for a backend since an
    // earlier teardown get a last chance. A block with a page the backend still maps is never
    // freed (it could still write it); the page's Grant leaks its reference as it goes
    // (GrantTable::release_or_leak).
    auto free_pool = [this](Page* pages, Pool& pool) {
        if (!pool.block || still_held(pages, pool)) return;
        platform_.free_pages(pool.block, pool.count);
        pool.block = nullptr;
        pool.free_count = 0;
        for (std::uint16_t i = 0; i < pool.count; ++i) pages[i].page = nullptr;
    };
    free_pool(data_, data_pool_);
    free_pool(indirect_, indirect_pool_);
    bool ring_held = false;
    for (xen::Grant& g : ring_grants_) ring_held = (g.valid() && !g.revoke()) || ring_held;
    if (ring_pages_ && !ring_held) {
        platform_.free_pages(ring_pages_, std::size_t{1} << ring_alloc_order_);
        ring_pages_ = nullptr;
    }
}

bool Blkfront::still_held(Page* pages, Pool& pool) {
    bool held = false;
    for (std::uint16_t i = 0; i < pool.count; ++i) held = (pages[i].grant.valid() && !pages[i].grant.revoke()) || held;
    return held;
}

// ---- init ------------------------------------------------------------------------------------

Task<Result<void>> Blkfront::prepare() {
    const char* name = dev_.nodename().data();  // XenbusNode keeps it NUL-terminated

    // io/blkif.h, "virtual-device": the device number the toolstack chose. It only fills the
    // requests' `handle` field (blkif_vdev_t, 16 bits), which backends do not rely on.
    Result<std::uint64_t> vdev = optional_value(co_await dev_.read_frontend_uint("virtual-device"), 0);
    if (!vdev) co_return vdev.error();
    handle_ = static_cast<std::uint16_t>(*vdev & 0xFFFF);

    ring_alloc_order_ = options_.max_ring_page_order;
    const std::size_t ring_pages = std::size_t{1} << ring_alloc_order_;
    data_pool_.count = options_.data_pages;
    // An indirect request carries more than 11 segments, so no more than this many can be in
    // flight at once: the indirect pool never runs out before the data pool does.
    indirect_pool_.count =
        options_.max_indirect_segments > BLKIF_MAX_SEGMENTS_PER_REQUEST
            ? static_cast<std::uint16_t>(options_.data_pages / (BLKIF_MAX_SEGMENTS_PER_REQUEST + 1) + 1)
            : 0;
    static_assert(max_indirect_pages >= max_data_pages / (BLKIF_MAX_SEGMENTS_PER_REQUEST + 1) + 1);

    ring_pages_ = platform_.alloc_pages(ring_pages);
    data_pool_.block = platform_.alloc_pages(data_pool_.count);
    if (indirect_pool_.count) indirect_pool_.block = platform_.alloc_pages(indirect_pool_.count);
    if (!ring_pages_ || !data_pool_.block || (indirect_pool_.count && !indirect_pool_.block)) {
        KLOG_ERROR("blkfront: %s: out of memory for %zu pages", name,
                   ring_pages + data_pool_.count + indirect_pool_.count);
        if (ring_pages_) platform_.free_pages(ring_pages_, ring_pages);
        if (data_pool_.block) platform_.free_pages(data_pool_.block, data_pool_.count);
        if (indirect_pool_.block) platform_.free_pages(indirect_pool_.block, indirect_pool_.count);
        ring_pages_ = data_pool_.block = indirect_pool_.block = nullptr;
        data_pool_.count = indirect_pool_.count = 0;
        co_return Error::no_memory;
    }
    for (std::uint16_t i = 0; i < data_pool_.count; ++i) data_[i].page = data_pool_.block + i * page_size;
    for (std::uint16_t i = 0; i < indirect_pool_.count; ++i) {
        indirect_[i].page = indirect_pool_.block + i * page_size;
    }
    KLOG_INFO("blkfront: %s: handle %u, up to %zu ring pages, %u data + %u indirect pages", name, handle_,
              ring_pages, data_pool_.count, indirect_pool_.count);
    co_return Result<void>{};
}

// ---- handshake -------------------------------------------------------------------------------

Task<Result<void>> Blkfront::configure(XenbusConfig& cfg) {
    if (failed_) co_return Error::io;  // changed_disk() said so, with a log line, once
    // io/blkif.h, "max-ring-page-order" (or the deprecated "max-ring-pages", a power of two):
    // the largest ring the backend maps. Absent: one page.
    unsigned order = 0;
    Result<std::uint64_t> max_order = co_await dev_.read_backend_uint("max-ring-page-order");
    if (max_order) {
        order = static_cast<unsigned>(std::min<std::uint64_t>(*max_order, max_ring_page_order));
    } else if (max_order.error() == Error::not_found || max_order.error() == Error::bad_input) {
        Result<std::uint64_t> pages = optional_value(co_await dev_.read_backend_uint("max-ring-pages"), 1);
        if (!pages) co_return pages.error();
        if (*pages != 0 && std::has_single_bit(*pages)) {
            order = static_cast<unsigned>(std::min<int>(std::countr_zero(*pages), max_ring_page_order));
        }
    } else {
        co_return max_order.error();
    }
    features_ = Features{};
    features_.ring_page_order = std::min(order, ring_alloc_order_);
    features_.ring_slots = BlkRing::slots_for(features_.ring_page_order);

    // io/blkif.h, BLKIF_OP_INDIRECT: "feature-max-indirect-segments" (a transport parameter the
    // backend publishes before InitWait). We use it only for requests above 11 segments.
    Result<std::uint64_t> indirect =
        optional_value(co_await dev_.read_backend_uint("feature-max-indirect-segments"), 0);
    if (!indirect) co_return indirect.error();
    // A request never needs more pages than the pool has (pages another backend kept at an
    // earlier teardown are out of it), or it would wait forever.
    reclaim_pool(data_, data_pool_, dev_.backend_id());
    reclaim_pool(indirect_, indirect_pool_, dev_.backend_id());
    std::uint64_t usable = 0;
    for (std::uint16_t i = 0; i < data_pool_.count; ++i) usable += data_[i].state != PageState::held;
    if (usable == 0) {
        KLOG_ERROR("blkfront: %s: every data page is still granted to an earlier backend; not connecting",
                   dev_.nodename().data());
        co_return Error::busy;
    }
    const std::uint64_t segments =
        std::min<std::uint64_t>({*indirect, options_.max_indirect_segments, usable});
    features_.indirect = segments > BLKIF_MAX_SEGMENTS_PER_REQUEST && indirect_pool_.count > 0;
    features_.segments_per_request = static_cast<std::uint16_t>(
        features_.indirect ? segments : std::min<std::uint64_t>(BLKIF_MAX_SEGMENTS_PER_REQUEST, usable));

    Result<void> r = setup_connection();
    if (r) {
        write_keys(cfg);
    } else {
        release_connection();  // before XenbusDevice writes Closed: nothing stays granted
    }
    co_return r;
}

void Blkfront::reclaim_pool(Page* pages, Pool& pool, xen::DomId backend) {
    for (std::uint16_t i = 0; i < pool.count; ++i) {
        Page& p = pages[i];
        if (!p.grant.valid()) continue;
        // The same backend may keep mapping it (as with persistent grants): no new reference.
        // Another one must not see a page its predecessor can still write.
        if (p.granted_to == backend || p.grant.revoke()) {
            if (p.state == PageState::held) --stats_.held_pages;
            p.state = PageState::free;
        }
    }
}

Result<void> Blkfront::reclaim_ring(xen::DomId backend) {
    bool held = false;
    for (xen::Grant& g : ring_grants_) {
        if (g.valid() && ring_granted_to_ != backend && !g.revoke()) held = true;
    }
    if (held) {
        KLOG_ERROR("blkfront: %s: an earlier backend still maps the ring; not connecting until it lets go",
                   dev_.nodename().data());
        return Error::busy;
    }
    return {};  // what is still granted is this backend's own: it keeps its mappings
}

Result<void> Blkfront::grant_pool(Page* pages, Pool& pool) {
    for (std::uint16_t i = 0; i < pool.count; ++i) {
        Page& p = pages[i];
        if (p.state == PageState::held || p.grant.valid()) continue;
        auto g = xen::Grant::create(grants_, dev_.backend_id(), platform_.gfn(p.page), false);
        if (!g) return g.error();
        p.grant = std::move(*g);
        p.granted_to = dev_.backend_id();
    }
    return {};
}

Result<void> Blkfront::setup_connection() {
    const std::size_t pages = std::size_t{1} << features_.ring_page_order;
    TRY_VOID(reclaim_ring(dev_.backend_id()));
    // io/ring.h: the front end initialises the shared ring before it publishes it.
    ring_.attach(ring_pages_, features_.ring_page_order);
    begin_connection();  // from here on release_connection() undoes what was done

    for (std::size_t i = 0; i < pages; ++i) {
        if (ring_grants_[i].valid()) continue;  // kept by this backend across a reset
        auto g =
            xen::Grant::create(grants_, dev_.backend_id(), platform_.gfn(ring_pages_ + i * page_size), false);
        if (!g) return g.error();
        ring_grants_[i] = std::move(*g);
    }
    ring_granted_to_ = dev_.backend_id();
    // Every data and indirect page is granted read/write once per connection and reused by
    // every request, reads and writes alike: io/blkif.h, feature-persistent note 8, "the
    // frontend driver has to allow the backend driver to map all grants with write access".
    TRY_VOID(grant_pool(data_, data_pool_));
    if (features_.indirect) TRY_VOID(grant_pool(indirect_, indirect_pool_));
    reset_free_lists();

    auto channel = platform_.open_channel(dev_.backend_id(), port_);
    if (!channel) return channel.error();
    channel_ = *channel;
    channel_->set_handler([this] { on_event(); });
    return {};
}

void Blkfront::write_keys(XenbusConfig& cfg) const {
    // io/blkif.h, "ring-ref" for a one-page ring; "ring-page-order" and "ring-ref%u" for more.
    // Note 3 asks for the same parameters in both multi-page schemes: "num-ring-pages" too.
    const unsigned order = features_.ring_page_order;
    if (order == 0) {
        cfg.write_uint("ring-ref", ring_grants_[0].ref());
    } else {
        cfg.write_uint("ring-page-order", order);
        cfg.write_uint("num-ring-pages", std::uint64_t{1} << order);
        for (unsigned i = 0; i < (1u << order); ++i) {
            char key[16];
            format(key, sizeof key, "ring-ref%u", i);
            cfg.write_uint(key, ring_grants_[i].ref());
        }
    }
    cfg.write_uint("event-channel", port_);
    // io/blkif.h, "protocol": the ABI of our ring structures (the guest is x86-64).
    cfg.write("protocol", XEN_IO_PROTO_ABI_X86_64);
    // We reuse the same granted pages for every request, whatever the backend does.
    cfg.write("feature-persistent", "1");
    // Not written: feature-large-sector-size (every sector quantity on the ring is in 512-byte
    // units), multi-queue-num-queues (one queue: the keys stay at the top level), trusted.
}

Task<Result<void>> Blkfront::backend_connected() {
    const char* name = dev_.nodename().data();
    // io/blkif.h, "sectors" and "sector-size". Without feature-large-sector-size on our side,
    // every sector quantity on the ring and in "sectors" is in 512-byte units (what Linux's
    // blkback writes even for a 4096-byte disk); "sector-size" is the logical block, the unit
    // of the block API.
    Result<std::uint64_t> sectors512 = co_await dev_.read_backend_uint("sectors");
    if (!sectors512) {
        KLOG_ERROR("blkfront: %s: backend gave no usable \"sectors\": %s", name,
                   to_string(sectors512.error()));
        co_return sectors512.error() == Error::not_found ? Error::bad_input : sectors512.error();
    }
    Result<std::uint64_t> sector_size = optional_value(co_await dev_.read_backend_uint("sector-size"), 512);
    if (!sector_size) co_return sector_size.error();
    if (*sector_size < 512 || !std::has_single_bit(*sector_size)) {
        KLOG_ERROR("blkfront: %s: rejected sector-size %llu", name,
                   static_cast<unsigned long long>(*sector_size));
        co_return Error::bad_input;
    }
    if (*sector_size > page_size) {
        KLOG_ERROR("blkfront: %s: sector-size %llu is larger than a page; not supported", name,
                   static_cast<unsigned long long>(*sector_size));
        co_return Error::not_supported;
    }
    Result<std::uint64_t> info = optional_value(co_await dev_.read_backend_uint("info"), 0);
    if (!info) co_return info.error();

    Result<bool> flush = flag_value(co_await dev_.read_backend_uint("feature-flush-cache"));
    if (!flush) co_return flush.error();
    Result<bool> barrier = flag_value(co_await dev_.read_backend_uint("feature-barrier"));
    if (!barrier) co_return barrier.error();
    Result<bool> discard = flag_value(co_await dev_.read_backend_uint("feature-discard"));
    if (!discard) co_return discard.error();
    Result<bool> persistent = flag_value(co_await dev_.read_backend_uint("feature-persistent"));
    if (!persistent) co_return persistent.error();

    const unsigned shift = static_cast<unsigned>(std::countr_zero(*sector_size)) - 9;
    block::Geometry g;
    g.sector_size = static_cast<std::uint32_t>(*sector_size);
    g.sectors = *sectors512 >> shift;  // a tail shorter than a logical sector is not addressable
    if ((*sectors512 & ((std::uint64_t{1} << shift) - 1)) != 0) {
        KLOG_WARN("blkfront: %s: %llu 512-byte sectors is not a whole number of %u-byte sectors", name,
                  static_cast<unsigned long long>(*sectors512), g.sector_size);
    }
    g.read_only = (*info & VDISK_READONLY) != 0;
    // io/blkif.h: FLUSH_DISKCACHE when offered, else an (empty) WRITE_BARRIER.
    features_.flush = *flush ? FlushOp::flush_diskcache : *barrier ? FlushOp::write_barrier : FlushOp::none;
    features_.discard = *discard;
    features_.persistent = *persistent;
    g.flush = features_.flush != FlushOp::none;
    g.discard = features_.discard;
    if (const char* why = changed_disk(g)) {
        KLOG_ERROR(
            "blkfront: %s: the disk changed across a reconnect (%s: %llu x %u bytes%s -> %llu x %u bytes%s); "
            "failing the device: every call now fails with an I/O error",
            name, why, static_cast<unsigned long long>(geometry_.sectors), geometry_.sector_size,
            geometry_.flush ? ", flush" : "", static_cast<unsigned long long>(g.sectors), g.sector_size,
            g.flush ? ", flush" : "");
        failed_ = true;
        co_return Error::io;
    }
    if (geometry_.sector_size != 0 && g.sectors != geometry_.sectors) {
        KLOG_INFO("blkfront: %s: the disk grew from %llu to %llu sectors", name,
                  static_cast<unsigned long long>(geometry_.sectors), static_cast<unsigned long long>(g.sectors));
    }
    geometry_ = g;
    sector_shift_ = shift;
    co_return Result<void>{};
}

const char* Blkfront::changed_disk(const block::Geometry& g) const {
    if (geometry_.sector_size == 0) return nullptr;  // the first connection
    if (g.sector_size != geometry_.sector_size) return "another sector size";
    if (g.sectors < geometry_.sectors) return "it shrank";
    // A flush that now does nothing would make unflushed writes look durable.
    if (geometry_.flush && !g.flush) return "flush withdrawn";
    return nullptr;
}

void Blkfront::go_live() {
    ++epoch_;
    static constexpr const char* flush_names[] = {"none", "flush-cache", "barrier"};
    KLOG_INFO(
        "blkfront: %s: connected: %llu sectors of %u bytes%s, ring %u page(s), %u segments/request%s, "
        "flush %s, discard %s, persistent grants %s",
        dev_.nodename().data(), static_cast<unsigned long long>(geometry_.sectors), geometry_.sector_size,
        geometry_.read_only ? " (read-only)" : "", 1u << features_.ring_page_order,
        features_.segments_per_request, features_.indirect ? " (indirect)" : "",
        flush_names[static_cast<int>(features_.flush)], features_.discard ? "on" : "off",
        features_.persistent ? "on" : "off");
}

// ---- teardown --------------------------------------------------------------------------------

void Blkfront::go_down(Error why) {
    // Requests stay in the table (their pages may still be in the backend's hands until the
    // teardown revokes the grants); their calls are told now.
    for (RING_IDX i = 0; i < ring_.slots(); ++i) {
        Request& q = requests_[i];
        if (!q.busy || q.op == nullptr) continue;
        ++stats_.aborted;
        Op& op = *q.op;
        q.op = nullptr;
        op_part_done(op, why);
    }
    while (Op* w = waiters_.pop_front()) {
        ++stats_.aborted;
        w->wait_error = why;
        loop().schedule(w->wakeup);
    }
    reserved_requests_ = reserved_pages_ = reserved_indirect_ = 0;
}

void Blkfront::revoke_pool(Page* pages, Pool& pool) {
    std::size_t held = 0;
    for (std::uint16_t i = 0; i < pool.count; ++i) {
        Page& p = pages[i];
        if (p.state == PageState::busy) p.state = PageState::free;
        p.next = none;
        if (p.grant.valid() && !p.grant.revoke()) {
            if (p.state != PageState::held) ++stats_.held_pages;
            p.state = PageState::held;  // keeps its grant: no new page, no new reference
            ++held;
        }
    }
    if (held != 0) {
        KLOG_ERROR("blkfront: %s: backend still maps %zu pages after closing; kept out of use until it lets go",
                   dev_.nodename().data(), held);
    }
}

void Blkfront::release() {
    if (channel_) {
        channel_->set_handler(nullptr);
        platform_.close_channel(channel_);
        channel_ = nullptr;
    }
    // The backend has let go (XenbusDevice waited for its Closing/Closed, or it is gone).
    for (RING_IDX i = 0; i < BlkRing::size; ++i) {
        Request& q = requests_[i];
        if (q.busy) {
            q.busy = false;
            q.last_id = q.id;
        }
        q.op = nullptr;
        q.first_page = q.indirect_page = none;
    }
    in_flight_ = 0;
    // A grant still in use means the backend has not let go: keep that page out of
    // circulation for good.
    revoke_pool(data_, data_pool_);
    revoke_pool(indirect_, indirect_pool_);
    bool ring_held = false;
    for (xen::Grant& g : ring_grants_) {
        if (g.valid() && !g.revoke()) ring_held = true;  // kept: reclaim_ring() tries again
    }
    ring_.detach();
    if (ring_held) {
        KLOG_ERROR("blkfront: %s: backend still maps the ring after closing; kept for it", dev_.nodename().data());
    }
    reset_free_lists();
}

// ---- errors and resets -----------------------------------------------------------------------

void Blkfront::report_reset(const char* why) {
    KLOG_ERROR(
        "blkfront: %s: resetting the device: %s (%llu unknown, %llu not in flight, %llu duplicate ids; %llu "
        "bad "
        "status, %llu bad operation)",
        dev_.nodename().data(), why, static_cast<unsigned long long>(stats_.unknown_id),
        static_cast<unsigned long long>(stats_.not_in_flight),
        static_cast<unsigned long long>(stats_.duplicate), static_cast<unsigned long long>(stats_.bad_status),
        static_cast<unsigned long long>(stats_.bad_operation));
}

// ---- registry --------------------------------------------------------------------------------

namespace {
Registry<Blkfront, max_attached> g_registry;
}  // namespace

std::span<Blkfront* const> blkfront_devices() { return g_registry.devices(); }

Result<void> register_device(Blkfront& device) {
    if (g_registry.devices().size() == max_attached) return Error::no_space;
    TRY_VOID(block::add_device(device));
    return g_registry.add(device);
}

void clear_devices() {
    g_registry.clear();
    block::clear_devices();
}

}  // namespace keel::blkfront

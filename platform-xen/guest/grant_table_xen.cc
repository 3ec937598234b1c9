// The guest's grant table: ask Xen how many frames it allows (GNTTABOP_query_size), map them
// into a hole of the guest-physical address space (XENMEM_add_to_physmap with
// XENMAPSPACE_grant_table), and run the pure GrantTable over them.
//
// Why a hole and not RAM: add_to_physmap replaces whatever backs the GFN with the grant frame,
// so mapping over a RAM page would throw that page away under the allocator's feet. Boot picks
// the hole (grant_window()) and maps it RW+NX, so the frames are usable at once.
#include <new>

#include "internal.h"
#include "keel/xen/grant_table.h"
#include "keel/xen/hypercall.h"
#include "keel/xen/platform.h"

namespace keel::xen {
namespace {


constexpr std::size_t max_entries = grant_frames_wanted * grant_entries_per_frame;

// Bookkeeping for the table (not shared with Xen).
std::uint32_t g_meta[max_entries];
alignas(GrantTable) unsigned char g_table_storage[sizeof(GrantTable)];
GrantTable* g_table = nullptr;
unsigned g_frames = 0;  // mapped at grant_window(), frame i at GFN window/4096 + i
const char* g_failure = nullptr;  // set once init failed: later calls fail the same way

/// A fixed-size message: "grant table: <what> (<number>)".
class Message {
public:
    Message& add(const char* s) {
        while (*s && len_ + 1 < sizeof buf_) buf_[len_++] = *s++;
        buf_[len_] = '\0';
        return *this;
    }
    Message& add_number(long v) {
        char digits[24];
        int n = 0;
        const bool neg = v < 0;
        unsigned long u = neg ? 0ul - static_cast<unsigned long>(v) : static_cast<unsigned long>(v);
        do {
            digits[n++] = static_cast<char>('0' + u % 10);
            u /= 10;
        } while (u != 0);
        if (neg) add("-");
        while (n > 0 && len_ + 1 < sizeof buf_) buf_[len_++] = digits[--n];
        buf_[len_] = '\0';
        return *this;
    }
    const char* str() const { return buf_; }

private:
    char buf_[160] = {};
    std::size_t len_ = 0;
};

Message g_message;

Result<void> fail(Error e, const char* what, long rc) {
    g_message.add("grant table: ").add(what).add(" (").add_number(rc).add(")");
    g_failure = g_message.str();
    early_write(g_failure);
    early_write("\n");
    return e;
}

// Classic PV: GNTTABOP_setup_table names the table's machine frames (growing it to `frames`);
// each is mapped over a page of the window, which boot set aside for it (its own frame unused).
Result<void> map_frames_pv(std::uint64_t window, unsigned frames) {
    xen_pfn_t mfns[grant_frames_wanted] = {};
    gnttab_setup_table setup{};
    setup.dom = DOMID_SELF;
    setup.nr_frames = frames;
    set_xen_guest_handle(setup.frame_list, mfns);
    if (long rc = hypercall<__HYPERVISOR_grant_table_op>(GNTTABOP_setup_table, arg(&setup), 1); rc != 0)
        return fail(Error::io, "GNTTABOP_setup_table failed", rc);
    if (setup.status != GNTST_okay) return fail(Error::io, "GNTTABOP_setup_table refused", setup.status);
    for (unsigned i = 0; i < frames; ++i) {
        if (long rc = pv_map_page(window + i * 4096ull, mfns[i]); rc != 0)
            return fail(Error::io, "mapping a grant frame (update_va_mapping) failed", rc);
    }
    return {};
}

// memory.h, XENMEM_add_to_physmap: frame i of our grant table appears at GFN window/4096 + i.
// Asking for frames beyond nr_frames makes Xen grow the table (up to max_nr_frames).
Result<void> map_frames(std::uint64_t window, unsigned frames) {
    if (pv_mode()) return map_frames_pv(window, frames);
    for (unsigned i = 0; i < frames; ++i) {
        xen_add_to_physmap map{};
        map.domid = DOMID_SELF;
        map.space = XENMAPSPACE_grant_table;
        map.idx = i;
        map.gpfn = (window >> 12) + i;
        if (long rc = memory_op(XENMEM_add_to_physmap, &map); rc != 0) {
            return fail(Error::io, "XENMEM_add_to_physmap(XENMAPSPACE_grant_table) failed", rc);
        }
    }
    return {};
}

}  // namespace

void pv_unmap_grant_frames() {
    if (g_table == nullptr) return;
    const std::uint64_t window = grant_window();
    for (unsigned i = 0; i < g_frames; ++i) {
        const std::uint64_t va = window + i * 4096ull;
        if (long rc = pv_map_page(va, pv_mfn(va >> 12)); rc != 0)
            (void)fail(Error::io, "unmapping a grant frame before the suspend failed", rc);
    }
}

std::uint64_t gfn_of(const void* page) {
    const std::uint64_t pfn = reinterpret_cast<std::uintptr_t>(page) >> 12;
    return pv_mode() ? pv_mfn(pfn) : pfn;
}

void resume_grant_table() {
    if (g_table == nullptr) return;  // never used: the next grant_table() maps it
    // The new domain's table is fresh (the toolstack seeded only the reserved console and
    // xenstore entries); what stood at these GFNs is restored RAM that the mapping replaces.
    // A failure is on Xen's console (fail()); grants then reach no backend, and the frontends
    // that need them fail their handshakes with errors of their own.
    (void)map_frames(grant_window(), g_frames);
}

Result<void> init_grant_table() {
    if (g_table != nullptr) return {};
    if (g_failure != nullptr) return Error::io;

    // grant_table.h, GNTTABOP_query_size: current and maximum frames of our table.
    gnttab_query_size q{};
    q.dom = DOMID_SELF;
    if (long rc = hypercall<__HYPERVISOR_grant_table_op>(GNTTABOP_query_size, arg(&q), 1); rc != 0) {
        return fail(Error::not_supported, "GNTTABOP_query_size failed", rc);
    }
    if (q.status != GNTST_okay) return fail(Error::not_supported, "GNTTABOP_query_size refused", q.status);
    if (q.max_nr_frames == 0) return fail(Error::not_supported, "Xen allows no grant frames", 0);
    const unsigned frames = q.max_nr_frames < grant_frames_wanted ? q.max_nr_frames : grant_frames_wanted;

    const std::uint64_t window = grant_window();
    if (window == 0) return fail(Error::no_space, "no hole below 4 GiB in the memory map for frames", frames);

    TRY_VOID(map_frames(window, frames));
    g_frames = frames;

    auto* entries = reinterpret_cast<grant_entry_v1_t*>(window);  // identity-mapped
    g_table = new (g_table_storage)
        GrantTable(std::span<grant_entry_v1_t>(entries, frames * grant_entries_per_frame), g_meta);
    return {};
}

GrantTable& grant_table() {
    if (g_table == nullptr && !init_grant_table().ok()) crash(g_failure);
    return *g_table;
}

}  // namespace keel::xen

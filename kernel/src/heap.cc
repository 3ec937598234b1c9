// The kernel heap: slabs of size classes plus whole-page blocks. See heap.h for the layout.
#include "keel/heap.h"

#include <array>
#include <new>

#include "keel/panic.h"

namespace keel {
namespace {

// Object sizes. Most divide the 4032 bytes after a slab header exactly; 128 and 256 are there
// because they are common request sizes. All are multiples of 16, so every object is 16-aligned.
constexpr std::array<std::uint16_t, Heap::class_count> class_size = {
    16, 32, 48, 64, 96, 112, 128, 144, 192, 224, 256, 288, 336, 448, 576, 672, 1008, 1344, 2016};
static_assert(class_size[Heap::class_count - 1] == Heap::max_small);

constexpr std::size_t header_size = 64;  // slab header and page-block header alike
constexpr std::size_t slab_room = Heap::page_size - header_size;

// Magics are XORed with the header's address, so stale copies elsewhere do not validate.
constexpr std::uint64_t slab_magic = 0x6b65656c'534c4142ull;   // "keelSLAB"
constexpr std::uint64_t large_magic = 0x6b65656c'50414745ull;  // "keelPAGE"

constexpr std::size_t capacity_of(std::size_t cls) { return slab_room / class_size[cls]; }
static_assert(slab_room / 16 <= 256, "slab bitmap holds 256 objects");

// The smallest class that fits `size` and whose objects are all `align`-aligned: objects sit at
// 64 + i * class_size into a page, so the class size must be a multiple of the alignment.
std::size_t class_for(std::size_t size, std::size_t align) {
    for (std::size_t c = 0; c < Heap::class_count; ++c) {
        if (class_size[c] >= size && class_size[c] % align == 0) return c;
    }
    return Heap::class_count;
}

std::uintptr_t page_of(const void* p) { return reinterpret_cast<std::uintptr_t>(p) & ~(Heap::page_size - 1); }

}  // namespace

struct Heap::Slab : ListNode<> {
    std::uint64_t magic;
    std::uint16_t cls;
    std::uint16_t used;
    std::uint16_t capacity;
    std::uint16_t reserved;
    std::uint64_t bitmap[4];  // bit set = object handed out

    char* objects() { return reinterpret_cast<char*>(this) + header_size; }
};
struct Heap::Large {
    std::uint64_t magic;
    std::uint64_t pages;   // including the header page
    std::uint64_t offset;  // from the header to the data
    std::uint64_t requested;
};

Heap::Heap(PageSource& src) : src_(src) {
    static_assert(sizeof(Slab) == header_size);
    static_assert(sizeof(Large) <= header_size);
}

Heap::~Heap() {
    for (auto& list : partial_) {
        while (Slab* s = list.pop_front()) {
            if (s->used != 0) continue;  // still has live objects: leave the page alone
            release_slab(s);
            --pages_;
        }
    }
}

void Heap::account_alloc(std::size_t bytes) {
    in_use_ += bytes;
    if (in_use_ > peak_) peak_ = in_use_;
}

void* Heap::alloc(std::size_t size, std::size_t align) {
    ++allocations_;
    if (align == 0 || (align & (align - 1)) != 0 || align > max_align) return nullptr;
    if (align < 16) align = 16;
    if (size == 0) size = 1;
    if (align <= header_size && size <= max_small) {
        const std::size_t cls = class_for(size, align);
        if (cls < class_count) return alloc_small(cls);
    }
    return alloc_large(size, align);
}

void* Heap::alloc_small(std::size_t cls) {
    Slab* s = partial_[cls].front();
    if (s == nullptr) {
        void* page = src_.alloc_pages(1);
        if (page == nullptr) return nullptr;
        KASSERT(page_of(page) == reinterpret_cast<std::uintptr_t>(page));
        ++pages_;
        s = new (page) Slab();
        s->magic = slab_magic ^ reinterpret_cast<std::uintptr_t>(s);
        s->cls = static_cast<std::uint16_t>(cls);
        s->used = 0;
        s->capacity = static_cast<std::uint16_t>(capacity_of(cls));
        s->reserved = 0;
        for (auto& w : s->bitmap) w = 0;
        partial_[cls].push_back(*s);
    }

    std::size_t index = 0;
    for (std::size_t w = 0; w < 4; ++w) {
        if (s->bitmap[w] != ~0ull) {
            index = w * 64 + static_cast<std::size_t>(__builtin_ctzll(~s->bitmap[w]));
            break;
        }
    }
    // A slab on the partial list has used < capacity, so some bit below capacity is clear and
    // the first clear bit is one of those.
    KASSERT(index < s->capacity);
    s->bitmap[index / 64] |= 1ull << (index % 64);
    if (++s->used == s->capacity) s->unlink();
    account_alloc(class_size[cls]);
    return s->objects() + index * class_size[cls];
}

void* Heap::alloc_large(std::size_t size, std::size_t align) {
    const std::size_t offset = align > header_size ? align : header_size;
    if (size > SIZE_MAX - offset - page_size) return nullptr;
    const std::size_t pages = (offset + size + page_size - 1) / page_size;
    void* mem = src_.alloc_pages(pages);
    if (mem == nullptr) return nullptr;
    KASSERT(page_of(mem) == reinterpret_cast<std::uintptr_t>(mem));
    pages_ += pages;
    auto* h = new (mem) Large();
    h->magic = large_magic ^ reinterpret_cast<std::uintptr_t>(h);
    h->pages = pages;
    h->offset = offset;
    h->requested = size;
    account_alloc(pages * page_size - offset);
    return reinterpret_cast<char*>(h) + offset;
}

Heap::Block Heap::lookup(const void* p, const char* op) const {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    // Slab objects and page blocks aligned below a page never start on a page boundary; a
    // page-aligned block has its header on the page before it.
    const bool page_aligned = page_of(p) == a;
    const std::uintptr_t hdr = page_aligned ? a - page_size : page_of(p);
    auto* s = reinterpret_cast<Slab*>(hdr);
    auto* l = reinterpret_cast<Large*>(hdr);

    Block b;
    if (!page_aligned && s->magic == (slab_magic ^ hdr)) {
        if (a - hdr < header_size) panic("heap: %s(%p): points into a slab header", op, p);
        const std::size_t off = a - hdr - header_size;
        const std::size_t size = class_size[s->cls];
        if (off % size != 0 || off / size >= s->capacity)
            panic("heap: %s(%p): not the start of a heap block", op, p);
        b.slab = s;
        b.index = off / size;
        if ((s->bitmap[b.index / 64] & (1ull << (b.index % 64))) == 0)
            panic("heap: %s(%p): block already freed (double free?)", op, p);
        return b;
    }
    if (l->magic == (large_magic ^ hdr)) {
        if (hdr + l->offset != a) panic("heap: %s(%p): not the start of a heap block", op, p);
        b.large = l;
        return b;
    }
    panic("heap: %s(%p): not a heap block, or already freed", op, p);
}

std::size_t Heap::usable_size(const void* p) const {
    const Block b = lookup(p, "usable_size");
    if (b.slab != nullptr) return class_size[b.slab->cls];
    return b.large->pages * page_size - b.large->offset;
}

void Heap::free(void* p) {
    if (p == nullptr) return;
    const Block b = lookup(p, "free");
    if (b.slab != nullptr) {
        free_small(b.slab, b.index);
        return;
    }
    Large* l = b.large;
    const std::size_t pages = l->pages;
    in_use_ -= pages * page_size - l->offset;
    // A second free of this block now fails the magic check. (No destructor call: the store
    // must not look dead to the compiler, and a Large is trivially destructible anyway.)
    l->magic = 0;
    src_.free_pages(l, pages);
    pages_ -= pages;
}

void Heap::free_small(Slab* s, std::size_t index) {
    const std::size_t cls = s->cls;
    const bool was_full = s->used == s->capacity;
    s->bitmap[index / 64] &= ~(1ull << (index % 64));
    --s->used;
    in_use_ -= class_size[cls];
    IntrusiveList<Slab>& list = partial_[cls];
    if (was_full) list.push_front(*s);  // reuse warm slabs first
    if (s->used != 0) return;
    // Keep one empty slab per class so alloc/free of a single object does not bounce pages.
    if (list.front() == s && list.next(*s) == nullptr) return;
    s->unlink();
    release_slab(s);
}

void Heap::release_slab(Slab* s) {
    // Clear the magic so stale pointers into this page fail validation. No destructor call:
    // a store just before the end of an object's lifetime may be dropped as dead; the node is
    // already unlinked, so the destructor has nothing left to do.
    KASSERT(!s->linked());
    s->magic = 0;
    src_.free_pages(s, 1);
    --pages_;
}

void* Heap::realloc(void* p, std::size_t size) {
    if (p == nullptr) return alloc(size);
    if (size == 0) {
        free(p);
        return nullptr;
    }
    const Block b = lookup(p, "realloc");
    const std::size_t usable =
        b.slab != nullptr ? class_size[b.slab->cls] : b.large->pages * page_size - b.large->offset;
    if (size <= usable && (b.slab != nullptr || size > usable / 2)) return p;
    void* n = alloc(size);
    if (n == nullptr) return nullptr;
    __builtin_memcpy(n, p, size < usable ? size : usable);
    free(p);
    return n;
}

std::size_t Heap::headroom() const {
    const std::size_t free = src_.free_page_count();
    return free > SIZE_MAX / page_size ? SIZE_MAX : free * page_size;
}

namespace {
Heap* g_heap = nullptr;
}  // namespace

Heap& global_heap() {
    KASSERT(g_heap != nullptr);
    return *g_heap;
}

void set_global_heap(Heap* h) { g_heap = h; }

std::size_t heap_headroom() { return g_heap != nullptr ? g_heap->headroom() : SIZE_MAX; }

void* PageAllocatorSource::alloc_pages(std::size_t n) {
    auto r = pages_.alloc(n);
    if (!r.ok()) return nullptr;
    return reinterpret_cast<void*>(static_cast<std::uintptr_t>(r.value()) + offset_);
}

void PageAllocatorSource::free_pages(void* p, std::size_t n) {
    pages_.free(reinterpret_cast<std::uintptr_t>(p) - offset_, n);
}

}  // namespace keel

// The kernel heap: malloc/free over whole pages from a PageSource.
//  - Small requests (up to 2016 bytes, alignment up to 64) come from one-page slabs of 19 size
//    classes. A slab's header (64 bytes: list links, a magic tied to the page address, an
//    allocation bitmap) sits at the start of its page, so no object starts on a page boundary.
//  - Larger or more aligned requests get whole pages with a 64-byte header on the first page;
//    the data starts at max(64, align) into it. A 4096-aligned block therefore costs one extra
//    page (its header page): code that wants bare pages should use PageAllocator.
// Every free is checked: a pointer that no allocation returned, or one already freed, panics.
#pragma once

#include <cstddef>
#include <cstdint>

#include "keel/intrusive_list.h"
#include "keel/page_alloc.h"

namespace keel {

/// Context: loop only (not re-entrant; never from an upcall or trap handler).
class Heap {
public:
    /// Where the heap gets its pages (4 KiB, page-aligned, mapped read/write).
    struct PageSource {
        virtual ~PageSource() = default;
        /// n contiguous pages, or nullptr when out.
        virtual void* alloc_pages(std::size_t n) = 0;
        virtual void free_pages(void* p, std::size_t n) = 0;
        /// Pages alloc_pages could still hand out (in total, not necessarily contiguous).
        virtual std::size_t free_page_count() const = 0;
    };

    static constexpr std::size_t page_size = 4096;
    /// Largest alignment alloc() honours.
    static constexpr std::size_t max_align = 4096;
    /// Largest size served from a slab.
    static constexpr std::size_t max_small = 2016;

    explicit Heap(PageSource& src);
    /// Returns cached empty slabs to the source. Blocks still allocated stay with their pages.
    ~Heap();
    Heap(const Heap&) = delete;
    Heap& operator=(const Heap&) = delete;

    /// `size` bytes aligned to `align` (a power of two, at most max_align; smaller values mean
    /// 16). size 0 gets a minimal block. nullptr when out of memory or for a bad alignment.
    void* alloc(std::size_t size, std::size_t align = 16);
    /// Free a block from alloc/realloc. nullptr is ignored; a foreign pointer or a double free
    /// panics.
    void free(void* p);
    /// C realloc: nullptr p allocates, size 0 frees (and returns nullptr). Keeps the block when
    /// it still fits (and, for page blocks, is not less than half used); otherwise moves it
    /// (16-byte alignment). On failure returns nullptr and leaves p untouched.
    void* realloc(void* p, std::size_t size);
    /// Bytes usable in the block at p (at least what was asked for). Validates p like free().
    std::size_t usable_size(const void* p) const;

    /// Bytes handed out and not yet freed, counted as usable_size() of each live block.
    std::size_t in_use() const { return in_use_; }
    /// Highest in_use() so far.
    std::size_t peak() const { return peak_; }
    /// Number of alloc() calls so far (realloc counts when it has to move the block). For
    /// tests that prove a path does not allocate.
    std::size_t allocations() const { return allocations_; }
    /// Pages currently held from the source (slabs, cached empty slabs and page blocks).
    std::size_t pages() const { return pages_; }
    /// Bytes still to be had: the source's free pages (free slots in slabs are not counted).
    std::size_t headroom() const;

    /// Number of slab size classes.
    static constexpr std::size_t class_count = 19;

private:
    struct Slab;
    struct Large;
    struct Block {
        Slab* slab = nullptr;
        Large* large = nullptr;
        std::size_t index = 0;
    };

    /// Find the slab or page block that `p` was handed out from; panics if there is none.
    Block lookup(const void* p, const char* op) const;
    void* alloc_small(std::size_t cls);
    void* alloc_large(std::size_t size, std::size_t align);
    void free_small(Slab* s, std::size_t index);
    void release_slab(Slab* s);
    void account_alloc(std::size_t bytes);

    PageSource& src_;
    IntrusiveList<Slab> partial_[class_count];  // slabs with a free slot, per class
    std::size_t in_use_ = 0;
    std::size_t peak_ = 0;
    std::size_t allocations_ = 0;
    std::size_t pages_ = 0;
};

/// The heap behind malloc and operator new in the guest. Using it before set_global_heap() is
/// a bug (panics).
Heap& global_heap();
void set_global_heap(Heap* h);
/// global_heap().headroom(), or SIZE_MAX with no global heap (host builds, where operator new
/// is the host's). What a client can make the guest allocate is checked against this before
/// the work starts (net::serve's reserve, the rx copies' share), so that running out is a
/// refusal there, not a panic in an operator new later.
std::size_t heap_headroom();

/// A Heap::PageSource over a PageAllocator, for memory mapped at physical + virt_offset.
class PageAllocatorSource final : public Heap::PageSource {
public:
    explicit PageAllocatorSource(PageAllocator& pages, std::uintptr_t virt_offset = 0)
        : pages_(pages), offset_(virt_offset) {}
    void* alloc_pages(std::size_t n) override;
    void free_pages(void* p, std::size_t n) override;
    std::size_t free_page_count() const override { return pages_.free_pages(); }

private:
    PageAllocator& pages_;
    std::uintptr_t offset_;
};

}  // namespace keel

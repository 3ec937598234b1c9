// A global keel::Heap whose free pages the test sets, for the checks made against
// keel::heap_headroom() before client-driven allocations (host builds have no global heap:
// operator new is the host's, and heap_headroom() is unlimited).
#pragma once

#include <cstddef>
#include <cstdlib>

#include "keel/heap.h"

namespace keel::net::test {

struct ScarceHeap : Heap::PageSource {
    std::size_t left = 1024;  ///< free pages: what heap_headroom() reports, in pages
    Heap heap{*this};

    ScarceHeap() { set_global_heap(&heap); }
    ~ScarceHeap() override { set_global_heap(nullptr); }
    ScarceHeap(const ScarceHeap&) = delete;
    ScarceHeap& operator=(const ScarceHeap&) = delete;

    void* alloc_pages(std::size_t n) override {
        if (n > left) return nullptr;
        left -= n;
        return std::aligned_alloc(4096, n * 4096);
    }
    void free_pages(void* p, std::size_t n) override {
        left += n;
        std::free(p);
    }
    std::size_t free_page_count() const override { return left; }
};

}  // namespace keel::net::test

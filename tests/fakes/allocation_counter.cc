// The allocation counter: global operator new replaced for every test executable that uses
// AllocationCounter; counting is off except inside an AllocationCounter's lifetime.
#include "fakes/allocation_counter.h"

#include <cstdlib>
#include <new>

namespace keel::test {
namespace {
bool g_counting = false;
std::size_t g_count = 0;
}  // namespace

AllocationCounter::AllocationCounter() {
    g_count = 0;
    g_counting = true;
}
AllocationCounter::~AllocationCounter() { g_counting = false; }
std::size_t AllocationCounter::count() const { return g_count; }

}  // namespace keel::test

namespace {
void* counted_alloc(std::size_t n, std::size_t align) {
    if (keel::test::g_counting) ++keel::test::g_count;
    if (n == 0) n = 1;
    void* p = align > alignof(std::max_align_t) ? std::aligned_alloc(align, (n + align - 1) / align * align)
                                                : std::malloc(n);
    if (!p) throw std::bad_alloc();
    return p;
}
}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n, 0); }
void* operator new[](std::size_t n) { return counted_alloc(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) {
    return counted_alloc(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
    return counted_alloc(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

// malloc and operator new over the kernel heap (keel::global_heap()).
// A failed operator new panics: there are no exceptions to throw, and code that can cope with
// running out of memory uses the nothrow forms or Heap::alloc directly.
#include <cstddef>
#include <cstdint>
#include <new>

#include "keel/heap.h"
#include "keel/panic.h"

namespace {

// errno values returned by posix_memalign.
constexpr int err_nomem = 12;
constexpr int err_inval = 22;

bool valid_align(std::size_t align) {
    return align != 0 && (align & (align - 1)) == 0 && align <= keel::Heap::max_align;
}

void* must_alloc(std::size_t size, std::size_t align) {
    void* p = keel::global_heap().alloc(size, align);
    if (p == nullptr) {
        if (!valid_align(align)) keel::panic("operator new: unsupported alignment %zu", align);
        keel::panic("out of memory (operator new of %zu bytes)", size);
    }
    return p;
}

}  // namespace

extern "C" {

void* malloc(std::size_t size) { return keel::global_heap().alloc(size); }

void free(void* p) { keel::global_heap().free(p); }

void* calloc(std::size_t n, std::size_t size) {
    if (size != 0 && n > SIZE_MAX / size) return nullptr;
    void* p = keel::global_heap().alloc(n * size);
    if (p != nullptr) __builtin_memset(p, 0, n * size);
    return p;
}

void* realloc(void* p, std::size_t size) { return keel::global_heap().realloc(p, size); }

void* aligned_alloc(std::size_t align, std::size_t size) {
    if (!valid_align(align)) return nullptr;
    return keel::global_heap().alloc(size, align);
}

int posix_memalign(void** out, std::size_t align, std::size_t size) {
    if (!valid_align(align) || align < sizeof(void*)) return err_inval;
    void* p = keel::global_heap().alloc(size, align);
    if (p == nullptr) return err_nomem;
    *out = p;
    return 0;
}

std::size_t malloc_usable_size(void* p) { return p ? keel::global_heap().usable_size(p) : 0; }

}  // extern "C"

void* operator new(std::size_t size) { return must_alloc(size, 16); }
void* operator new[](std::size_t size) { return must_alloc(size, 16); }
void* operator new(std::size_t size, std::align_val_t align) {
    return must_alloc(size, static_cast<std::size_t>(align));
}
void* operator new[](std::size_t size, std::align_val_t align) {
    return must_alloc(size, static_cast<std::size_t>(align));
}

void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    return keel::global_heap().alloc(size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
    return keel::global_heap().alloc(size);
}
void* operator new(std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
    return keel::global_heap().alloc(size, static_cast<std::size_t>(align));
}
void* operator new[](std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
    return keel::global_heap().alloc(size, static_cast<std::size_t>(align));
}

void operator delete(void* p) noexcept { keel::global_heap().free(p); }
void operator delete[](void* p) noexcept { keel::global_heap().free(p); }
void operator delete(void* p, std::size_t) noexcept { keel::global_heap().free(p); }
void operator delete[](void* p, std::size_t) noexcept { keel::global_heap().free(p); }
void operator delete(void* p, std::align_val_t) noexcept { keel::global_heap().free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { keel::global_heap().free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { keel::global_heap().free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { keel::global_heap().free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { keel::global_heap().free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { keel::global_heap().free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
    keel::global_heap().free(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
    keel::global_heap().free(p);
}

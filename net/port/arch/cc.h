/* lwIP's compiler and platform definitions for keel (lwip/arch.h includes this).
 * Built for the guest (freestanding, our own libc in kernel/guest/libc.cc) and for the host
 * unit tests (glibc). Diagnostics go to keel's log, assertions to keel::panic (net/src/port.cc). */
#ifndef KEEL_LWIP_ARCH_CC_H
#define KEEL_LWIP_ARCH_CC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Implemented in net/src/port.cc. */
void keel_lwip_diag(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void keel_lwip_assert(const char* message, const char* file, int line);
uint32_t keel_lwip_rand(void);
/* mem_malloc / mem_free / mem_calloc (MEM_LIBC_MALLOC) over the keel heap, counted. */
void* keel_lwip_malloc(size_t size);
void keel_lwip_free(void* p);
void* keel_lwip_calloc(size_t n, size_t size);

#ifdef __cplusplus
}
#endif

/* glibc's <ctype.h> macros reach into its locale tables, which the guest does not have: use
 * lwIP's own character class helpers. */
#define LWIP_NO_CTYPE_H 1

/* x86-64 is little-endian; let the compiler swap bytes. */
#ifndef BYTE_ORDER
#define BYTE_ORDER LITTLE_ENDIAN  /* glibc's <endian.h> may have said so already */
#endif
#define lwip_htons(x) __builtin_bswap16((uint16_t)(x))
#define lwip_htonl(x) __builtin_bswap32((uint32_t)(x))

#define LWIP_RAND() keel_lwip_rand()

/* LWIP_PLATFORM_DIAG is called with a parenthesised printf argument list. */
#define LWIP_PLATFORM_DIAG(x) \
    do {                      \
        keel_lwip_diag x;     \
    } while (0)
#define LWIP_PLATFORM_ASSERT(x) keel_lwip_assert((x), __FILE_NAME__, __LINE__)

/* Packed protocol headers. */
#define PACK_STRUCT_FIELD(x) x
#define PACK_STRUCT_STRUCT __attribute__((packed))
#define PACK_STRUCT_BEGIN
#define PACK_STRUCT_END

#endif /* KEEL_LWIP_ARCH_CC_H */

// The few C++ ABI and compiler-support symbols a freestanding image still needs.
#include <bits/functexcept.h>

#include <cstdint>

#include "keel/panic.h"

extern "C" {

/// A call through a pure virtual slot: an object used during construction or after destruction.
[[noreturn]] void __cxa_pure_virtual() { keel::panic("pure virtual function called"); }
[[noreturn]] void __cxa_deleted_virtual() { keel::panic("deleted virtual function called"); }

/// Destructors of static objects are never run: a unikernel does not exit, it is shut down.
/// (-fno-use-cxa-atexit makes GCC register them with atexit; both are accepted and ignored.)
int __cxa_atexit(void (*)(void*), void*, void*) { return 0; }
int atexit(void (*)()) { return 0; }
void* __dso_handle = &__dso_handle;

/// Canary for -fstack-protector with -mstack-protector-guard=global. Nonzero from the start so
/// even code that runs before the platform picks a random value is protected against plain
/// overwrites; the platform may replace it very early in boot (before any protected function
/// that will return has started).
std::uintptr_t __stack_chk_guard = 0x2f8a'6b1e'c35d'9047ull;

[[noreturn]] void __stack_chk_fail() { keel::panic("stack smashing detected"); }

}  // extern "C"

// libstdc++ headers call these to report errors they would throw for (std::array::at,
// string_view::substr, optional::value, ...). Without exceptions they are bugs: panic with the
// reason.
namespace std {

void __throw_bad_alloc() { keel::panic("std::bad_alloc"); }
void __throw_bad_array_new_length() { keel::panic("std::bad_array_new_length"); }
void __throw_bad_function_call() { keel::panic("std::bad_function_call"); }
void __throw_logic_error(const char* what) { keel::panic("std::logic_error: %s", what); }
void __throw_invalid_argument(const char* what) { keel::panic("std::invalid_argument: %s", what); }
void __throw_domain_error(const char* what) { keel::panic("std::domain_error: %s", what); }
void __throw_length_error(const char* what) { keel::panic("std::length_error: %s", what); }
void __throw_out_of_range(const char* what) { keel::panic("std::out_of_range: %s", what); }
void __throw_out_of_range_fmt(const char* fmt, ...) {
    // The format uses libstdc++'s own conventions (%zu and %s); show it unexpanded.
    keel::panic("std::out_of_range: %s", fmt);
}
void __throw_runtime_error(const char* what) { keel::panic("std::runtime_error: %s", what); }
void __throw_overflow_error(const char* what) { keel::panic("std::overflow_error: %s", what); }

}  // namespace std

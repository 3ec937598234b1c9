// The stack-smash kind, in its own file: built with the project's protector flags
// (-fstack-protector-strong, the global canary), unlike the rest of this app (CMakeLists.txt).
#include <cstddef>

namespace faults {

volatile std::size_t g_smash_bytes = 64;   // not a constant: the compiler cannot see the overrun

[[gnu::noinline]] void stack_smash() {
    char buf[16];
    volatile char* p = buf;
    for (std::size_t i = 0; i < g_smash_bytes; ++i) p[i] = 'A';   // past buf: over the canary
}

}  // namespace faults

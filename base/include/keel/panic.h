// panic(): the end of the line for bugs in our own code. Untrusted input never gets here: it is
// validated and answered with a Result error instead (see design.md, "Failure and bad input").
#pragma once

namespace keel {

/// Called with the formatted panic message. Must not return (crash the domain, trap, abort).
using PanicHandler = void (*)(const char* message);

/// Install the panic handler; nullptr restores the default (__builtin_trap()).
void set_panic_handler(PanicHandler h);
/// Install the reporter, which may return: it gets the message first (the kernel's log installs
/// one that writes "panic: <message>" as an error line when its sink is set). base itself has no
/// output, so without one the message reaches only the handler.
void set_panic_reporter(PanicHandler r);

/// Format the message, give it to the reporter, then call the panic handler, which therefore
/// need not print the message again. A panic raised while panicking (e.g. by the reporter)
/// skips the reporter and goes straight to the handler with "nested panic: <message>". Never
/// returns: if the handler does, this traps.
[[noreturn]] void panic(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace keel

#ifdef __FILE_NAME__
#define KEEL_FILE_NAME __FILE_NAME__  // just the file name: short messages, no build paths
#else
#define KEEL_FILE_NAME __FILE__
#endif

/// Assert an invariant of OUR code. Never use it on input from outside the guest (backends,
/// xenstore, start_info, the command line, the network): return an error instead.
#define KASSERT(cond)                                                                        \
    do {                                                                                     \
        if (!(cond)) [[unlikely]]                                                            \
            ::keel::panic("assertion failed: %s at %s:%d", #cond, KEEL_FILE_NAME, __LINE__); \
    } while (0)

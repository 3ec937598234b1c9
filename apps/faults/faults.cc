// faults: faults on purpose, to prove the protections. Command line `fault=KIND`:
//   write-text      write to the service's own code        (text is R+X, never writable)
//   exec-stack      jump into a buffer on the stack        (stacks are NX)
//   exec-heap       jump into heap memory                  (heap is NX)
//   write-rodata    write to a string literal              (rodata is read-only)
//   null            read through a null pointer            (page 0 is unmapped)
//   stack-overflow  recurse until the guard page is hit    (guard page under the stack)
//   stack-smash     overrun a local array (smash.cc)       (stack protector: canary checked)
//   write-page-table  write to the live PML4               (page tables are read-only)
//   panic           call keel::panic                       (report + backtrace, then crash)
// Each must end in a fault report on the console and a crashed domain (on_crash).
#include <cstdint>
#include <cstring>

#include "keel/log.h"
#include "keel/panic.h"
#include "keel/service.h"
#include "keel/system.h"

namespace {

using Fn = void (*)();

}  // namespace

namespace faults {
void stack_smash();
}

namespace {

[[gnu::noinline]] void write_text() {
    auto* code = reinterpret_cast<volatile unsigned char*>(&write_text);
    code[0] = 0xc3;
}

[[gnu::noinline]] void exec_stack() {
    unsigned char buf[16];
    buf[0] = 0xc3;   // ret
    reinterpret_cast<Fn>(reinterpret_cast<void*>(buf))();
}

[[gnu::noinline]] void exec_heap() {
    auto* buf = new unsigned char[64];
    buf[0] = 0xc3;
    reinterpret_cast<Fn>(reinterpret_cast<void*>(buf))();
}

[[gnu::noinline]] void write_rodata() {
    static const char message[] = "constant";
    const_cast<volatile char*>(message)[0] = 'C';
}

[[gnu::noinline]] void null_read() {
    volatile int* p = nullptr;
    KLOG_INFO("value %d", *p);
}

volatile unsigned g_depth_limit = ~0u;   // never reached: the guard page stops the recursion

[[gnu::noinline]] unsigned recurse(unsigned depth) {
    volatile unsigned char frame[1024];
    frame[0] = static_cast<unsigned char>(depth);
    if (depth >= g_depth_limit) return frame[0];
    return recurse(depth + 1) + frame[0];
}

[[gnu::noinline]] void write_page_table() {
    // The live root table, mapped read-only in both modes (in PV Xen itself refuses the write).
    auto* pml4 = const_cast<volatile std::uint64_t*>(keel::page_table_root());
    pml4[511] = pml4[0];
}

class Faults final : public keel::Service {
public:
    keel::Task<int> run(const keel::CommandLine& args) override {
        auto kind = args.get("fault");
        if (!kind) {
            KLOG_ERROR("faults: give fault=write-text|exec-stack|exec-heap|write-rodata|null|stack-overflow|stack-smash|write-page-table|panic");
            co_return 2;
        }
        KLOG_INFO("faults: triggering %.*s", static_cast<int>(kind->size()), kind->data());
        if (*kind == "write-text") write_text();
        else if (*kind == "exec-stack") exec_stack();
        else if (*kind == "exec-heap") exec_heap();
        else if (*kind == "write-rodata") write_rodata();
        else if (*kind == "null") null_read();
        else if (*kind == "stack-overflow") recurse(0);
        else if (*kind == "stack-smash") faults::stack_smash();
        else if (*kind == "write-page-table") write_page_table();
        else if (*kind == "panic") keel::panic("deliberate panic from the faults app");
        else {
            KLOG_ERROR("faults: unknown kind");
            co_return 2;
        }
        KLOG_ERROR("faults: survived %.*s: the protection is missing", static_cast<int>(kind->size()), kind->data());
        co_return 1;
    }
};

}  // namespace

KEEL_SERVICE(Faults)

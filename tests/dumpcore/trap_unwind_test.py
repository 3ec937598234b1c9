#!/usr/bin/env python3
"""gdb unwinds through trap_common on the real faults.xen (usage: trap_unwind_test.py KEEL_CORE
FAULTS_XEN). The test writes a dump-core file (keel_core_test's helpers) of faults stopped in
trap_common just after `call keel_trap` returned: rbx points at the TrapFrame the entry stub
and the CPU built on the IST stack (#PF runs on IST1), whose rip is the faulting load in
null_read and whose rsp/rbp point at null_read's frame on the boot stack: the saved rbp and the
return address into Faults::run, laid out as null_read's prologue leaves them. Every address
comes from the image (nm, objdump), none is written here. gdb must show trap_common as
"<signal handler called>", then null_read at the faulting load, then Faults::run at the return
address, and in null_read's frame every register the CFI restores must hold the TrapFrame's
value (the live registers are given other values, so a missing or misplaced rule shows). The
CFI in platform-xen/guest/entry.S is what makes this pass: without it gdb reads trap_common as
an ordinary function and the backtrace goes astray. Skips (status 0) without gdb or without
the image."""
import os
import re
import shutil
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from keel_core_test import (P, PAGE, PML4, RW, NX, check, run, summary, table,  # noqa: E402
                            vcpu_context, xc_core)

PDPT, PD, PT, STACK, IST = PML4 + 1, PML4 + 2, PML4 + 3, 0x30, 0x31   # guest frames

# struct TrapFrame (platform-xen/include/keel/xen/fault_report.h), r15 at the lowest address.
TRAP_FRAME = ("r15 r14 r13 r12 r11 r10 r9 r8 rbp rdi rsi rdx rcx rbx rax vector error_code "
              "rip cs rflags rsp ss").split()
GPRS = "rax rbx rcx rdx rsi rdi rbp r8 r9 r10 r11 r12 r13 r14 r15".split()

class Image:
    """Symbols and disassembly of the image, by mangled name."""

    def __init__(self, path):
        self.path = path
        lines = run("nm", "-n", path).stdout.splitlines()
        self.symbols = [(int(a, 16), n) for a, _, n in (line.split(None, 2) for line in lines
                                                         if len(line.split()) == 3)]
        self.address = {n: a for a, n in self.symbols}

    def need(self, name):
        if name not in self.address:
            raise SystemExit(f"FAIL {self.path} has no symbol {name}")
        return self.address[name]

    def disassemble(self, name):
        """[(address, instruction text)] of a function, up to the next symbol's address."""
        start = self.need(name)
        end = min(a for a, _ in self.symbols if a > start)
        out = run("objdump", "-d", "--no-show-raw-insn", f"--start-address={start:#x}",
                  f"--stop-address={end:#x}", self.path).stdout
        return [(int(m.group(1), 16), m.group(2).strip())
                for m in re.finditer(r"^\s+([0-9a-f]+):\s+(.*)$", out, re.M)]


def after(insns, pattern, what):
    """The address of the instruction after the first one matching pattern."""
    for i, (_, text) in enumerate(insns[:-1]):
        if re.search(pattern, text):
            return insns[i + 1][0]
    raise SystemExit(f"FAIL no {what} ({pattern}) in:\n" +
                     "\n".join(f"  {a:x}: {t}" for a, t in insns))


def scenario(image):
    """(dumped pages, vCPU 0's registers, the TrapFrame, the return address into Faults::run),
    from the image's code and symbols."""
    resume = after(image.disassemble("trap_common"), r"^call\s.*<keel_trap>$",
                   "call keel_trap in trap_common")
    null_read = image.disassemble("_ZN12_GLOBAL__N_19null_readEv")
    # The frame below depends on this prologue: push %rbp; mov %rsp,%rbp; [sub $N,%rsp].
    texts = [t for _, t in null_read]
    if texts[:2] != ["push   %rbp", "mov    %rsp,%rbp"]:
        raise SystemExit(f"FAIL null_read's prologue is not push %rbp; mov %rsp,%rbp: {texts[:3]}")
    m = re.fullmatch(r"sub\s+\$0x([0-9a-f]+),%rsp", texts[2])
    locals_size = int(m.group(1), 16) if m else 0
    fault_rip = next((a for a, t in null_read if re.fullmatch(r"mov\s+\(%r\w+\),%\w+", t)), None)
    if fault_rip is None:
        raise SystemExit("FAIL no load through a pointer register in null_read")
    # Faults::run is a coroutine: the call is in its actor (the body gcc outlines).
    returns = [insns[i + 1][0] for insns in (image.disassemble(n) for _, n in image.symbols
                                             if "Faults3run" in n)
               for i, (_, t) in enumerate(insns[:-1])
               if re.search(r"^call\s.*<_ZN12_GLOBAL__N_19null_readEv>$", t)]
    if len(returns) != 1:
        raise SystemExit(f"FAIL {len(returns)} calls of null_read in Faults::run, expected one")
    return_address = returns[0]

    # The boot stack's top page: Faults::run's frame (the end of the rbp chain), under it
    # null_read's, as null_read's prologue leaves them at the faulting load.
    stack_va, ist_top = image.need("__stack_top") - PAGE, image.need("__ist_top")
    stack = bytearray(PAGE)
    run_rbp = stack_va + PAGE - 0x20
    struct.pack_into("<QQ", stack, run_rbp - stack_va, 0, 0)       # rbp 0, rip 0: the end
    null_rbp = run_rbp - 0x100                                      # Faults::run's locals above
    struct.pack_into("<QQ", stack, null_rbp - stack_va, run_rbp, return_address)
    null_rsp = null_rbp - locals_size                               # p = nullptr at [rbp-8]: zero

    # The IST page: the CPU pushes ss..rip and the error code at __ist_top, the stub the vector
    # and rax..r15 (22 words in all); rbx keeps the TrapFrame's address across keel_trap.
    frame = {n: 0x7F000000 + 0x100 * i for i, n in enumerate(TRAP_FRAME)}   # distinct values
    frame.update(rax=0, rbp=null_rbp, vector=14, error_code=0, rip=fault_rip, cs=0x8,
                 rflags=0x10246, rsp=null_rsp, ss=0x10)
    trap_frame = ist_top - 8 * len(TRAP_FRAME)
    ist = bytearray(PAGE)
    struct.pack_into(f"<{len(TRAP_FRAME)}Q", ist, trap_frame - (ist_top - PAGE),
                     *(frame[n] for n in TRAP_FRAME))

    # Live registers after keel_trap returned: rbx and rsp at the TrapFrame (16-aligned), every
    # other register unlike its TrapFrame copy (so gdb must have taken the copy).
    live = {n: 0xC0DE0000 + 0x100 * i for i, n in enumerate(GPRS)}
    live.update(rbx=trap_frame, rsp=trap_frame & -16, rip=resume, cs=0x8, rflags=0x246, ss=0x10,
                es=0x10, ds=0x10, fs=0, gs=0)

    # One page table maps both pages: they must lie in the same 2 MiB of the first 1 GiB.
    ist_va = ist_top - PAGE
    if stack_va >> 21 != ist_va >> 21 or stack_va >> 30:
        raise SystemExit("FAIL the boot stack and the IST stack are not in one 2 MiB of the "
                         "first 1 GiB: this test's page tables do not cover them")
    pages = {PML4: table({0: PDPT << 12 | P | RW}), PDPT: table({0: PD << 12 | P | RW}),
             PD: table({stack_va >> 21: PT << 12 | P | RW}),
             PT: table({(stack_va >> 12) & 511: STACK << 12 | P | RW | NX,
                        (ist_va >> 12) & 511: IST << 12 | P | RW | NX}),
             STACK: bytes(stack), IST: bytes(ist)}
    return pages, live, frame, return_address


def main():
    tool, image_path = (os.path.abspath(a) for a in sys.argv[1:3])
    if not shutil.which("gdb"):
        print("skip gdb is not installed")
        return 0
    if not os.path.exists(image_path):
        print(f"skip {image_path} is not built (cmake --build BUILD --target faults_image)")
        return 0
    image = Image(image_path)
    pages, live, frame, return_address = scenario(image)
    work = tempfile.mkdtemp(prefix="keel-trap-unwind.")
    try:
        dump, core = os.path.join(work, "faults.core"), os.path.join(work, "faults.elf")
        with open(dump, "wb") as f:
            f.write(xc_core(pages, [vcpu_context(live)]))
        r = run(tool, dump, core)
        check(r.returncode == 0, f"keel-core converts the dump (status {r.returncode}: "
              f"{r.stderr.strip()})")
        if r.returncode != 0:
            return 1
        r = run("gdb", "-nx", "-batch", "-ex", "echo --bt\\n", "-ex", "bt",
                "-ex", "echo --pc\\n", "-ex", "info symbol $pc", "-ex", "echo --frame 1\\n",
                "-ex", "frame 1", "-ex", "info registers", image_path, core)
        print(r.stdout + r.stderr)
        part = dict(re.findall(r"^--(.+)\n((?:(?!--).*\n)*)", r.stdout, re.M))
        lines = re.findall(r"^#\d+\s+(.*)$", part.get("bt", ""), re.M)
        check(len(lines) >= 1 and lines[0] == "<signal handler called>",
              "frame #0 is \"<signal handler called>\" (trap_common's CFI is a signal frame)")
        check(re.fullmatch(r"trap_common \+ \d+ in section \.text\n", part.get("pc", "")),
              "frame #0's pc is in trap_common")
        null_read = rf"0x0*{frame['rip']:x} in \(anonymous namespace\)::null_read \(\)"
        check(len(lines) >= 2 and re.match(null_read, lines[1]) is not None,
              f"frame #1 is null_read at the faulting load {frame['rip']:#x}, the TrapFrame's rip")
        faults_run = rf"0x0*{return_address:x} in \(anonymous namespace\)::Faults::run\("
        check(len(lines) >= 3 and re.match(faults_run, lines[2]) is not None,
              f"frame #2 is Faults::run at the return address {return_address:#x}")
        regs = {m.group(1): int(m.group(2), 16) for m in
                re.finditer(r"^(\w+)\s+(0x[0-9a-f]+)", part.get("frame 1", ""), re.M)}
        want = {n: frame[n] for n in GPRS + ["rip", "rsp"]}
        want["eflags"] = frame["rflags"]
        wrong = {n: (hex(regs[n]) if n in regs else None, hex(v)) for n, v in want.items()
                 if regs.get(n) != v}
        check(not wrong, "in null_read's frame every register is the TrapFrame's "
              f"(wrong, as (got, want): {wrong})")
    finally:
        shutil.rmtree(work)
    return summary()


if __name__ == "__main__":
    sys.exit(main())

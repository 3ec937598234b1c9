#!/usr/bin/env python3
"""tools/dumpcore/keel-core on a dump-core file this test writes itself (usage: keel_core_test.py
KEEL_CORE): a PVH guest of two vCPUs whose page tables map a text page, two stack pages backed
by frames in reverse order, a 2 MiB page of which only two frames were dumped, a 1 GiB page in
the upper half of the address space over the low frames, a page the dump lacks and a page
table the dump lacks. The ELF core must hold exactly the expected PT_LOAD segments (readelf -l),
one NT_PRSTATUS per vCPU (readelf -n) with the registers in Linux's pr_reg order, the pages at
their virtual addresses (read from the file), and gdb, when installed, must read the registers
and memory back. Broken inputs must end with status 1 and a one-line reason, leaving no output.
Each check names what it proves; a converter with a broken page walk fails several of them."""
import os
import re
import resource
import shutil
import struct
import subprocess
import sys
import tempfile

PAGE = 4096
P, RW, PS, NX = 1, 2, 1 << 7, 1 << 63

# Guest frames: page tables, then data pages whose first words say which page they are.
PML4, PDPT_LOW, PD_LOW, PT_LOW, PD_1G, PDPT_HIGH = 0x10, 0x11, 0x12, 0x13, 0x14, 0x15
TEXT, DATA, STACK_HI, STACK_LO = 0x20, 0x21, 0x30, 0x31
HUGE = 0x200   # a 2 MiB page, frames 0x200-0x3ff
NOT_DUMPED_PAGE, NOT_DUMPED_TABLE = 0x40, 0x99

DATA_VA, TEXT_VA, STACK_VA = 0x400000, 0x401000, 0x5FE000
HUGE_VA, HIGH_VA = 0x40000000, 0xFFFF800000000000

REGS0 = dict(r15=0x15, r14=0x14, r13=0x13, r12=0x12, rbp=0x5FF200, rbx=0xB0B0, r11=0x11,
             r10=0x10, r9=0x9, r8=0x8, rax=0xA0A0, rcx=0xC0C0, rdx=0xD0D0, rsi=0x5151,
             rdi=0xD1D1, rip=TEXT_VA + 0x10, cs=0x8, rflags=0x246, rsp=0x5FF100, ss=0x10,
             es=0x10, ds=0x10, fs=0x0, gs=0x0)
FS_BASE, GS_BASE = 0x7000, 0x8000
REGS1 = dict(REGS0, rip=TEXT_VA + 0x20, rsp=0x5FE800, rax=0x1A1A)


def table(entries):
    page = bytearray(PAGE)
    for i, e in entries.items():
        struct.pack_into("<Q", page, 8 * i, e)
    return bytes(page)


def data_page(tag):
    """A page whose first two words are tag and ~tag: what gdb's x/2gx must show."""
    return struct.pack("<QQ", tag, tag ^ (2**64 - 1)) + bytes(PAGE - 16)


def guest_pages():
    """{pfn: contents} of the dump, and the frames the page tables point to but the dump lacks."""
    return {
        PML4: table({0: PDPT_LOW << 12 | P | RW, 1: NOT_DUMPED_TABLE << 12 | P | RW,
                     256: PDPT_HIGH << 12 | P | RW}),
        PDPT_LOW: table({0: PD_LOW << 12 | P | RW, 1: PD_1G << 12 | P | RW}),
        PD_LOW: table({2: PT_LOW << 12 | P | RW}),                   # 0x400000-0x5fffff
        PT_LOW: table({0: DATA << 12 | P | RW | NX,                  # 0x400000: RW
                       1: TEXT << 12 | P,                            # 0x401000: R X
                       2: NOT_DUMPED_PAGE << 12 | P,                 # 0x402000: not in the dump
                       3: TEXT << 12 | RW,                           # not present
                       510: STACK_LO << 12 | P | RW | NX,            # 0x5fe000
                       511: STACK_HI << 12 | P | RW | NX}),          # 0x5ff000
        PD_1G: table({0: HUGE << 12 | P | PS | NX}),                 # 0x40000000, 2 MiB, R
        PDPT_HIGH: table({0: 0 | P | RW | PS}),                      # upper half: 1 GiB at 0
        TEXT: data_page(0x7E57),
        DATA: data_page(0xDA7A),
        STACK_LO: data_page(0x57AC0),
        STACK_HI: data_page(0x57AC1),
        HUGE: data_page(0x2000),
        HUGE + 1: data_page(0x2001),
    }


# Expected PT_LOAD segments: (vaddr, pages, flags as readelf prints them).
EXPECTED = [
    (DATA_VA, 1, "RW"),                      # next to the text, but not merged with it
    (TEXT_VA, 1, "R E"),
    (STACK_VA, 2, "RW"),
    (HUGE_VA, 2, "R"),
    (HIGH_VA + (PML4 << 12), 6, "RWE"),      # the six tables, through the 1 GiB page
    (HIGH_VA + (TEXT << 12), 2, "RWE"),
    (HIGH_VA + (STACK_HI << 12), 2, "RWE"),  # 0x30, 0x31
    (HIGH_VA + (HUGE << 12), 2, "RWE"),
]
# (address, first word): stack page order follows the page tables, not the frame numbers.
MEMORY = [(DATA_VA, 0xDA7A), (TEXT_VA, 0x7E57), (STACK_VA, 0x57AC0), (STACK_VA + PAGE, 0x57AC1),
          (HUGE_VA + PAGE, 0x2001), (HIGH_VA + (TEXT << 12), 0x7E57)]


def vcpu_context(regs):
    """A vcpu_guest_context (xen/arch-x86/xen.h, x86_64: 5168 bytes) in 4-level paging."""
    ctx = bytearray(5168)
    offsets = dict(r15=0, r14=8, r13=16, r12=24, rbp=32, rbx=40, r11=48, r10=56, r9=64, r8=72,
                   rax=80, rcx=88, rdx=96, rsi=104, rdi=112, rip=128, cs=136, rflags=144,
                   rsp=152, ss=160, es=168, ds=176, fs=184, gs=192)
    for name, off in offsets.items():
        struct.pack_into("<Q", ctx, 520 + off, regs[name])
    struct.pack_into("<Q", ctx, 4984 + 0 * 8, 0x80050033)          # cr0: PG, PE, ...
    struct.pack_into("<Q", ctx, 4984 + 3 * 8, PML4 << 12 | 0x5)    # cr3 (PCID bits set)
    struct.pack_into("<Q", ctx, 4984 + 4 * 8, 0x6A0)               # cr4: PAE, ...
    struct.pack_into("<QQQ", ctx, 5144, FS_BASE, GS_BASE, 0xBAD)   # fs, gs kernel, gs user
    return bytes(ctx)


def note(kind, desc):
    return struct.pack("<III", 4, len(desc), kind) + b"Xen\0" + desc


# A classic PV guest's dump: the same pages, but the page tables, cr3 and .xen_p2m name machine
# frames, MOFF above the pfns (the 1 GiB page at machine address 0 stays where it is).
MOFF = 0x1000


def pv_pages():
    tables = (PML4, PDPT_LOW, PD_LOW, PT_LOW, PD_1G, PDPT_HIGH)
    pages = guest_pages()
    for t in tables:
        entries = struct.unpack_from("<512Q", pages[t])
        pages[t] = table({i: e + (MOFF << 12 if e & P and e & 0x000FFFFFFFFFF000 else 0)
                          for i, e in enumerate(entries) if e})
    return pages


def pv_vcpu_context(regs):
    """As vcpu_context, with cr3 = the root's machine frame and no cr0/cr4 (PV: not needed)."""
    ctx = bytearray(vcpu_context(regs))
    struct.pack_into("<QQQQQ", ctx, 4984, 0, 0, 0, (PML4 + MOFF) << 12, 0)
    return bytes(ctx)


EXPECTED_PV = [(va + (MOFF << 12), n, f) if va >= HIGH_VA else (va, n, f) for va, n, f in EXPECTED]
MEMORY_PV = [(va + (MOFF << 12), tag) if va >= HIGH_VA else (va, tag) for va, tag in MEMORY]


def xc_core(pages, contexts, magic=0xF00FEBEE, p2m=False, moff=0):
    """A dump-core file as Xen's docs/misc/dump-core-format.txt lays it out (one invalid pfn
    slot at the end, as the dumper leaves when a page cannot be mapped)."""
    pfns = sorted(pages) + [2**64 - 1]
    page_data = b"".join(pages[p] for p in pfns[:-1]) + bytes(PAGE)
    notes = (note(0x2000000, b"") +
             note(0x2000001, struct.pack("<QQQQ", magic, len(contexts), len(pfns), PAGE)) +
             note(0x2000003, struct.pack("<Q", 1)))
    if p2m:
        index = (".xen_p2m", 1, b"".join(struct.pack("<QQ", p, p if p == 2**64 - 1 else p + moff)
                                         for p in pfns))
    else:
        index = (".xen_pfn", 1, b"".join(struct.pack("<Q", p) for p in pfns))
    sections = [(".note.Xen", 7, notes), (".xen_prstatus", 1, b"".join(contexts)),
                (".xen_shared_info", 1, bytes(PAGE)), index, (".xen_pages", 1, page_data)]
    strtab = b"\0.shstrtab\0" + b"".join(s[0].encode() + b"\0" for s in sections)
    shnum = len(sections) + 2
    off = 64 + 64 * shnum
    headers = [bytes(64)]
    body = bytearray()
    headers.append(struct.pack("<IIQQQQIIQQ", 1, 3, 0, 0, off, len(strtab), 0, 0, 1, 0))
    body += strtab
    for name, kind, blob in sections:
        pad = (-(off + len(body))) % PAGE if name == ".xen_pages" else 0
        body += bytes(pad)
        headers.append(struct.pack("<IIQQQQIIQQ", strtab.index(name.encode() + b"\0"), kind, 0,
                                   0, off + len(body), len(blob), 0, 0, 8, 0))
        body += blob
    ehdr = (b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8) +
            struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, 0, 64, 0, 64, 0, 0, 64, shnum, 1))
    return ehdr + b"".join(headers) + bytes(body)


failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def summary():
    """Prints the number of failed checks; the exit status: 1 if any failed."""
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


def load_segments(path):
    """PT_LOADs straight from the file: [(vaddr, offset, size)] (independent of readelf)."""
    with open(path, "rb") as f:
        blob = f.read()
    phoff, = struct.unpack_from("<Q", blob, 32)
    phnum, = struct.unpack_from("<H", blob, 56)
    segs = []
    for i in range(phnum):
        kind, _, off, va, _, size, _, _ = struct.unpack_from("<IIQQQQQQ", blob, phoff + 56 * i)
        if kind == 1:
            segs.append((va, off, size))
    return blob, segs


def prstatus_regs(blob):
    """pr_reg of each NT_PRSTATUS note, by Linux's x86_64 names (independent of gdb)."""
    names = ("r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs rflags "
             "rsp ss fs_base gs_base ds es fs gs").split()
    phoff, = struct.unpack_from("<Q", blob, 32)
    phnum, = struct.unpack_from("<H", blob, 56)
    found = []
    for i in range(phnum):
        kind, _, off, _, _, size, _, _ = struct.unpack_from("<IIQQQQQQ", blob, phoff + 56 * i)
        pos = off
        while kind == 4 and pos < off + size:
            namesz, descsz, ntype = struct.unpack_from("<III", blob, pos)
            desc = pos + 12 + (namesz + 3) // 4 * 4
            if ntype == 1:
                found.append(dict(zip(names, struct.unpack_from("<27Q", blob, desc + 112))))
            pos = desc + (descsz + 3) // 4 * 4
    return found


def word_at(blob, segs, va):
    for start, off, size in segs:
        if start <= va < start + size:
            return struct.unpack_from("<Q", blob, off + va - start)[0]
    return None


# readelf -l -W: LOAD  Offset VirtAddr PhysAddr FileSiz MemSiz Flg Align
LOAD_LINE = r"^\s+LOAD\s+\S+\s+(0x[0-9a-f]+)\s+\S+\s+\S+\s+(0x[0-9a-f]+) ([RWE ]{3}) 0x1000$"


def main():
    tool = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="keel-core-test.")
    try:
        core, out = os.path.join(work, "guest.core"), os.path.join(work, "guest.elf")
        good = xc_core(guest_pages(), [vcpu_context(REGS0), vcpu_context(REGS1)])
        with open(core, "wb") as f:
            f.write(good)
        r = run(tool, core, out)
        check(r.returncode == 0, f"converts a PVH dump (status {r.returncode}: {r.stderr.strip()})")
        if r.returncode != 0:
            return 1
        print("     " + r.stdout.strip())
        check(f"from {len(guest_pages())} dumped pages" in r.stdout,
              "the summary counts the dumped pages, not the invalid pfn slot")

        phdrs = run("readelf", "-h", "-l", "-W", out).stdout
        check("CORE (Core file)" in phdrs and "X86-64" in phdrs, "an x86-64 ELF core (readelf -h)")
        loads = [(int(m.group(1), 16), int(m.group(2), 16) // PAGE, m.group(3).strip())
                 for m in re.finditer(LOAD_LINE, phdrs, re.M)]
        check(loads == EXPECTED, "PT_LOAD segments at the virtual addresses the page tables give "
              "(readelf -l)" + ("" if loads == EXPECTED else
                                f"\n       got      {[(hex(a), n, f) for a, n, f in loads]}"
                                f"\n       expected {[(hex(a), n, f) for a, n, f in EXPECTED]}"))
        notes = run("readelf", "-n", "-W", out).stdout
        check(notes.count("NT_PRSTATUS") == 2, "one NT_PRSTATUS per vCPU (readelf -n)")

        blob, segs = load_segments(out)
        notes_regs = prstatus_regs(blob)
        want = [dict(r, fs_base=FS_BASE, gs_base=GS_BASE, orig_rax=2**64 - 1)
                for r in (REGS0, REGS1)]
        check(notes_regs == want,
              "pr_reg of each NT_PRSTATUS: the vCPU's registers in Linux's order")
        for va, tag in MEMORY:
            got = word_at(blob, segs, va)
            check(got == tag,
                  f"memory at {va:#x} is page {tag:#x} (got {got if got is None else hex(got)})")
        for absent in (0x402000, 0x403000, 1 << 39, HUGE_VA + 2 * PAGE):
            check(word_at(blob, segs, absent) is None, f"nothing at {absent:#x}")

        if shutil.which("gdb"):
            r = run("gdb", "-nx", "-batch", "-ex", "info registers",
                    "-ex", "info registers fs_base gs_base", "-ex", "x/2gx 0x5ff000",
                    "-ex", "thread 2", "-ex", "info registers rip rax", "-c", out)
            vcpu0 = r.stdout.split("[Switching to thread 2")[0]
            regs = {m.group(1): int(m.group(2), 16)
                    for m in re.finditer(r"^(\w+)\s+(0x[0-9a-f]+)", vcpu0, re.M)}
            want = dict(REGS0, eflags=REGS0["rflags"], fs_base=FS_BASE, gs_base=GS_BASE)
            del want["rflags"]
            wrong = {n: (hex(regs.get(n, -1)), hex(v)) for n, v in want.items()
                     if n != "rip" and regs.get(n) != v}
            check(not wrong, f"gdb reads vCPU 0's registers (wrong: {wrong})")
            check(re.search(r"^0x5ff000:\s+0x0+57ac1\s+0xf+fffa853e$", r.stdout, re.M) is not None,
                  "gdb's x/2gx 0x5ff000 shows the upper stack page")
            rips = re.findall(r"^rip\s+(0x[0-9a-f]+)", r.stdout, re.M)
            check([int(x, 16) for x in rips] == [REGS0["rip"], REGS1["rip"]],
                  f"gdb: rip of vCPU 0 and, as thread 2, of vCPU 1 (got {rips})")
            if failures:
                print(r.stdout + r.stderr)
        else:
            print("skip gdb is not installed: registers and memory were checked from the file only")

        # A classic PV guest's dump: the same segments and memory, found through machine frames.
        pv_core = os.path.join(work, "pv.core")
        with open(pv_core, "wb") as f:
            f.write(xc_core(pv_pages(), [pv_vcpu_context(REGS0)], magic=0xF00FEBED, p2m=True, moff=MOFF))
        r = run(tool, pv_core, out)
        check(r.returncode == 0, f"converts a PV dump (status {r.returncode}: {r.stderr.strip()})")
        if r.returncode == 0:
            phdrs = run("readelf", "-l", "-W", out).stdout
            loads = [(int(m.group(1), 16), int(m.group(2), 16) // PAGE, m.group(3).strip())
                     for m in re.finditer(LOAD_LINE, phdrs, re.M)]
            check(loads == EXPECTED_PV, "PV: PT_LOAD segments from the machine-frame page tables"
                  + ("" if loads == EXPECTED_PV else
                     f"\n       got      {[(hex(a), n, f) for a, n, f in loads]}"
                     f"\n       expected {[(hex(a), n, f) for a, n, f in EXPECTED_PV]}"))
            blob, segs = load_segments(out)
            for va, tag in MEMORY_PV:
                got = word_at(blob, segs, va)
                check(got == tag, f"PV: memory at {va:#x} is page {tag:#x} "
                      f"(got {got if got is None else hex(got)})")
            check(prstatus_regs(blob)[0]["rip"] == REGS0["rip"], "PV: vCPU 0's rip in NT_PRSTATUS")

        # Broken inputs: status 1, one line that says why, no output left behind.
        bad = {
            "wrong magic": b"MZ" + good[2:],
            "empty file": b"",
            "truncated": good[: len(good) // 2],
            "not a dump-core ELF": good[:16] + struct.pack("<H", 2) + good[18:],
            "PV magic without .xen_p2m": xc_core(guest_pages(), [vcpu_context(REGS0)], magic=0xF00FEBED),
            "short .xen_prstatus": xc_core(guest_pages(), [vcpu_context(REGS0)[:4000]]),
            # 512 x 512 x 512 references to one empty table: a walk that would not end.
            "tables reached too often": xc_core(guest_pages() | {
                PML4: table({i: PDPT_LOW << 12 | P for i in range(512)}),
                PDPT_LOW: table({i: PD_LOW << 12 | P for i in range(512)}),
                PD_LOW: table({i: 0x16 << 12 | P for i in range(512)}),
                0x16: table({})}, [vcpu_context(REGS0)]),
            "tables mapping a page 512 times": xc_core(guest_pages() | {PDPT_LOW: table(
                {i: PD_1G << 12 | P | RW for i in range(512)})}, [vcpu_context(REGS0)]),
        }
        reasons = {"wrong magic": "not an ELF file", "empty file": "not an ELF file",
                   "truncated": "truncated", "not a dump-core ELF": "not a Xen dump-core file",
                   "PV magic without .xen_p2m": "no .xen_p2m section",
                   "short .xen_prstatus": ".xen_prstatus holds",
                   "tables reached too often": "tables that loop",
                   "tables mapping a page 512 times": "more than 8 times over"}
        for name, blob in bad.items():
            path = os.path.join(work, "bad.core")
            with open(path, "wb") as f:
                f.write(blob)
            if os.path.exists(out):
                os.unlink(out)
            r = run(tool, path, out)
            line = r.stderr.strip()
            check(r.returncode == 1 and reasons[name] in line and "\n" not in line
                  and "Traceback" not in line and not os.path.exists(out),
                  f"{name}: status 1, \"{line}\"")
        r = run(tool, os.path.join(work, "missing.core"), out)
        check(r.returncode == 1 and "No such file" in r.stderr, "a missing input: status 1")

        # What OUT was survives a failed conversion; the dump survives being named as OUT.
        keep = os.path.join(work, "keep.elf")
        with open(keep, "wb") as f:
            f.write(b"an earlier core")
        r = run(tool, path, keep)   # path: the last broken input above
        with open(keep, "rb") as f:
            check(r.returncode == 1 and f.read() == b"an earlier core",
                  "a failed conversion leaves the existing OUT as it was")
        r = run(tool, core, core)
        with open(core, "rb") as f:
            check(r.returncode == 1 and "is the dump itself" in r.stderr and f.read() == good,
                  f"OUT = IN: status 1, the dump intact (\"{r.stderr.strip()}\")")
        # A write that fails half-way (RLIMIT_FSIZE below the core's size: EFBIG) leaves nothing.
        if os.path.exists(out):
            os.unlink(out)
        small = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (len(good) // 4,) * 2)
        r = subprocess.run([tool, core, out], capture_output=True, text=True, preexec_fn=small)
        left = [n for n in os.listdir(work) if n.startswith(".keel-core-") or n == "guest.elf"]
        check(r.returncode == 1 and "Traceback" not in r.stderr and not left,
              f"a write that fails: status 1, no partial core left ({left}, \"{r.stderr.strip()}\")")
    finally:
        shutil.rmtree(work)
    return summary()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Per-component size of keel images, from the linker's map (build/apps/NAME/NAME.link.map).

    scripts/size-breakdown.py [BUILD_DIR or MAP...]     (default: every map under build/apps)

For each image: bytes of code (.text), read-only data (.rodata, notes), initialised data (.data)
and zeroed data (.bss, not in the file) that each component's kept input sections add, after
--gc-sections. A component is the library an object file was compiled for (CMakeFiles/
<target>.dir in its path): base, platform, kernel, xenbus, console, block, netfront, blkfront,
net, lwip, the app itself; "symbols" is the image's own symbol table (NAME_ksyms.S), "fill" the
alignment padding between sections, "libgcc" the compiler's runtime. The file's own size (ELF
headers, the page alignment of its segments) is the stripped image's size minus these sums.
"""
import os
import re
import signal
import sys

# Output section -> column.
KINDS = (("text", (".text",)), ("rodata", (".rodata", ".note", ".eh_frame", ".init", ".ksyms")),
         ("data", (".data",)), ("bss", (".bss", ".stack", ".tbss")))
TARGET = re.compile(r"CMakeFiles/([A-Za-z0-9_]+)\.dir/")
ENTRY = re.compile(r"^ ?(\S+)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")


def component(path):
    m = TARGET.search(path)
    if path.endswith("_ksyms.S.o") or "ksyms" in path:
        return "symbols"
    if "libgcc" in path:
        return "libgcc"
    if not m:
        return "other"
    t = m.group(1)
    if t.endswith("_app"):
        return "app"
    t = t.removeprefix("keel_")
    for name in ("platform", "xenbus", "lwip"):
        if t.startswith(name):
            return name
    return t


def kind_of(section):
    if section == ".rodata.end":  # the page alignment after .rodata: memory only (NOBITS)
        return None
    for kind, prefixes in KINDS:
        if any(section == p or section.startswith(p + ".") or section.startswith(p) for p in prefixes):
            return kind
    return None


def parse(path):
    sizes = {}
    in_map = False
    out_kind = None
    pending = None  # an input section name alone on its line; its numbers follow on the next
    with open(path, errors="replace") as f:
        for line in f:
            if not in_map:
                in_map = line.startswith("Linker script and memory map")
                continue
            if line.startswith("/DISCARD/") or line.startswith("OUTPUT("):
                break
            if line and not line.startswith(" ") and line.strip():
                # An output section: ".text           0x... 0x..." or a name alone.
                out_kind = kind_of(line.split()[0])
                pending = None
                continue
            if out_kind is None:
                continue
            stripped = line.rstrip("\n")
            if stripped.startswith(" *fill*"):
                parts = stripped.split()
                if len(parts) >= 3:
                    add(sizes, "fill", out_kind, int(parts[2], 16))
                continue
            m = ENTRY.match(stripped)
            if m and (m.group(1) or pending):
                name = m.group(1) or pending
                pending = None
                if name.startswith("*") or name.startswith("0x"):
                    continue
                add(sizes, component(m.group(4)), out_kind, int(m.group(3), 16))
                continue
            parts = stripped.split()
            pending = parts[0] if len(parts) == 1 and stripped.startswith(" .") else None
    return sizes


def add(sizes, comp, kind, n):
    row = sizes.setdefault(comp, {k: 0 for k, _ in KINDS})
    row[kind] += n


def report(path):
    sizes = parse(path)
    name = os.path.basename(path).removesuffix(".link.map")
    cols = [k for k, _ in KINDS]
    print("%s (%s)" % (name, os.path.relpath(path)))
    print("  %-10s" % "component" + "".join("%10s" % c for c in cols) + "%12s" % "in file")
    total = {c: 0 for c in cols}
    order = sorted(sizes, key=lambda c: -(sum(sizes[c].values())))
    for comp in order:
        row = sizes[comp]
        for c in cols:
            total[c] += row[c]
        print("  %-10s" % comp + "".join("%10d" % row[c] for c in cols) +
              "%12d" % (row["text"] + row["rodata"] + row["data"]))
    print("  %-10s" % "total" + "".join("%10d" % total[c] for c in cols) +
          "%12d" % (total["text"] + total["rodata"] + total["data"]))


def main(args):
    maps = []
    for a in args or ["build"]:
        if os.path.isdir(a):
            apps = os.path.join(a, "apps")
            for d in sorted(os.listdir(apps)) if os.path.isdir(apps) else []:
                m = os.path.join(apps, d, d + ".link.map")
                if os.path.exists(m):
                    maps.append(m)
        else:
            maps.append(a)
    if not maps:
        print("size-breakdown: no NAME.link.map found (build the images first)", file=sys.stderr)
        return 1
    for m in maps:
        report(m)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # | head is fine
    sys.exit(main(sys.argv[1:]))

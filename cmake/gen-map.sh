#!/bin/sh
# Usage: gen-map.sh ELF OUT.map
# Writes NAME.map, the symbol map dom0's xenctx reads (`xenctx -s NAME.map -f -n 16 DOMID`): nm's
# "ADDRESS TYPE NAME" lines, sorted, demangled, plus the Linux names xenctx looks for to tell
# text from data (_text, _stext, _etext, _end, hypercall_page). xenctx reads 256-byte lines, so
# long demangled names are cut to 200 characters.
set -eu
elf=$1
out=$2
# "null" at 0: a zero register reads as that, not as an offset from the image's first symbol.
nm -n -C --defined-only "$elf" | awk '
    NR == 1 { print "0000000000000000 N null" }
    { addr = $1; type = $2; $1 = ""; $2 = ""; name = substr($0, 3) }
    name == "__image_start" { print addr, "T", "_text" }
    name == "__text_start" { print addr, "T", "_stext" }
    name == "__text_end" { print addr, "T", "_etext" }
    name == "keel_hypercall_page" { print addr, "T", "hypercall_page" }
    name == "__ksyms_end" { print addr, "B", "_end" }
    { print addr, type, substr(name, 1, 200) }' > "$out"
for want in _text _stext _etext _end hypercall_page; do
    grep -q " $want\$" "$out" || { echo "gen-map.sh: no $want in $elf (platform-xen/guest/link.ld changed?)" >&2; exit 1; }
done

#!/bin/bash
# Usage: check-image.sh PASS1_ELF FINAL_ELF
# The symbol table must not move any code between the two link passes, and the image must
# carry the PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY, type 18) in a PT_NOTE segment.
set -eu
syms() { nm -n --defined-only "$1" | grep -v -e keel_ksyms -e '\.Ln' -e __ksyms -e __image_end | awk '$2 ~ /^[tTdDbBrR]$/ {print $1, $3}'; }
a=$(syms "$1" | md5sum)
b=$(syms "$2" | md5sum)
if [ "$a" != "$b" ]; then
    echo "check-image: symbol addresses moved between link passes:" >&2
    diff <(syms "$1") <(syms "$2") | head -5 >&2; exit 1
fi
readelf -lW "$2" | grep -q '^ *NOTE' || { echo "check-image: no PT_NOTE segment" >&2; exit 1; }
readelf -nW "$2" | grep -q 'Xen' || { echo "check-image: no Xen ELF note" >&2; exit 1; }
if readelf -lW "$2" | awk '$1 == "LOAD" && $7 ~ /W/ && $7 ~ /E/ {found=1} END {exit !found}'; then
    echo "check-image: a LOAD segment is both writable and executable" >&2; exit 1
fi

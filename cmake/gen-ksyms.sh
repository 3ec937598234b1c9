#!/bin/sh
# Usage: gen-ksyms.sh ELF OUT.S
# Writes the text symbols of ELF, sorted by address, as the .ksyms section that the fault
# handler uses to symbolize backtraces. Layout: u64 count, then count x {u64 addr, u64 name_off},
# then the NUL-terminated names (name_off counts from keel_ksyms). Names without their parameter
# lists (c++filt -p): half the bytes, and a backtrace line has the address to tell overloads
# apart.
set -eu
elf=$1
out=$2
nm -n --defined-only "$elf" | awk '$2 ~ /^[tTwW]$/' | c++filt -p | awk '
    {
        addr = $1; $1 = ""; $2 = ""; name = substr($0, 3)
        gsub(/\\/, "\\\\", name); gsub(/"/, "\\\"", name)
        n++; a[n] = addr; s[n] = name
    }
    END {
        print "    .section .ksyms, \"a\""
        print "    .balign 8"
        print "    .globl keel_ksyms"
        print "keel_ksyms:"
        printf "    .quad %d\n", n
        for (i = 1; i <= n; i++) printf "    .quad 0x%s, .Ln%d - keel_ksyms\n", a[i], i
        for (i = 1; i <= n; i++) printf ".Ln%d: .asciz \"%s\"\n", i, s[i]
    }' > "$out"

#!/bin/sh
# Usage: gen-ksyms.sh ELF OUT.S
# Writes the text symbols of ELF, sorted by address, as the .ksyms section that the fault
# handler uses to symbolize backtraces. Layout: u64 count, then count x {u64 addr, u64 name_off},
# then the NUL-terminated names (name_off counts from keel_ksyms). C++ names without their
# parameter lists (c++filt -p: half the bytes; a backtrace line has the address to tell
# overloads apart), but with GCC's clone suffixes kept, as "[clone .cold]": an offset into a cold
# part or a coroutine's actor counts from that part, not from the function (c++filt -p would
# drop the suffix). Fields are tab-separated through c++filt, which leaves tabs alone.
set -eu
elf=$1
out=$2
nm -n --defined-only "$elf" | awk '
    $2 ~ /^[tTwW]$/ {
        name = $3; suffix = ""
        if (name ~ /^_Z/ && match(name, /(\.(cold|actor|destroy|constprop\.[0-9]+|isra\.[0-9]+|part\.[0-9]+))+$/)) {
            suffix = substr(name, RSTART); name = substr(name, 1, RSTART - 1)
        }
        printf "%s\t%s\t%s\n", $1, name, suffix
    }' | c++filt -p | awk -F '\t' '
    {
        addr = $1; name = $2
        if ($3 != "") name = name " [clone " $3 "]"
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

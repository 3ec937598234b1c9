#!/bin/sh
# Usage: gen-ksyms.sh ELF OUT.S
# Writes the text symbols of ELF, sorted by address, as the .ksyms section that the fault
# handler uses to symbolize backtraces (reader: platform-xen/src/ksyms.cc).
#
# Names: C++ names without their parameter lists (c++filt -p: half the bytes; a backtrace line
# has the address to tell overloads apart), but with GCC's clone suffixes kept, as
# "[clone .cold]": an offset into a cold part or a coroutine's actor counts from that part, not
# from the function (c++filt -p would drop the suffix). Fields are tab-separated through
# c++filt, which leaves tabs alone.
#
# Layout (little-endian, no alignment; S = 8 + 2 * ntok is where strings start):
#   u32 count; u16 ntok; u16 entries_off
#   ntok x u16 tok_off                    token i's string, counting from S
#   strings: the tokens', NUL-terminated; then, at S + entries_off, count entries sorted by
#   address, each {ULEB128 delta from the entry before (the first: from 0), at most 4 bytes, so
#   below 256 MiB, the first address too; the name, NUL-terminated}
# A string byte 0x20..0x7e stands for itself; any other non-zero byte is a token, expanded in
# place: 0x01..0x1f are tokens 0..30, 0x7f..0xff tokens 31..159. A token's string may use only
# tokens before it, nested at most 8 deep. The tokens are the substrings that save the most
# bytes, chosen here per image (greedily: "keel::", "(anonymous namespace)::", ...). Bytes
# outside 0x20..0x7e in a symbol name become '?'. Reader and why it reads entries in turn:
# platform-xen/include/keel/xen/ksyms.h.
set -eu
elf=$1
out=$2
# Stage by stage through variables: sh has no pipefail, and with set -e a failed stage (nm,
# c++filt) stops the script here instead of leaving an empty table.
syms=$(nm -n --defined-only "$elf")
names=$(printf '%s\n' "$syms" | awk '
    # Text symbols, and the hypercall page: NOLOAD (nm says B), but code Xen writes, where
    # every hypercall runs (a profile sample or a fault there is named, not blamed on the
    # function before it).
    $2 ~ /^[tTwW]$/ || $3 == "keel_hypercall_page" {
        name = $3; suffix = ""
        if (name ~ /^_Z/ && match(name, /(\.(cold|actor|destroy|constprop\.[0-9]+|isra\.[0-9]+|part\.[0-9]+))+$/)) {
            suffix = substr(name, RSTART); name = substr(name, 1, RSTART - 1)
        }
        printf "%s\t%s\t%s\n", $1, name, suffix
    }' | c++filt -p)
printf '%s\n' "$names" | LC_ALL=C awk -F '\t' '
    function replace_all(s, pat, rep,    o, k) {
        o = ""
        while ((k = index(s, pat)) > 0) { o = o substr(s, 1, k - 1) rep; s = substr(s, k + length(pat)) }
        return o s
    }
    function alnum(c) { return c ~ /^[A-Za-z0-9]$/ }
    # Nesting depth of a string: 0 without tokens, else 1 + the deepest token in it.
    function depth_of(s,    i, d, c) {
        d = 0
        for (i = 1; i <= length(s); i++) {
            c = substr(s, i, 1)
            if (c in code_index && depth[code_index[c]] > d) d = depth[code_index[c]]
        }
        return d
    }
    function quote(s,    o, i, c) {
        o = ""
        for (i = 1; i <= length(s); i++) {
            c = substr(s, i, 1)
            if (c in code_index) o = o sprintf("\\%03o", code_byte[code_index[c]])
            else if (c == "\\" || c == "\"") o = o "\\" c
            else o = o c
        }
        return o
    }
    BEGIN {
        ntok_max = 0
        for (b = 1; b < 256; b++) if (b < 32 || b > 126) { code[ntok_max] = sprintf("%c", b); code_byte[ntok_max] = b; ntok_max++ }
        for (b = 0; b < ntok_max; b++) code_index[code[b]] = b
        max_depth = 8; max_len = 40
    }
    $0 == "" { next }   # no symbols at all: the one empty line printf makes of none
    {
        a = tolower($1); sub(/^0+/, "", a)
        if (length(a) > 8) { print "gen-ksyms.sh: address " $1 " does not fit in 32 bits" > "/dev/stderr"; bad = 1; exit 1 }
        v = 0
        for (k = 1; k <= length(a); k++) v = v * 16 + index("0123456789abcdef", substr(a, k, 1)) - 1
        name = $2
        if ($3 != "") name = name " [clone " $3 "]"
        gsub(/[^ -~]/, "?", name)
        n++; delta[n] = v - prev; prev = v
        if (delta[n] < 0) { print "gen-ksyms.sh: " $1 " is below the symbol before it (nm -n did not sort)" > "/dev/stderr"; bad = 1; exit 1 }
        if (delta[n] >= 268435456) { print "gen-ksyms.sh: " $1 " is 256 MiB or more past " (n == 1 ? "0" : "the symbol before it") > "/dev/stderr"; bad = 1; exit 1 }
        str[n] = name
    }
    END {
        if (bad) exit 1
        # Greedy: take the substring that saves the most bytes (counted at boundaries of
        # identifiers, so the counting stays cheap), replace it by the next token, repeat.
        for (t = 0; t < ntok_max; t++) {
            delete cnt
            for (i = 1; i <= n; i++) {
                s = str[i]; L = length(s)
                for (a = 1; a < L; a++) {
                    if (a > 1 && alnum(substr(s, a - 1, 1)) && alnum(substr(s, a, 1))) continue
                    for (e = a + 1; e <= L && e - a < max_len; e++) {
                        if (e < L && alnum(substr(s, e, 1)) && alnum(substr(s, e + 1, 1))) continue
                        cnt[substr(s, a, e - a + 1)]++
                    }
                }
            }
            best = ""; gain = 0
            for (k in cnt) {
                v = cnt[k] * (length(k) - 1) - length(k) - 3   # its string, NUL and u16 offset
                if ((v > gain || (v == gain && k < best)) && depth_of(k) < max_depth) { gain = v; best = k }
            }
            if (gain <= 0) break
            tok[t] = best; depth[t] = 1 + depth_of(best); ntok = t + 1
            for (i = 1; i <= n; i++) if (index(str[i], best)) str[i] = replace_all(str[i], best, code[t])
        }
        # Strings area: the tokens, then the entries.
        off = 0
        for (t = 0; t < ntok; t++) { tok_off[t] = off; off += length(tok[t]) + 1 }
        if (off > 65535) { print "gen-ksyms.sh: token strings exceed 64 KiB" > "/dev/stderr"; exit 1 }

        print "    .section .ksyms, \"a\""
        print "    .balign 8"
        print "    .globl keel_ksyms"
        print "keel_ksyms:"
        printf "    .long %d\n    .short %d, %d\n", n, ntok, off
        for (t = 0; t < ntok; t++) printf "    .short %d\n", tok_off[t]
        for (t = 0; t < ntok; t++) printf "    .asciz \"%s\"\n", quote(tok[t])
        for (i = 1; i <= n; i++) printf "    .uleb128 %.0f\n    .asciz \"%s\"\n", delta[i], quote(str[i])
    }' > "$out"

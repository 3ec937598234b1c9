#!/usr/bin/env bash
# fetch-lwip.sh DEST: unpack Debian's `lwip` source package (bookworm main) into DEST/lwip-2.1.3.
#
# lwIP is a dependency, never copied into the tree: cmake/lwip.cmake runs this at configure time
# when the unpacked tree is missing. Idempotent: exits at once when DEST/lwip-2.1.3/src/core is
# already there. Otherwise it makes sure apt knows a deb-src entry for bookworm main (adding
# /etc/apt/sources.list.d/keel-deb-src.sources, with the URIs and key of the host's own
# bookworm main entry), runs `apt-get source lwip` (needs dpkg-dev) in a temporary directory
# inside DEST and renames the unpacked tree into place, so a half-finished fetch is never seen.
# The Debian version that was unpacked is recorded in DEST/lwip-2.1.3/KEEL-DEBIAN-VERSION.
# Runs as root, or through `sudo -n` for the apt steps.
set -euo pipefail

want_upstream=2.1.3   # what keel's port (net/port) is written and tested against
dest=${1:?usage: fetch-lwip.sh DEST}
tree="$dest/lwip-$want_upstream"
src_list=/etc/apt/sources.list.d/keel-deb-src.sources

if [ -d "$tree/src/core" ]; then
    exit 0
fi

say() { echo "fetch-lwip: $*" >&2; }
die() { say "$*"; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot configure apt"
    SUDO=(sudo -n)
fi

command -v dpkg-source >/dev/null 2>&1 ||
    die "dpkg-source is missing: install dpkg-dev (apt-get install dpkg-dev)"

mkdir -p "$dest"
# Several build directories may configure at once: one fetch at a time per DEST.
exec 9>"$dest/.fetch.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi
if [ -d "$tree/src/core" ]; then
    exit 0   # another configure run fetched it while we waited
fi

# True when apt already has a deb-src entry that names bookworm and main.
have_deb_src() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        if grep -Eq '^[[:space:]]*deb-src([[:space:]]+\[[^]]*\])?[[:space:]]+[^[:space:]]+[[:space:]]+bookworm[[:space:]].*\bmain\b' "$f"; then
            return 0
        fi
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        if deb822_find "$f" deb-src >/dev/null; then
            return 0
        fi
    done
    return 1
}

# deb822_find FILE TYPE: print "URIS<TAB>SIGNED_BY" of the first stanza of FILE whose Types
# include TYPE, whose Suites include bookworm and whose Components include main.
deb822_find() {
    awk -v want="$2" '
        function flush() {
            if (types ~ ("(^| )" want "( |$)") && suites ~ /(^| )bookworm( |$)/ &&
                comps ~ /(^| )main( |$)/ && enabled !~ /^no$/ && uris != "") {
                print uris "\t" signed; found = 1; exit
            }
            types = suites = comps = uris = signed = enabled = ""
        }
        /^[[:space:]]*$/ { flush(); next }
        /^#/ { next }
        {
            line = $0
            key = line; sub(/:.*/, "", key)
            val = line; sub(/^[^:]*:[[:space:]]*/, "", val); sub(/[[:space:]]+$/, "", val)
            k = tolower(key)
            if (k == "types") types = val
            else if (k == "suites") suites = val
            else if (k == "components") comps = val
            else if (k == "uris") uris = val
            else if (k == "signed-by") signed = val
            else if (k == "enabled") enabled = tolower(val)
        }
        END { if (!found) flush(); if (!found) exit 1 }
    ' "$1"
}

# Print "URIS<TAB>SIGNED_BY" for the host's bookworm main binary entry (deb822 first, then
# one-line sources.list); nothing if there is none.
host_entry() {
    local f line
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        if line=$(deb822_find "$f" deb); then
            echo "$line"
            return 0
        fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        line=$(awk '
            $1 == "deb" {
                opts = ""; i = 2
                if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) { opts = opts " " $i; i++ } opts = opts " " $i; i++ }
                uri = $i; suite = $(i + 1)
                if (suite != "bookworm") next
                for (j = i + 2; j <= NF; j++) if ($j == "main") {
                    signed = ""
                    if (match(opts, /signed-by=[^] ]+/)) signed = substr(opts, RSTART + 10, RLENGTH - 10)
                    print uri "\t" signed; exit
                }
            }' "$f")
        if [ -n "$line" ]; then
            echo "$line"
            return 0
        fi
    done
    return 0
}

added=0
if ! have_deb_src; then
    entry=$(host_entry)
    uris=${entry%%$'\t'*}
    signed=${entry#*$'\t'}
    if [ -z "$entry" ] || [ -z "$uris" ]; then
        say "no bookworm main entry found in apt's sources; using the default Debian mirror"
        uris=http://deb.debian.org/debian
        signed=/usr/share/keyrings/debian-archive-keyring.gpg
    fi
    [ "$signed" = "$entry" ] && signed=""
    say "adding $src_list (deb-src $uris bookworm main)"
    {
        echo "# Added by keel's scripts/fetch-lwip.sh: source packages (apt-get source lwip)."
        echo "Types: deb-src"
        echo "URIs: $uris"
        echo "Suites: bookworm"
        echo "Components: main"
        [ -n "$signed" ] && echo "Signed-By: $signed"
    } | "${SUDO[@]}" tee "$src_list" >/dev/null
    added=1
fi

if [ "$added" = 1 ] || ! apt-cache showsrc lwip 2>/dev/null | grep -q '^Package: lwip'; then
    say "apt-get update"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 ||
        die "apt-get update failed"
fi

version=$(apt-cache showsrc lwip 2>/dev/null | awk '/^Version:/ { print $2; exit }')
[ -n "$version" ] || die "apt knows no source package 'lwip' (is bookworm main in a deb-src entry?)"
upstream=${version#*:}
upstream=${upstream%-*}
upstream=${upstream%%+*}
[ "$upstream" = "$want_upstream" ] ||
    die "Debian offers lwip $version, keel's port is written for $want_upstream"

work=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
say "apt-get source lwip ($version)"
(cd "$work" && apt-get source -q "lwip=$version" >&2) || die "apt-get source lwip failed"

unpacked=""
for d in "$work"/lwip-*/; do
    if [ -d "$d/src/core" ]; then
        unpacked=${d%/}
        break
    fi
done
[ -n "$unpacked" ] || die "apt-get source produced no tree with src/core"
echo "$version" >"$unpacked/KEEL-DEBIAN-VERSION"
rm -rf "$tree"
mv "$unpacked" "$tree"
say "lwIP $version unpacked into $tree"

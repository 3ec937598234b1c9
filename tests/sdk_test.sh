#!/usr/bin/env bash
# The SDK (README, "Build a service outside the tree"), from a finished build: `cmake --install`
# into WORK/prefix; examples/outside-service configured and built against it in
# WORK/apps/greeter (the nested scenario sdk boots that image: --apps WORK/apps); its image is a
# PVH ELF with the PV notes too, and its xl configs (greeter.xl, greeter-pv.xl) name it; and
# apps/hello built against the package loads the same
# bytes as the tree's own hello.xen (the installed objects are the tree's, every one of them).
#   sdk_test.sh ROOT BUILD WORK [-DVAR=VALUE... for the outside builds]
set -euo pipefail
root=$1 build=$2 work=$3
shift 3
fail() { echo "FAIL: $*"; exit 1; }
quiet() {   # run "$@", show its output only if it fails
    local out
    out=$("$@" 2>&1) || { printf '%s\n' "$out" | tail -n 40; fail "$*"; }
}

rm -rf "$work"
mkdir -p "$work"
quiet cmake --install "$build" --prefix "$work/prefix"
for f in lib/cmake/keel/keelConfig.cmake lib/cmake/keel/keelConfigVersion.cmake lib/cmake/keel/keel-service.cmake \
         lib/keel/link.ld include/keel/service.h include/keel/net/net.h; do
    [ -f "$work/prefix/$f" ] || fail "the install has no $f"
done
echo "installed into $work/prefix: $(du -sh "$work/prefix" | cut -f1)"

# The example, exactly as a user outside the tree builds it.
app=$work/apps/greeter
quiet cmake -S "$root/examples/outside-service" -B "$app" -DCMAKE_PREFIX_PATH="$work/prefix" "$@"
quiet cmake --build "$app"
image=$app/greeter.xen
[ -f "$image" ] || fail "no $image"
[ -f "$app/greeter.map" ] || fail "no greeter.map"
# PVH: the entry note (XEN_ELFNOTE_PHYS32_ENTRY, type 0x12) in a PT_NOTE segment; no W+X LOAD.
# (Output captured first: grep -q would close the pipe early, and pipefail see SIGPIPE.)
notes=$(readelf -nW "$image")
grep -Eq '^ *Xen .*\(0x00000012\)' <<<"$notes" || fail "greeter.xen has no PVH entry note"
quiet bash "$work/prefix/lib/cmake/keel/check-image.sh" "$app/greeter_pass1" "$image"
grep -qx "kernel = \"$image\"" "$app/greeter.xl" || fail "greeter.xl does not name $image: $(grep kernel "$app/greeter.xl")"
grep -qx 'name = "greeter"' "$app/greeter.xl" || fail "greeter.xl has no name = \"greeter\""
grep -qx 'type = "pvh"' "$app/greeter.xl" || fail "greeter.xl is not type = \"pvh\""
grep -q '^vif = ' "$app/greeter.xl" || fail "greeter.xl lost its XL line (vif)"
# The same image as a classic PV guest (docs/pv.md): greeter-pv.xl and the PV loader's notes.
grep -qx "kernel = \"$image\"" "$app/greeter-pv.xl" || fail "greeter-pv.xl does not name $image"
grep -qx 'name = "greeter-pv"' "$app/greeter-pv.xl" || fail "greeter-pv.xl has no name = \"greeter-pv\""
grep -qx 'type = "pv"' "$app/greeter-pv.xl" || fail "greeter-pv.xl is not type = \"pv\""
grep -q '^vif = ' "$app/greeter-pv.xl" || fail "greeter-pv.xl lost its XL line (vif)"
grep -Eq '^ *Xen .*\(0x00000008\).*67 65 6e 65 72 69 63 00' <<<"$notes" ||
    fail "greeter.xen has no XEN_ELFNOTE_LOADER \"generic\" note (the PV loader refuses it)"
# keel::net brought netfront and lwIP with it.
syms=$(nm "$image")
grep -q ' tcp_input$' <<<"$syms" || fail "greeter.xen has no lwIP (keel::net's dependencies were not linked)"
echo "greeter.xen: $(size "$image" | awk 'NR == 2 { print "text " $1 ", data " $2 ", bss " $3 }')"

# apps/hello from outside the tree: the same image as the tree's (debug info aside: paths).
mkdir -p "$work/hello-src"
cat >"$work/hello-src/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.20)
project(hello LANGUAGES CXX ASM)
find_package(keel REQUIRED)
keel_add_service(hello SOURCES "$root/apps/hello/hello.cc" MEMORY 8)
EOF
quiet cmake -S "$work/hello-src" -B "$work/hello" -DCMAKE_PREFIX_PATH="$work/prefix" "$@"
quiet cmake --build "$work/hello"
objcopy -O binary "$work/hello/hello.xen" "$work/hello-outside.bin"
objcopy -O binary "$build/apps/hello/hello.xen" "$work/hello-tree.bin"
cmp -s "$work/hello-outside.bin" "$work/hello-tree.bin" ||
    fail "hello built against the SDK differs from the tree's: $(size "$work/hello/hello.xen" "$build/apps/hello/hello.xen")"
echo "hello against the SDK: the same $(stat -c %s "$work/hello-tree.bin") loaded bytes as the tree's hello.xen"
echo "PASS"

# Sourced in dom0 by the comparison benchmarks, after /scenario/lib.sh.
# The Linux PVH guest: Debian's kernel (the one dom0 runs, shipped as /scenario/vmlinuz by the
# benchmark's build.sh) and an initramfs from mkinitrd.sh.

LINUX_INITRD=/tmp/bench-linux.cpio.gz

# linux_initrd [WWW_DIR]: build the initramfs once.
linux_initrd() {
    [ -s "$LINUX_INITRD" ] || /scenario/linux-guest/mkinitrd.sh "$LINUX_INITRD" "${1:-}" ||
        fail "building the Linux guest's initramfs failed"
}

# linux_xl NAME MEMORY_MIB CMDLINE [XL LINE...]: write /tmp/NAME.xl for the Linux guest.
linux_xl() {
    local name=$1 mem=$2 cmdline=$3
    shift 3
    {
        echo "name = \"$name\""
        echo 'type = "pvh"'
        echo 'kernel = "/scenario/vmlinuz"'
        echo "ramdisk = \"$LINUX_INITRD\""
        echo "cmdline = \"console=hvc0 quiet $cmdline\""
        echo "memory = $mem"
        echo 'vcpus = 1'
        echo 'tsc_mode = "native"'      # nested-xen.md: rdtscp under an emulated TSC kills it
        echo 'on_poweroff = "destroy"'
        echo 'on_crash = "destroy"'
        printf '%s\n' "$@"
    } > "/tmp/$name.xl"
    echo "/tmp/$name.xl"
}

# linux_image_bytes: what the Linux guest boots from (kernel + initramfs).
linux_image_bytes() { echo $(( $(stat -c %s /scenario/vmlinuz) + $(stat -c %s "$LINUX_INITRD") )); }

# bench NAME SYSTEM VALUE: one result line (bench/compare.sh makes the table).
bench() { echo "KEEL-BENCH $1 $2 $3"; }

#!/bin/bash
# Runs in dom0: builds the initramfs of the Linux PVH guest the benchmarks compare keel with,
# from dom0's own Debian packages (nginx-light, redis-server, busybox, coreutils' dd; see
# DOM0_PACKAGES in testbed/build-host.sh) and the frontend modules dom0 carries.
#
#   mkinitrd.sh OUT.cpio.gz [WWW_DIR]
#
# The guest's /init reads from the kernel command line:
#   bench.ip=ADDR/PREFIX   eth0's address (required for a service)
#   bench.svc=nginx        serve WWW_DIR's files on port 80
#   bench.svc=redis        redis-server with appendonly + appendfsync always on an ext4 /dev/xvda
#   bench.svc=dd           raw sequential write then read of 64 MiB of /dev/xvda with O_DIRECT;
#                          prints "bench-dd write|read <dd's summary line>"
# It prints "bench-guest: ready" once the service listens, and powers off when the service ends.
set -euo pipefail
out=$1
www=${2:-}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,run,data,www,lib/modules,var/log/nginx,var/lib/nginx,var/run}
# Binaries with every library they load (ldd lists the absolute paths).
copy_bin() {
    local b=$1 dest=$2
    install -D -m 755 "$b" "$root$dest"
    ldd "$b" | grep -oE '/[^ ]+' | while read -r lib; do
        [ -e "$root$lib" ] || install -D -m 755 "$lib" "$root$lib"
    done
}
copy_bin /bin/busybox /bin/busybox
copy_bin /usr/sbin/nginx /bin/nginx
copy_bin "$(readlink -f /usr/bin/redis-server)" /bin/redis-server
copy_bin /bin/dd /bin/dd
copy_bin /sbin/mke2fs /bin/mke2fs
for a in sh mount umount ip insmod sleep cat echo mkdir poweroff grep seq tr head cut tail; do
    ln -sf busybox "$root/bin/$a"
done
# The frontends and ext4 (redis' disk) as modules, with what they depend on, in load order.
mods=$(for m in xen-netfront xen-blkfront crc32c_generic ext4; do modprobe --show-depends $m; done)
grep '^insmod' <<<"$mods" | awk '{print $2}' | awk '!seen[$0]++' > "$root/lib/modules/order"
while read -r m; do install -D -m 644 "$m" "$root$m"; done < "$root/lib/modules/order"
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
[ -n "$www" ] && cp -r "$www/." "$root/www/"
cat > "$root/etc/nginx.conf" <<'CONF'
user root;
worker_processes 1;
daemon off;
error_log stderr warn;
pid /run/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    keepalive_timeout 30;
    default_type text/html;
    server { listen 80; root /www; index index.html; }
}
CONF
cat > "$root/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/order); do insmod "$m" 2>/dev/null; done
arg() { tr ' ' '\n' < /proc/cmdline | grep "^$1=" | head -n1 | cut -d= -f2-; }
ip=$(arg bench.ip); svc=$(arg bench.svc)
ip link set lo up
if [ -n "$ip" ]; then
    for i in $(seq 1 50); do [ -e /sys/class/net/eth0 ] && break; sleep 0.1; done
    ip addr add "$ip" dev eth0 && ip link set eth0 up
fi
case "$svc" in
nginx)
    echo "bench-guest: ready"
    nginx -c /etc/nginx.conf ;;
redis)
    for i in $(seq 1 50); do [ -e /dev/xvda ] && break; sleep 0.1; done
    mke2fs -q -t ext4 -F /dev/xvda && mount -t ext4 /dev/xvda /data || echo "bench-guest: no disk"
    echo "bench-guest: ready"
    redis-server --bind 0.0.0.0 --protected-mode no --port 6379 --dir /data --save "" \
        --appendonly yes --appendfsync always --daemonize no ;;
dd)
    for i in $(seq 1 50); do [ -e /dev/xvda ] && break; sleep 0.1; done
    echo "bench-guest: ready"
    # coreutils dd reports "N bytes (...) copied, SECONDS s, RATE".
    echo "bench-dd write $(dd if=/dev/zero of=/dev/xvda bs=1M count=64 oflag=direct 2>&1 | tail -n1)"
    echo "bench-dd read $(dd if=/dev/xvda of=/dev/null bs=1M count=64 iflag=direct 2>&1 | tail -n1)"
    ;;
*)
    echo "bench-guest: no service" ;;
esac
poweroff -f
INIT
chmod 755 "$root/init"
(cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null) | gzip -1 > "$out"

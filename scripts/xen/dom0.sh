#!/usr/bin/env bash
# Builds the nested-Xen lab's cached parts from Debian packages, under build/xen/ (see scripts/xen/README.md):
#   xen            Xen 4.17's hypervisor (xen-hypervisor-4.17-amd64's xen.gz, unpacked: QEMU's multiboot loader
#                  wants the ELF)
#   vmlinuz        Debian's linux-image-*-amd64: dom0 (PV) and the Linux test domU (PVH) boot the same kernel
#   dom0.cpio      dom0's initramfs: busybox-static, xl/xenstored/xenconsoled and their libraries, qubesdb-standin, the kernel
#                  modules dom0 needs, the host's ip/openvpn/dnsmasq with their library closure, /init
#                  (scripts/xen/dom0-init.sh) and our own hotplug scripts (scripts/xen/hotplug-*)
#   domu.cpio      a Linux PVH domU's initramfs (busybox-static, xen-netfront/xen-blkfront, scripts/xen/domu-init.sh)
# Test-specific files (the image, config disk, keys, the test script) go into a second, small cpio that
# scripts/xen/lab.sh appends at boot time, so this one is rebuilt only when a package version or one of
# these scripts changes (the cache key). Packages come with `apt-get download` + `dpkg -x`; nothing is
# installed on the host. Prints the directory it built (or found) on stdout.
set -eu
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${XEN_LAB_DIR:-$ROOT/build/xen}
mkdir -p "$OUT"
log() { echo "xen-lab: $*" >&2; }

XENV=4.17
HOSTBIN=(/usr/bin/ip /usr/sbin/openvpn /usr/sbin/dnsmasq)
# resolve: the packages (the kernel's ABI name comes from linux-image-amd64) and the cache key: the versions
# Debian would give us now (candidates), the host tools' versions and our own scripts; any change rebuilds.
resolve() {
    KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    PKGS=(xen-hypervisor-$XENV-amd64 xen-utils-$XENV xen-utils-common xenstore-utils libxencall1 libxenevtchn1
          libxenforeignmemory1 libxengnttab1 libxenmisc$XENV libxenstore4 libxentoollog1 libxentoolcore1
          libxendevicemodel1 libxenhypfs1 libyajl2 "$KPKG" busybox-static libxen-dev)
    key=$( {
        for p in "${PKGS[@]}"; do echo "$p $(apt-cache policy "$p" | awk '/Candidate:/ { print $2 }')"; done
        for b in "${HOSTBIN[@]}"; do echo "$b $(dpkg -S "$b" 2>/dev/null | cut -d: -f1 | xargs -r dpkg-query -W -f='${Version}')"; done
        cat scripts/xen/dom0.sh scripts/xen/dom0-init.sh scripts/xen/domu-init.sh scripts/xen/hotplug-* scripts/xen/qubesdb-standin.c
    } | sha256sum | cut -c1-16)
}
resolve
if [ -z "$KPKG" ]; then
    log "apt-get update (no package lists yet)"
    apt-get update -qq >&2
    resolve
fi
if [ "$(cat "$OUT/key" 2>/dev/null)" = "$key" ] && [ -f "$OUT/dom0.cpio" ] && [ -f "$OUT/domu.cpio" ]; then
    echo "$OUT"; exit 0
fi
for b in "${HOSTBIN[@]}"; do [ -x "$b" ] || { log "missing $b: run scripts/setup.sh"; exit 1; }; done
command -v cpio >/dev/null || { log "missing cpio: run scripts/setup.sh"; exit 1; }

t0=$(date +%s)
tmp=$(mktemp -d /tmp/oxv-xenlab.XXXXXX)
trap 'rm -rf "$tmp" "$OUT"/*.$$' EXIT
mkdir -p "$tmp/debs" "$tmp/pkg"
log "downloading ${#PKGS[@]} Debian packages ($KPKG, xen $XENV)"
download() { ( cd "$tmp/debs" && apt-get download -q "${PKGS[@]}" >/dev/null 2>"$tmp/apt.err" ); }
# Old package lists name versions the mirror no longer has: refresh them once.
if ! download; then
    log "apt-get download failed; apt-get update and again"
    apt-get update -qq >&2 && resolve && download || { cat "$tmp/apt.err" >&2; log "apt-get download failed"; exit 1; }
fi
for d in "$tmp"/debs/*.deb; do dpkg -x "$d" "$tmp/pkg"; done
P=$tmp/pkg
KVER=${KPKG#linux-image-}

# Every output is written aside and renamed: a lab booting from this directory meanwhile keeps whole files.
gunzip -c "$P/boot/xen-$XENV-amd64.gz" > "$OUT/xen.$$"
cp "$P/boot/vmlinuz-$KVER" "$OUT/vmlinuz.$$"

# --- helpers ---------------------------------------------------------------------------------------------
# add_file ROOTFS SRC [DEST]: copies SRC (following links) into ROOTFS at DEST (default the same path).
add_file() { local r=$1 src=$2 dst=${3:-$2}; mkdir -p "$r$(dirname "$dst")"; rm -f "$r$dst"; cp -L "$src" "$r$dst"; }
# add_elf ROOTFS BIN [DEST]: BIN plus every shared library it needs (ldd with the unpacked Xen libraries on
# the search path; the rest comes from the host, a Debian 12 like the packages).
add_elf() {
    local r=$1 bin=$2 dst=${3:-$2} lib
    add_file "$r" "$bin" "$dst"
    for lib in $(LD_LIBRARY_PATH=$P/usr/lib/x86_64-linux-gnu ldd "$bin" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }'); do
        case $lib in
            "$P"/*) add_file "$r" "$lib" "${lib#"$P"}" ;;
            *) [ -e "$r$lib" ] || add_file "$r" "$lib" ;;
        esac
    done
}
# add_modules ROOTFS NAME...: the kernel modules and what they depend on (modules.dep made with busybox's
# depmod over the unpacked tree), then a modules.dep for just these.
add_modules() {
    local r=$1 m f dep; shift
    [ -f "$P/lib/modules/$KVER/modules.dep" ] || "$P/bin/busybox" depmod -b "$P" "$KVER"
    for m in "$@"; do
        f=$(grep -E "/$m\.ko(\.[a-z]+)?:" "$P/lib/modules/$KVER/modules.dep" | head -1) \
            || { log "no module $m in $KPKG"; exit 1; }
        for dep in ${f%%:*} ${f#*:}; do add_file "$r" "$P/lib/modules/$KVER/$dep" "/lib/modules/$KVER/$dep"; done
    done
    cp "$P/lib/modules/$KVER/modules.builtin" "$P/lib/modules/$KVER/modules.order" "$r/lib/modules/$KVER/"
    "$P/bin/busybox" depmod -b "$r" "$KVER"
}
# add_busybox ROOTFS: busybox-static and a link per applet.
add_busybox() {
    local r=$1 a
    add_file "$r" "$P/bin/busybox" /bin/busybox
    mkdir -p "$r/sbin" "$r/usr/bin" "$r/usr/sbin"
    for a in $("$P/bin/busybox" --list-full); do [ -e "$r/$a" ] || ln -s /bin/busybox "$r/$a"; done
}
# pack ROOTFS FILE: a newc cpio (uncompressed: unpacking is faster than inflating under TCG).
pack() { ( cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 ) > "$2"; }

# --- dom0 -------------------------------------------------------------------------------------------------
d=$tmp/dom0
mkdir -p "$d"/{proc,sys,dev,tmp,run,var/log/xen,var/lib/xen,var/run/xen,var/run/xenstored,etc/xen/scripts,test}
add_busybox "$d"
XB=/usr/lib/xen-$XENV/bin
for b in xl xenstored xenconsoled xenconsole libxl-save-helper xen-init-dom0 xenctx; do add_elf "$d" "$P$XB/$b" "$XB/$b"; done
ln -s "$XB/xl" "$d/usr/sbin/xl"
# xenstore-read/-write/-ls (one binary, named by argv[0]) for the hotplug scripts and the tests.
add_elf "$d" "$P/usr/bin/xenstore" /usr/bin/xenstore
for t in read write ls rm list exists watch; do ln -sf xenstore "$d/usr/bin/xenstore-$t"; done
# glibc dlopens libgcc_s for pthread_cancel (xl's event loop uses it): ldd cannot see that.
add_file "$d" "$(ldconfig -p | awk '/libgcc_s.so.1 .*x86-64/ { print $NF; exit }')" /lib/x86_64-linux-gnu/libgcc_s.so.1
for b in "${HOSTBIN[@]}"; do add_elf "$d" "$b"; done
# The QubesDB stand-in (scripts/xen/qubesdb-standin.c), built against the unpacked libxen-dev and
# libxenvchan (libxenmisc): a few KB plus libxenvchan, where python3 + ctypes would add tens of MB.
command -v gcc >/dev/null || { log "missing gcc: run scripts/setup.sh"; exit 1; }
XL=$P/usr/lib/x86_64-linux-gnu
gcc -O2 -Wall -I "$P/usr/include" -o "$tmp/qubesdb-standin" scripts/xen/qubesdb-standin.c \
    "$XL/libxenvchan.so.$XENV" -Wl,-rpath-link="$XL"
add_elf "$d" "$tmp/qubesdb-standin" /usr/bin/qubesdb-standin
# The host's ip replaces busybox's (which has no `ip netns`).
ln -sf /usr/bin/ip "$d/sbin/ip"
add_modules "$d" xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs xen-netback xen-blkback bridge veth tun loop
cat > "$d/etc/xen/xl.conf" <<'EOF'
# libxl runs the hotplug scripts itself (no udev in this dom0); ours are in /etc/xen/scripts.
run_hotplug_scripts=1
autoballoon="off"
lockfile="/var/lock/xl"
EOF
mkdir -p "$d/var/lock"
cp scripts/xen/hotplug-vif "$d/etc/xen/scripts/oxv-vif"
cp scripts/xen/hotplug-block "$d/etc/xen/scripts/oxv-block"
cp scripts/xen/dom0-init.sh "$d/init"
chmod +x "$d/init" "$d"/etc/xen/scripts/*
echo "root:x:0:0:root:/:/bin/sh" > "$d/etc/passwd"
echo "root:x:0:" > "$d/etc/group"
# openvpn drops to nobody/nogroup only if told to; dnsmasq runs as nobody by default.
echo "nobody:x:65534:65534:nobody:/:/bin/false" >> "$d/etc/passwd"
echo "nogroup:x:65534:" >> "$d/etc/group"
pack "$d" "$OUT/dom0.cpio.$$"

# --- Linux PVH domU (validation of the wiring, and the client domU of later tests) -------------------------
u=$tmp/domu
mkdir -p "$u"/{proc,sys,dev,tmp,etc}
add_busybox "$u"
add_modules "$u" xen-netfront xen-blkfront
cp scripts/xen/domu-init.sh "$u/init"
chmod +x "$u/init"
pack "$u" "$OUT/domu.cpio.$$"

for f in xen vmlinuz dom0.cpio domu.cpio; do mv "$OUT/$f.$$" "$OUT/$f"; done
echo "$KPKG xen-hypervisor-$XENV-amd64 $(apt-cache policy xen-hypervisor-$XENV-amd64 | awk '/Candidate:/ { print $2 }')" > "$OUT/versions"
echo "$key" > "$OUT/key"
log "built $OUT in $(( $(date +%s) - t0 ))s: dom0.cpio $(( $(stat -c %s "$OUT/dom0.cpio") >> 20 )) MB, domu.cpio $(( $(stat -c %s "$OUT/domu.cpio") >> 20 )) MB"
echo "$OUT"

#!/usr/bin/env bash
# Boots the nested-Xen lab once: Xen 4.17 in QEMU TCG, a Linux PV dom0 from build/xen (scripts/xen/dom0.sh,
# cached), which runs scripts/xen/dom0-test.sh in one mode and reboots. See scripts/xen/README.md.
#
#   scripts/xen/lab.sh [options]
#     --mode oxvpn|linux|create|netback|qubesdb|qubes  what dom0 does (default create: `xl create`, wait, dump the
#                                console, destroy; netback: the image as the driver domain of a Linux client
#                                domU; qubesdb: the image with --qubesdb against dom0's QubesDB stand-in)
#     --kernel PATH              the domU kernel (default build/oxvpn.elf; linux mode: build/xen/vmlinuz)
#     --args "ARGS"              the domU's command line (xl `extra`; default the router's netlab arguments)
#     --disk PATH                the domU's config disk (xvda, read-only; default the server dir's config.img
#                                when there is one); --no-disk for none
#     --mem MB                   domU memory (default 64; linux mode 256)
#     --wait S                   create mode: seconds to wait (default 10)
#     --wait-for TEXT            create mode: stop waiting when TEXT is on the domU console
#     --server                   create mode: start the OpenVPN server and dnsmasq too
#     --server-dir DIR           server.conf, pki/ and config.img (scripts/xen/server-dir.sh makes one; without
#                                this option the router test and --server make a fresh one)
#     --shutdown                 create mode: end with `xl shutdown -w` instead of `xl destroy`
#     --standin                  oxvpn mode with a Linux domU that merely forwards in place of the image: checks
#                                the router test's own checks (DNS goes to dnsmasq directly: no forwarder there)
#     --set VAR=VALUE            any other setting for dom0-test.sh (e.g. SIZE_MB=8, TUNNEL_TIMEOUT=90)
#     --out DIR                  keep serial.log (everything), guest.log (the domU console) there
#     --timeout S                whole boot bound (default 300)
# Prints the XENTEST lines and the domU console as they come; exits 0 when dom0 reported no failure.
set -eu
cd "$(dirname "$0")/../.."
ROOT=$PWD
# shellcheck source=scripts/netlab.sh
NETLAB=oxv-xen   # the addresses and MACs of scripts/netlab.sh only: no namespace is made on the host
source scripts/netlab.sh

mode=create standin= kernel= args= disk=default mem= out= timeout=300 server_dir= sets=()
while [ $# -gt 0 ]; do
    case $1 in
        --mode) mode=$2; shift 2 ;;
        --kernel) kernel=$2; shift 2 ;;
        --args) args=$2; shift 2 ;;
        --disk) disk=$2; shift 2 ;;
        --no-disk) disk=; shift ;;
        --mem) mem=$2; shift 2 ;;
        --wait) sets+=("WAIT=$2"); shift 2 ;;
        --wait-for) sets+=("WAIT_FOR=$2"); shift 2 ;;
        --server) sets+=("WITH_SERVER=1"); shift ;;
        --server-dir) server_dir=$2; shift 2 ;;
        --shutdown) sets+=("SHUTDOWN=1"); shift ;;
        --standin) standin=1; shift ;;
        --set) sets+=("$2"); shift 2 ;;
        --out) out=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d'; exit 0 ;;
        *) echo "lab.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
case $mode in oxvpn|linux|create|netback|qubesdb|qubes) ;; *) echo "lab.sh: unknown mode $mode" >&2; exit 2 ;; esac
command -v qemu-system-x86_64 >/dev/null || { echo "lab.sh: no qemu-system-x86_64: run scripts/setup.sh" >&2; exit 1; }

X=$(scripts/xen/dom0.sh)
if [ -n "$standin" ]; then
    # The router test's checks against a Linux domU that only forwards (it checks the checks).
    kernel=$X/vmlinuz mem=${mem:-256}
    args="console=hvc0 quiet oxv.net=eth0:$NETLAB_VM_PUB/24,eth1:$NETLAB_GW/24 oxv.gw=$NETLAB_SRV_PUB oxv.forward=1 oxv.stay=1"
    sets+=("STANDIN=1" "TUNNEL_PATTERN=DOMU done")
elif [ "$mode" = linux ]; then
    kernel=${kernel:-$X/vmlinuz}
    mem=${mem:-256}   # Debian's kernel unpacks to ~58 MB
    args=${args:-console=hvc0 quiet oxv.net=eth0:$NETLAB_VM_PUB/24,eth1:$NETLAB_GW/24 oxv.ping=$NETLAB_SRV_PUB,$NETLAB_LAN_HOST oxv.disk=xvda oxv.stay=1}
elif [ "$mode" = qubes ]; then
    # A Qubes-style net VM: QubesDB's uplink, netback vifs as client ports (their gateway 10.137.0.1).
    kernel=${kernel:-build/oxvpn.elf}
    mem=${mem:-64}
    args=${args:---qubesdb --vif-gateway=10.137.0.1 --private-ipv4=$NETLAB_GW/24 --nat}
elif [ "$mode" = qubesdb ]; then
    # No --ipv4: the public address, gateway and resolver come from the QubesDB stand-in.
    kernel=${kernel:-build/oxvpn.elf}
    mem=${mem:-64}
    args=${args:---qubesdb --private-ipv4=$NETLAB_GW/24 --nat}
else
    kernel=${kernel:-build/oxvpn.elf}
    mem=${mem:-64}
    args=${args:---ipv4=$NETLAB_VM_PUB/24 --ipv4-gateway=$NETLAB_SRV_PUB --private-ipv4=$NETLAB_GW/24 --nat}
fi
[ -f "$kernel" ] || { echo "lab.sh: no domU kernel $kernel" >&2; exit 1; }

work=$(mktemp -d /tmp/oxv-xenlab-run.XXXXXX)
qemu_pid=
cleanup() {
    set +e   # a step that fails here must not skip the rest
    if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null; wait "$qemu_pid" 2>/dev/null; fi
    if [ -n "$out" ]; then mkdir -p "$out"; cp "$work/serial.log" "$work/guest.log" "$out/" 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The per-run cpio, unpacked over dom0's: /test/run.sh, /test/env, the domU's kernel, ramdisk and disk,
# the server's config and keys.
t=$work/root/test
mkdir -p "$t"
cp scripts/xen/dom0-test.sh "$t/run.sh"
cp "$kernel" "$t/kernel"
# Symbols for xenctx's report of a stuck vCPU (System.map format); none for a compressed kernel.
nm -n -C "$kernel" 2>/dev/null | grep -E '^[0-9a-f]+ [tTwW] ' > "$t/kernel.map" || true
{
    echo "XEN_MODE=$mode"
    echo "GUEST_KERNEL=/test/kernel"
    echo "GUEST_EXTRA='${args//\'/}'"
    echo "GUEST_MEM=$mem"
    echo "SRV_PUB=$NETLAB_SRV_PUB VM_PUB=$NETLAB_VM_PUB SRV_TUN=$NETLAB_SRV_TUN BEHIND=$NETLAB_BEHIND"
    echo "GW=$NETLAB_GW LAN_HOST=$NETLAB_LAN_HOST PUB_MAC=$NETLAB_PUB_MAC LAN_MAC=$NETLAB_LAN_MAC"
    echo "SIZE_MB=4 TRANSFER_BUDGET=60"
} > "$t/env"
if [ "$mode" = linux ] || [ -n "$standin" ]; then
    cp "$X/domu.cpio" "$t/ramdisk"
    echo "GUEST_RAMDISK=/test/ramdisk" >> "$t/env"
    # Any file will do as the disk: the domU prints its first bytes.
    [ "$disk" = default ] && { printf 'oxvpn xen lab test disk\n' > "$work/disk.img"; truncate -s 4096 "$work/disk.img"; disk=$work/disk.img; }
fi
if [ "$mode" = netback ] || [ "$mode" = qubes ]; then
    # The client domU whose vif has the image as its backend: the lab's Linux PVH domU.
    cp "$X/vmlinuz" "$t/client-kernel"
    cp "$X/domu.cpio" "$t/client-ramdisk"
    echo "CLIENT_KERNEL=/test/client-kernel CLIENT_RAMDISK=/test/client-ramdisk" >> "$t/env"
fi
# --server without --server-dir, or the router test without one: make one (PKI, server config, config disk).
if [ -z "$server_dir" ] && { [ "$mode" = oxvpn ] || [ "$mode" = netback ] || [ "$mode" = qubesdb ] || [ "$mode" = qubes ] || printf '%s\n' "${sets[@]}" | grep -q '^WITH_SERVER=1$'; }; then
    server_dir=$work/server
    scripts/xen/server-dir.sh "$server_dir" || { echo "lab.sh: cannot make the server's files" >&2; exit 1; }
fi
if [ "$disk" = default ]; then disk=${server_dir:+$server_dir/config.img}; fi
if [ -n "$disk" ]; then cp "$disk" "$t/config.img"; echo "GUEST_DISK=/test/config.img" >> "$t/env"; fi
if [ -n "$server_dir" ]; then cp -r "$server_dir/server.conf" "$server_dir/pki" "$t/"; fi
for s in "${sets[@]}"; do
    [[ $s =~ ^[A-Z_]+=.*$ ]] || { echo "lab.sh: --set wants VAR=VALUE, not $s" >&2; exit 2; }
    echo "${s%%=*}='${s#*=}'" >> "$t/env"
done
( cd "$work/root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 ) > "$work/test.cpio"
# Linux takes concatenated cpio archives as one initramfs: the cached dom0 part stays as it is.
cat "$X/dom0.cpio" "$work/test.cpio" > "$work/initrd"

# Xen: serial console (com1), dom0 512 MB, no IOMMU; smap=0 smep=0 or the PV dom0 crashes under -cpu max
# (shared/docs/xen-qubes.md); guest_loglvl=all shows a domU's port-0xe9 debug output in `xl dmesg`. One vCPU
# (XEN_SMP): with two, QEMU's multi-threaded TCG ran slower on this 2-core machine and a Linux domU once
# triple-faulted early. Dom0: the Xen console (hvc0), quiet so that the serial log stays readable.
# spec-ctrl=eager-fpu: Xen switches FPU/SIMD state on every context switch instead of lazily through CR0.TS
# (its default for the AMD-looking `-cpu max`). Lazy switching under QEMU's nested SVM corrupts the vector
# state of whichever domain comes next: with it, dom0's programs died of SIGSEGV, xl failed to XZ-decompress
# the client's kernel or the Linux client domU vanished in 8 of 10 lab boots of test-xen-qubes here (one
# machine, back to back); with eager switching 5 of 5 passed, run alternately with those. XEN_ARGS_EXTRA adds
# more Xen options after these.
started=$(date +%s.%N)
qemu-system-x86_64 -accel tcg -cpu "${LAB_CPU:-max}" -m 2G -smp "${XEN_SMP:-1}" -nographic -no-reboot -monitor none -nodefaults \
    -serial "file:$work/serial.log" \
    -kernel "$X/xen" -append "console=com1 dom0_mem=512M,max:512M dom0-iommu=none smap=0 smep=0 guest_loglvl=all spec-ctrl=eager-fpu ${XEN_ARGS_EXTRA:-}" \
    -initrd "$X/vmlinuz console=hvc0 quiet,$work/initrd" >"$work/qemu.out" 2>&1 &
qemu_pid=$!

# Follow the serial log: XENTEST lines and the domU console as they come (whole lines only).
shown=0 tunnel_at=
follow() {
    local total
    [ -f "$work/serial.log" ] || return 0
    total=$(wc -l < "$work/serial.log" 2>/dev/null || echo 0)
    [ "$total" -gt "$shown" ] || return 0
    sed -n "$((shown + 1)),${total}p" "$work/serial.log" | tr -d '\r' | grep -E "^(XENTEST|GUEST\||XENLAB)" || true
    if [ -z "$tunnel_at" ] && sed -n "$((shown + 1)),${total}p" "$work/serial.log" | grep -q "^XENTEST ok tunnel up"; then
        tunnel_at=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
        echo "XENLAB tunnel up ${tunnel_at} s after starting QEMU (seen on the serial log)"
    fi
    shown=$total
}
end=$(( $(date +%s) + timeout ))
result=timeout
while [ "$(date +%s)" -lt "$end" ]; do
    follow
    if grep -q "^XENTEST done" "$work/serial.log" 2>/dev/null; then result=done; break; fi
    kill -0 "$qemu_pid" 2>/dev/null || { result=exited; break; }
    sleep 0.5
done
# Give dom0 a moment to reboot by itself (QEMU exits), then end QEMU anyway.
for _ in $(seq 20); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.25; done
kill "$qemu_pid" 2>/dev/null || true
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=
follow
wall=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
tr -d '\r' < "$work/serial.log" | sed -n 's/^GUEST| //p' > "$work/guest.log"
ready=$(sed -n 's/^XENLAB xen ready \([0-9.]*\)s.*/\1/p' "$work/serial.log")
echo "XENLAB boot ${result}: QEMU ran ${wall} s (dom0 Xen tools ready ${ready:-?} s after dom0's kernel start)"
case $result in
    done) grep -q "^XENTEST done fails=0" "$work/serial.log" ;;
    timeout) echo "XENLAB FAIL: no 'XENTEST done' within ${timeout} s; serial tail:"; tail -n 30 "$work/serial.log"; exit 1 ;;
    *) echo "XENLAB FAIL: QEMU ended before 'XENTEST done'; serial tail:"; tail -n 30 "$work/serial.log"; cat "$work/qemu.out"; exit 1 ;;
esac

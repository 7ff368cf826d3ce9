#!/usr/bin/env bash
# Namespaced-network test of the two NICs. Topology (all inside namespaces this script creates):
#
#   oxv-net-pub (10.77.0.1/24, dnsmasq in DHCP runs)          oxv-net-lan (192.168.77.2/24)
#        | veth                                                     | veth
#   [br-pub] -- tap-pub ==== QEMU (oxv-net-vm) ==== tap-lan -- [br-lan]
#
# For each machine (`-M pc`: virtio-net-pci, SeaBIOS; `-M q35` with qboot: BARs assigned by the kernel,
# MSI-X; `-M microvm,acpi=off`: virtio-mmio) and each public-side mode (static --ipv4 / DHCPv4 from
# dnsmasq; q35 static only), it boots build/oxvpn.elf and pings the public address from
# oxv-net-pub and the private gateway address (--private-ipv4) from oxv-net-lan. The microvm runs list the
# private NIC first and pick the roles with --service-mac/--private-mac. Bounded; cleans up in a trap.
set -u
cd "$(dirname "$0")/.."
ELF=${ELF:-build/oxvpn.elf}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-60}
ACCEL=${ACCEL:-tcg}
[ -f "$ELF" ] || { echo "test-net: FAIL: $ELF missing (run make image)"; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "test-net: FAIL: needs root (ip netns)"; exit 1; }
ELF=$(realpath "$ELF")
VM=oxv-net-vm PUB=oxv-net-pub LAN=oxv-net-lan
# iputils ping if installed, else busybox's (setup.sh installs busybox).
if command -v ping >/dev/null 2>&1; then PING=ping; else PING="busybox ping"; fi
PUB_MAC=52:54:00:77:00:01 LAN_MAC=52:54:00:77:01:01
tmp=$(mktemp -d /tmp/oxv-net.XXXXXX)
qemu_pid= dnsmasq_pid=

stop_vm() {
    [ -n "$qemu_pid" ] && { kill "$qemu_pid" 2>/dev/null; wait "$qemu_pid" 2>/dev/null; }
    qemu_pid=
    [ -n "$dnsmasq_pid" ] && { kill "$dnsmasq_pid" 2>/dev/null; wait "$dnsmasq_pid" 2>/dev/null; }
    dnsmasq_pid=
}
cleanup() {
    stop_vm
    for ns in $VM $PUB $LAN; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
cleanup_stale() { for ns in $VM $PUB $LAN; do ip netns del "$ns" 2>/dev/null; done; }
cleanup_stale

set -e
for ns in $VM $PUB $LAN; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
for side in pub lan; do
    ip -n $VM link add br-$side type bridge
    ip -n $VM link set br-$side up
    ip -n $VM tuntap add dev tap-$side mode tap
    ip -n $VM link set tap-$side master br-$side up
done
ip link add oxv-net-p0 netns $VM type veth peer name eth0 netns $PUB
ip link add oxv-net-l0 netns $VM type veth peer name eth0 netns $LAN
ip -n $VM link set oxv-net-p0 master br-pub up
ip -n $VM link set oxv-net-l0 master br-lan up
ip -n $PUB addr add 10.77.0.1/24 dev eth0; ip -n $PUB link set eth0 up
ip -n $LAN addr add 192.168.77.2/24 dev eth0; ip -n $LAN link set eth0 up
set +e

if [ "$ACCEL" = kvm ]; then cpu=host; else cpu=max; fi

# start_vm MACHINE ARGS: QEMU inside $VM; the serial log goes to $tmp/serial.log.
start_vm() {
    local machine=$1 args=$2 nic devs
    : > "$tmp/serial.log"
    case $machine in
        pc) nic=virtio-net-pci; devs="-device $nic,netdev=pub,mac=$PUB_MAC,romfile= -device $nic,netdev=lan,mac=$LAN_MAC,romfile=" ;;
        # qboot: BARs assigned by the kernel, INTx left unrouted by the firmware (MSI-X needed).
        q35) nic=virtio-net-pci; devs="-device $nic,netdev=pub,mac=$PUB_MAC,romfile= -device $nic,netdev=lan,mac=$LAN_MAC,romfile="
             [ -f /usr/share/qemu/qboot.rom ] && devs="-bios /usr/share/qemu/qboot.rom $devs" ;;
        # Private NIC first: the role options must override the device order.
        microvm) nic=virtio-net-device; machine="microvm,acpi=off"
                 devs="-global virtio-mmio.force-legacy=false -device $nic,netdev=lan,mac=$LAN_MAC -device $nic,netdev=pub,mac=$PUB_MAC" ;;
    esac
    # shellcheck disable=SC2086
    ip netns exec $VM qemu-system-x86_64 -M "$machine" -accel "$ACCEL" -cpu "$cpu" -m 256M -nodefaults \
        -no-user-config -display none -no-reboot -serial "file:$tmp/serial.log" \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel "$ELF" -append "$args" \
        -netdev tap,id=pub,ifname=tap-pub,script=no,downscript=no \
        -netdev tap,id=lan,ifname=tap-lan,script=no,downscript=no $devs 2>>"$tmp/qemu.err" &
    qemu_pid=$!
}

# wait_log PATTERN: 0 once PATTERN is in the serial log, 1 on timeout or VM exit.
wait_log() {
    local deadline=$(( $(date +%s) + BOOT_TIMEOUT ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        grep -qE "$1" "$tmp/serial.log" 2>/dev/null && return 0
        kill -0 "$qemu_pid" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}

# ping_from NS ADDR: a few tries, as ARP and the first boot poll may take a moment under TCG.
ping_from() {
    local i
    for i in 1 2 3 4 5; do
        ip netns exec "$1" $PING -c 2 -W 2 -w 4 "$2" >/dev/null 2>&1 && return 0
        sleep 1
    done
    return 1
}

# flood NS COUNT: COUNT random Ethernet frames (random bytes after plausible headers: broadcast and
# unicast to the NICs, IPv4/ARP/IPv6/VLAN ethertypes, lengths 14..1514) out of NS's eth0.
flood() {
    ip netns exec "$1" python3 - "$2" "$PUB_MAC" "$LAN_MAC" <<'PY'
import os, random, socket, struct, sys
count, macs = int(sys.argv[1]), [bytes.fromhex(m.replace(":", "")) for m in sys.argv[2:]]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
rng = random.Random(1)
for i in range(count):
    dst = rng.choice(macs + [b"\xff" * 6])
    ethertype = rng.choice([0x0800, 0x0806, 0x86DD, 0x8100, rng.randrange(65536)])
    body = bytearray(os.urandom(rng.randrange(0, 1501)))
    if ethertype == 0x0800 and len(body) >= 20 and rng.random() < 0.7:
        body[0] = 0x45  # keep many past the version check, so deeper layers see garbage too
    s.send(dst + b"\x02\x00\x00\x00\x00\x01" + struct.pack("!H", ethertype) + bytes(body))
PY
}

fail=0
run_case() {
    local machine=$1 mode=$2 args public
    args="--private-ipv4=192.168.77.1/24"
    [ "$machine" = microvm ] && args="$args --service-mac=$PUB_MAC --private-mac=$LAN_MAC"
    if [ "$mode" = static ]; then
        args="$args --ipv4=10.77.0.2/24 --ipv4-gateway=10.77.0.1"
    else
        ip netns exec $PUB dnsmasq --keep-in-foreground --no-daemon --conf-file=/dev/null --no-resolv \
            --no-hosts --port=0 --interface=eth0 --bind-interfaces --dhcp-range=10.77.0.50,10.77.0.60,255.255.255.0,1h \
            --dhcp-option=option:router,10.77.0.1 --dhcp-leasefile="$tmp/leases" --pid-file= \
            --log-facility="$tmp/dnsmasq.log" 2>>"$tmp/dnsmasq.log" &
        dnsmasq_pid=$!
    fi
    start_vm "$machine" "$args"
    local name="$machine/$mode" ok=1
    if ! wait_log "net: ready"; then
        echo "test-net: $name: no 'net: ready' within ${BOOT_TIMEOUT}s"; ok=0
    fi
    if [ $ok -eq 1 ]; then
        grep -qiE "mac=$PUB_MAC role=service" "$tmp/serial.log" && grep -qiE "mac=$LAN_MAC role=private" "$tmp/serial.log" \
            || { echo "test-net: $name: NIC roles not logged as expected"; ok=0; }
    fi
    if [ $ok -eq 1 ]; then
        if [ "$mode" = static ]; then
            public=10.77.0.2
        else
            wait_log "dhcp lease [0-9.]+" || echo "test-net: $name: no DHCP lease logged"
            public=$(grep -oE "dhcp lease [0-9.]+" "$tmp/serial.log" | head -1 | awk '{print $3}')
            case $public in 10.77.0.5[0-9]|10.77.0.60) ;; *) echo "test-net: $name: bad lease '$public'"; ok=0 ;; esac
        fi
    fi
    if [ $ok -eq 1 ]; then
        ping_from $PUB "$public" || { echo "test-net: $name: ping $public from the public side failed"; ok=0; }
        ping_from $LAN 192.168.77.1 || { echo "test-net: $name: ping 192.168.77.1 from the LAN failed"; ok=0; }
    fi
    if [ $ok -eq 1 ] && [ "$machine" = pc ] && [ "$mode" = static ]; then
        # The router's DHCP server, through the private NIC (busybox udhcpc, which configures nothing).
        if ip netns exec $LAN busybox udhcpc -i eth0 -n -q -f -t 3 -T 1 -s /bin/true 2>&1 | grep -q "lease of"; then
            echo "test-net: $name: a LAN host gets a DHCP lease from the private side"
        else
            echo "test-net: $name: no DHCP lease on the LAN"; ok=0
        fi
        # Garbage from both sides must not stop the image.
        flood $PUB 20000; flood $LAN 20000
        if kill -0 "$qemu_pid" 2>/dev/null && ping_from $PUB "$public" && ping_from $LAN 192.168.77.1; then
            echo "test-net: $name: still answering after 40000 random frames"
        else
            echo "test-net: $name: not answering after random frames"; ok=0
        fi
    fi
    if [ $ok -eq 1 ] && [ "$mode" = static ]; then
        # Interrupt delivery: without device interrupts the guest only notices frames at its 100 ms idle
        # backstop, so the average round trip would be tens of milliseconds instead of about one.
        local avg
        avg=$(ip netns exec $PUB $PING -c 5 -W 2 "$public" 2>/dev/null | sed -nE 's#.*= [0-9.]+/([0-9.]+)/.*#\1#p')
        echo "test-net: $name: ping $public average round trip ${avg:-?} ms"
        case $avg in
            [0-9].*|[0-9]|[1-3][0-9].*|[1-3][0-9]) ;;
            *) echo "test-net: $name: round trip not below 40 ms: device interrupts are not waking the guest"; ok=0 ;;
        esac
    fi
    if [ $ok -eq 1 ] && [ "$mode" = static ]; then
        # Idle cost: QEMU's CPU time over 10 quiet seconds (`ip netns exec` execs QEMU in place, so the pid
        # is QEMU's). A busy-polling guest costs ~100%; halting until an interrupt or deadline, ~0.
        local hz t0 t1 pct
        hz=$(getconf CLK_TCK)
        t0=$(awk '{print $14 + $15}' "/proc/$qemu_pid/stat" 2>/dev/null || echo 0)
        sleep 10
        t1=$(awk '{print $14 + $15}' "/proc/$qemu_pid/stat" 2>/dev/null || echo 0)
        pct=$(( (t1 - t0) * 1000 / hz / 10 ))
        echo "test-net: $name: idle QEMU CPU over 10 s: $((pct / 10)).$((pct % 10))%"
        [ $pct -le 200 ] || { echo "test-net: $name: idle CPU above 20%: the guest is not halting"; ok=0; }
    fi
    if [ $ok -eq 1 ]; then
        echo "test-net: $name: public $public and private gateway 192.168.77.1 answer pings"
    else
        echo "test-net: $name: serial log:"; tail -25 "$tmp/serial.log" | sed 's/^/    /'; fail=1
    fi
    stop_vm
    ip -n $PUB neigh flush dev eth0 2>/dev/null; ip -n $LAN neigh flush dev eth0 2>/dev/null
}

for machine in pc q35 microvm; do
    for mode in static dhcp; do
        [ $machine = q35 ] && [ $mode = dhcp ] && continue  # q35 adds the firmware, not the DHCP path
        run_case $machine $mode
    done
done
if [ $fail -eq 0 ]; then echo "test-net: PASS"; else echo "test-net: FAIL"; fi
exit $fail

#!/usr/bin/env bash
# The namespaced test network of the demo (scripts/demo.sh) and the end-to-end test (scripts/test-e2e.sh).
# Source it, then call the netlab_* functions; every name it creates starts with $NETLAB (oxv-demo, or
# oxv-e2e-PID so that runs of the test at the same time do not meet; netlab_up removes the namespaces of
# runs whose process is gone).
#
#   $NETLAB-behind  10.9.0.2    host behind the server: HTTP (python3 -m http.server :8080), TCP sink :5001
#        | veth 10.9.0.0/24
#   $NETLAB-srv     10.60.0.1   Debian's openvpn 2.6 server (tls-crypt-v2, AES-256-GCM, topology subnet,
#        |                      tunnel 10.8.0.0/24, server 10.8.0.1, push route 10.9.0.0/24, push DNS
#        |                      10.8.0.1 where dnsmasq answers behind.oxvpn.test = 10.9.0.2; optionally
#        |                      dnsmasq on 10.60.0.1 for public DHCP and vpn.oxvpn.test = 10.60.0.1)
#        | veth
#   $NETLAB-vm: [br-pub] -- tap-pub ==== QEMU: build/oxvpn.elf ==== tap-lan -- [br-lan]
#                                       public 10.60.0.2/24        private gateway 192.168.60.1/24
#                                                                      | veth        | veth
#                                              $NETLAB-lan 192.168.60.250 (static)   $NETLAB-dhcp (udhcpc)
#
# The PKI is throwaway (scripts/interop/make-pki.sh), the client config is a standard inline .ovpn
# (scripts/interop/client.sh) and reaches the image as a config disk made by build/config-disk.
# IPv6 is off in every namespace so that a capture on br-pub sees only what the image and the server send.

NETLAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NETLAB=${NETLAB:-oxv-lab}
NETLAB_SRV_PUB=10.60.0.1
NETLAB_VM_PUB=10.60.0.2
NETLAB_SRV_TUN=10.8.0.1
NETLAB_BEHIND=10.9.0.2
NETLAB_GW=192.168.60.1
NETLAB_LAN_HOST=192.168.60.250
NETLAB_PUB_MAC=52:54:00:60:00:02
NETLAB_LAN_MAC=52:54:00:60:01:01
NETLAB_CN="oxvpn interop client"
netlab_pids=()

# netlab_init WORKDIR: names and the work directory (PKI, configs, logs, served files).
netlab_init() {
    NETLAB_WORK=$1
    mkdir -p "$NETLAB_WORK/www"
    NS_SRV=$NETLAB-srv NS_BEHIND=$NETLAB-behind NS_VM=$NETLAB-vm NS_LAN=$NETLAB-lan NS_DHCP=$NETLAB-dhcp
    NETLAB_SERIAL=$NETLAB_WORK/serial.log
}

netlab_namespaces() { echo "$NS_SRV $NS_BEHIND $NS_VM $NS_LAN $NS_DHCP"; }

# netlab_in NS CMD...: runs CMD in namespace NS.
netlab_in() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# netlab_up: namespaces, links, addresses, the PKI and the server's and client's configs.
netlab_up() {
    local ns
    netlab_down_namespaces
    for ns in $(netlab_namespaces); do
        ip netns add "$ns" || return 1
        ip -n "$ns" link set lo up
        netlab_in "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    for side in pub lan; do
        ip -n "$NS_VM" link add br-$side type bridge
        ip -n "$NS_VM" link set br-$side up
        ip -n "$NS_VM" tuntap add dev tap-$side mode tap
        ip -n "$NS_VM" link set tap-$side master br-$side up
    done
    # public side: server <-> br-pub
    ip link add pub0 netns "$NS_VM" type veth peer name eth0 netns "$NS_SRV"
    ip -n "$NS_VM" link set pub0 master br-pub up
    ip -n "$NS_SRV" addr add $NETLAB_SRV_PUB/24 dev eth0
    ip -n "$NS_SRV" link set eth0 up
    # behind the server
    ip link add behind0 netns "$NS_SRV" type veth peer name eth0 netns "$NS_BEHIND"
    ip -n "$NS_SRV" addr add 10.9.0.1/24 dev behind0
    ip -n "$NS_SRV" link set behind0 up
    ip -n "$NS_BEHIND" addr add $NETLAB_BEHIND/24 dev eth0
    ip -n "$NS_BEHIND" link set eth0 up
    ip -n "$NS_BEHIND" route add default via 10.9.0.1
    netlab_in "$NS_SRV" sysctl -qw net.ipv4.ip_forward=1
    # private side: LAN hosts <-> br-lan
    ip link add lan0 netns "$NS_VM" type veth peer name eth0 netns "$NS_LAN"
    ip -n "$NS_VM" link set lan0 master br-lan up
    ip -n "$NS_LAN" addr add $NETLAB_LAN_HOST/24 dev eth0
    ip -n "$NS_LAN" link set eth0 up
    ip -n "$NS_LAN" route add default via $NETLAB_GW
    # `ip netns exec` shows this file as /etc/resolv.conf: the LAN host resolves through the gateway.
    mkdir -p "/etc/netns/$NS_LAN"
    echo "nameserver $NETLAB_GW" > "/etc/netns/$NS_LAN/resolv.conf"
    ip link add dhcp0 netns "$NS_VM" type veth peer name eth0 netns "$NS_DHCP"
    ip -n "$NS_VM" link set dhcp0 master br-lan up
    ip -n "$NS_DHCP" link set eth0 up

    "$NETLAB_ROOT/scripts/interop/make-pki.sh" "$NETLAB_WORK/pki" || return 1
    NETLAB_DISK=$(netlab_disk lab) || return 1
    # For --no-nat: the server routes the LAN into the tunnel and iroutes it to this client.
    mkdir -p "$NETLAB_WORK/ccd"
    echo "iroute 192.168.60.0 255.255.255.0" > "$NETLAB_WORK/ccd/$NETLAB_CN"
    cp "$NETLAB_WORK/ccd/$NETLAB_CN" "$NETLAB_WORK/ccd/${NETLAB_CN// /_}"
}

# netlab_disk NAME [CLIENT LINE...]: a client .ovpn (tls-crypt-v2, AES-256-GCM, everything inline, extra
# lines appended; `remote $NETLAB_REMOTE`, default the server's address) made into a config disk with
# build/config-disk; prints the disk's path.
netlab_disk() {
    local name=$1 ovpn disk=$NETLAB_WORK/$1.img
    shift
    ovpn=$("$NETLAB_ROOT/scripts/interop/client.sh" "$NETLAB_WORK/pki" "$NETLAB_WORK" "$name" \
        "${NETLAB_REMOTE:-$NETLAB_SRV_PUB}" AES-256-GCM v2 "$@") || return 1
    "$NETLAB_ROOT/build/config-disk" make "$ovpn" -o "$disk" >"$NETLAB_WORK/$name.disk.log" 2>&1 \
        || { cat "$NETLAB_WORK/$name.disk.log" >&2; return 1; }
    echo "$disk"
}

# netlab_bg NAME CMD...: starts CMD in the background, output in $NETLAB_WORK/NAME.log, pid remembered.
netlab_bg() {
    local name=$1; shift
    "$@" >"$NETLAB_WORK/$name.log" 2>&1 &
    netlab_pids+=($!)
    eval "NETLAB_PID_${name//-/_}=$!"
}

# netlab_server_start [SERVER LINE...]: the openvpn 2.6 server (scripts/interop/server.sh: tls-crypt-v2,
# AES-256-GCM, topology subnet 10.8.0.0/24, pushes route 10.9.0.0/24 and DNS 10.8.0.1; the LAN routed to
# the client through client-config-dir for --no-nat) plus extra lines; waits until it is ready.
netlab_server_start() {
    local conf i
    conf=$("$NETLAB_ROOT/scripts/interop/server.sh" "$NETLAB_WORK/pki" "$NETLAB_WORK" lab $NETLAB_SRV_PUB \
        AES-256-GCM server v2 "client-config-dir $NETLAB_WORK/ccd" "route 192.168.60.0 255.255.255.0" "$@") \
        || return 1
    [ -f "$NETLAB_WORK/openvpn.log" ] && cat "$NETLAB_WORK/openvpn.log" >> "$NETLAB_WORK/openvpn.old.log"
    netlab_bg openvpn ip netns exec "$NS_SRV" openvpn --config "$conf"
    for i in $(seq 100); do
        grep -q "Initialization Sequence Completed" "$NETLAB_WORK/openvpn.log" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "netlab: openvpn server did not start"; tail -5 "$NETLAB_WORK/openvpn.log"; return 1
}

# netlab_server_stop: stops the openvpn server.
netlab_server_stop() {
    kill "$NETLAB_PID_openvpn" 2>/dev/null
    wait "$NETLAB_PID_openvpn" 2>/dev/null
}

# netlab_services: the server (OpenVPN, then dnsmasq on its tunnel address) and the host behind it.
netlab_services() {
    local i
    netlab_server_start || return 1
    netlab_bg dnsmasq ip netns exec "$NS_SRV" dnsmasq --keep-in-foreground --no-resolv --no-hosts --pid-file= \
        --listen-address=$NETLAB_SRV_TUN --bind-dynamic --address=/behind.oxvpn.test/$NETLAB_BEHIND \
        --log-queries --log-facility=-
    netlab_bg http ip netns exec "$NS_BEHIND" python3 -m http.server 8080 --bind $NETLAB_BEHIND --directory "$NETLAB_WORK/www"
    for i in $(seq 50); do
        netlab_in "$NS_BEHIND" bash -c "exec 3<>/dev/tcp/$NETLAB_BEHIND/8080" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "netlab: http server behind the server did not start"; return 1
}

# netlab_public_dns: dnsmasq on the server's public address: DHCP for the public side (router and DNS
# server $NETLAB_SRV_PUB) and the name vpn.oxvpn.test = $NETLAB_SRV_PUB, for `remote` by host name.
netlab_public_dns() {
    netlab_bg pubdns ip netns exec "$NS_SRV" dnsmasq --keep-in-foreground --no-resolv --no-hosts --pid-file= \
        --listen-address=$NETLAB_SRV_PUB --bind-dynamic --address=/vpn.oxvpn.test/$NETLAB_SRV_PUB \
        --dhcp-range=10.60.0.100,10.60.0.150,1h --dhcp-option=option:router,$NETLAB_SRV_PUB \
        --dhcp-option=option:dns-server,$NETLAB_SRV_PUB --dhcp-leasefile="$NETLAB_WORK/leases" \
        --log-queries --log-dhcp --log-facility=-
}

# netlab_vm_start "BOOT ARGS" [DISK]: boots build/oxvpn.elf in $NS_VM with the config disk (default: the one
# netlab_up made); console in $NETLAB_SERIAL, QEMU's pid in $NETLAB_QEMU_PID. The public side is static
# ($NETLAB_VM_PUB) unless NETLAB_PUBLIC_ARGS says otherwise (e.g. --dhcp).
netlab_vm_start() {
    local disk=${2:-$NETLAB_DISK}
    local public=${NETLAB_PUBLIC_ARGS:---ipv4=$NETLAB_VM_PUB/24 --ipv4-gateway=$NETLAB_SRV_PUB}
    local args="$public --private-ipv4=$NETLAB_GW/24 $1"
    : > "$NETLAB_SERIAL"
    NETLAB_VM_STARTED=$(date +%s.%N)
    # PCI devices on pc/q35; virtio-mmio on microvm (qemu.sh lists them on the command line).
    local net=virtio-net-pci blk=virtio-blk-pci rom=,romfile=
    if [ "${MACHINE:-q35}" = microvm ]; then net=virtio-net-device blk=virtio-blk-device rom=; fi
    ip netns exec "$NS_VM" "$NETLAB_ROOT/scripts/qemu.sh" -M "${MACHINE:-q35}" -a "$args" -- \
        -netdev tap,id=pub,ifname=tap-pub,script=no,downscript=no \
        -netdev tap,id=lan,ifname=tap-lan,script=no,downscript=no \
        -device $net,netdev=pub,mac=$NETLAB_PUB_MAC$rom \
        -device $net,netdev=lan,mac=$NETLAB_LAN_MAC$rom \
        -drive "file=$disk,if=none,format=raw,id=cfg,readonly=on" -device $blk,drive=cfg \
        >"$NETLAB_SERIAL" 2>"$NETLAB_WORK/qemu.err" &
    NETLAB_QEMU_PID=$!
    netlab_pids+=($NETLAB_QEMU_PID)
}

# netlab_wait_tunnel SECONDS: waits for `Initialization Sequence Completed` on the console; prints the
# seconds from starting QEMU. Fails if QEMU exits or time runs out.
netlab_wait_tunnel() {
    local limit=$1 start now
    start=$(date +%s)
    while :; do
        if grep -q "Initialization Sequence Completed" "$NETLAB_SERIAL"; then
            now=$(date +%s.%N)
            awk -v a="$NETLAB_VM_STARTED" -v b="$now" 'BEGIN { printf "%.1f\n", b - a }'
            return 0
        fi
        kill -0 "$NETLAB_QEMU_PID" 2>/dev/null || return 1
        [ $(( $(date +%s) - start )) -ge "$limit" ] && return 1
        sleep 0.2
    done
}

# netlab_wait_console PATTERN COUNT SECONDS: waits until the console holds COUNT lines matching PATTERN.
netlab_wait_console() {
    local pattern=$1 count=$2 limit=$3 start
    start=$(date +%s)
    while [ "$(grep -c -- "$pattern" "$NETLAB_SERIAL")" -lt "$count" ]; do
        [ $(( $(date +%s) - start )) -ge "$limit" ] && return 1
        sleep 0.2
    done
}

# netlab_vm_wait_exit SECONDS: waits for QEMU to leave; its exit status in $NETLAB_VM_STATUS ("running" if it
# did not). Not in a $(...) subshell: only this shell can wait for QEMU.
netlab_vm_wait_exit() {
    local limit=$1 start
    start=$(date +%s)
    NETLAB_VM_STATUS=running
    while kill -0 "$NETLAB_QEMU_PID" 2>/dev/null; do
        [ $(( $(date +%s) - start )) -ge "$limit" ] && return 1
        sleep 0.2
    done
    wait "$NETLAB_QEMU_PID"; NETLAB_VM_STATUS=$?
    NETLAB_QEMU_PID=
}

# netlab_vm_stop: stops QEMU (started by netlab_vm_start).
netlab_vm_stop() {
    if [ -n "${NETLAB_QEMU_PID:-}" ]; then
        kill "$NETLAB_QEMU_PID" 2>/dev/null
        wait "$NETLAB_QEMU_PID" 2>/dev/null
        NETLAB_QEMU_PID=
    fi
}

netlab_down_namespaces() {
    local ns pid
    for ns in $(netlab_namespaces); do ip netns del "$ns" 2>/dev/null; done
    # Leftovers of killed runs: $NETLAB is BASE-PID, and PID no longer runs.
    if [[ $NETLAB =~ ^(.*)-[0-9]+$ ]]; then
        for ns in $(ip netns list | awk '{ print $1 }' | grep -E "^${BASH_REMATCH[1]}-[0-9]+-[a-z]+$"); do
            pid=${ns#"${BASH_REMATCH[1]}"-}; pid=${pid%%-*}
            kill -0 "$pid" 2>/dev/null || { ip netns del "$ns" 2>/dev/null; rm -rf "/etc/netns/$ns"; }
        done
    fi
    rm -rf "/etc/netns/$NS_LAN"
    return 0
}

# netlab_down: stops everything netlab started and deletes its namespaces.
netlab_down() {
    local pid
    for pid in "${netlab_pids[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${netlab_pids[@]}"; do wait "$pid" 2>/dev/null; done
    netlab_pids=()
    netlab_down_namespaces
}

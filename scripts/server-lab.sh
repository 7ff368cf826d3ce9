#!/usr/bin/env bash
# The namespaced network of the server test (scripts/test-server.sh) and demo (scripts/demo-server.sh).
# Source it, then call the sl_* functions. Every namespace is named $SL-NAME (SL=oxs-PID for the test, so
# runs at the same time never meet; sl_up removes the namespaces of runs whose process is gone).
#
#   $SL-swl: bridge br-srv (the "switch"), 192.0.2.0/24, no address of its own
#     |- server   192.0.2.1  SERVER=openvpn: namespace $SL-srv, Debian's openvpn 2.6 (one UDP and one TCP
#     |                      process, tunnels 10.77.0.0/24 and 10.78.0.0/24; both bound to 192.0.2.1:1194)
#     |                      SERVER=image: build/oxvpn.elf in QEMU on tap-s1, one server with both listeners,
#     |                      tunnel 10.77.0.0/24
#     |- server2  192.0.2.2  a second server with `max-clients 2` (openvpn: a third process in $SL-srv;
#     |                      image: a second QEMU on tap-s2), tunnel 10.79.0.0/24
#     |- clients  192.0.2.(10+i)  one namespace each ($SL-c1 ...), Debian's openvpn client or ovpn-ping
#     |- probe    192.0.2.240  scripts/server-probe.py (spoofed resets, cookie checks)
#     `- inet     192.0.2.250  the "internet": HTTP server :8080, iperf3 server; clients reach it through
#                              the tunnel (the server pushes a host route to it) and the server's NAT
#
#   With SL_PRIVATE=1 (off by default): a private network behind the main server, the remote-worker case.
#   $SL-swl: bridge br-lan, 192.168.77.0/24, routed (no NAT) to and from the main server's tunnel
#     |- server   192.168.77.1  SERVER=openvpn: veth lan0 in $SL-srv (ip_forward: Linux routes tun0 <-> lan0)
#     |                         SERVER=image: the main server's second NIC on tap-l1, boot argument
#     |                         --private-ipv4=192.168.77.1/24
#     `- lan      192.168.77.10 namespace $SL-lan: HTTP server :8080 (sl_lan_services), route to the tunnel
#                               10.77.0.0/24 via 192.168.77.1
#
# The PKI, profiles and server configs come from build/ovpn-keys (pki, profile, server-config).

SL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SL=${SL:-oxs-lab}
SERVER=${SERVER:-image}
SL_SRV_PUB=192.0.2.1
SL_SRV2_PUB=192.0.2.2
SL_PROBE=192.0.2.240
SL_INET=192.0.2.250
SL_PORT=1194
SL_NET_UDP=10.77.0        # tunnel of the main server (and of its TCP listener in image mode)
SL_NET_TCP=10.78.0        # openvpn mode only: the separate TCP server process
SL_NET_SMALL=10.79.0      # the max-clients 2 server
SL_SRV_MAC1=52:54:00:00:02:01
SL_SRV_MAC2=52:54:00:00:02:02
# SL_PRIVATE=1: the private network (br-lan) behind the main server.
SL_PRIVATE=${SL_PRIVATE:-0}
SL_LAN_NET=192.168.77     # /24
SL_LAN_GW=$SL_LAN_NET.1   # the main server's private address
SL_LAN=$SL_LAN_NET.10     # the LAN host
SL_SRV_MAC_LAN=52:54:00:00:02:11
# Image mode: the listener lines added to the server config (OpenVPN 2.7 multi-socket syntax).
SL_IMAGE_LISTEN=${SL_IMAGE_LISTEN:-"local $SL_SRV_PUB $SL_PORT udp
local $SL_SRV_PUB $SL_PORT tcp"}
SL_IMAGE_ARGS=${SL_IMAGE_ARGS:-}          # extra boot arguments for the server image (e.g. --verb=4)
sl_pids=()
sl_namespaces=()
sl_port_index=0

sl_init() { # WORKDIR
    SL_WORK=$1
    mkdir -p "$SL_WORK/www" "$SL_WORK/logs"
    SL_SWL=$SL-swl SL_SRV=$SL-srv SL_INET_NS=$SL-inet SL_PROBE_NS=$SL-probe SL_LAN_NS=$SL-lan
}

sl_ns() { echo "$SL-$1"; }
sl_in() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# sl_bg NAME CMD...: CMD in the background, output in $SL_WORK/logs/NAME.log; pid in SL_PID_NAME.
sl_bg() {
    local name=$1; shift
    "$@" >"$SL_WORK/logs/$name.log" 2>&1 &
    sl_pids+=($!)
    eval "SL_PID_${name//[-.]/_}=$!"
}
sl_pid() { local v="SL_PID_${1//[-.]/_}"; echo "${!v:-}"; }
sl_stop() { # NAME: stops what sl_bg NAME started
    local pid; pid=$(sl_pid "$1")
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    eval "SL_PID_${1//[-.]/_}="
}

sl_new_ns() { # NAME
    local ns=$SL-$1
    ip netns add "$ns" || return 1
    sl_namespaces+=("$ns")
    ip -n "$ns" link set lo up
    sl_in "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# sl_host NAME IP [BRIDGE]: a namespace with eth0 (IP/24) on the switch (bridge br-srv, or BRIDGE).
sl_host() {
    local name=$1 ip=$2 ns=$SL-$1 bridge=${3:-br-srv} port
    sl_new_ns "$name" || return 1
    sl_port_index=$((sl_port_index + 1)); port=p$sl_port_index
    ip link add "$port" netns "$SL_SWL" type veth peer name eth0 netns "$ns" || return 1
    ip -n "$SL_SWL" link set "$port" master "$bridge" up
    ip -n "$ns" addr add "$ip/24" dev eth0
    ip -n "$ns" link set eth0 up
}

sl_up() {
    sl_down_namespaces
    sl_new_ns swl || return 1
    ip -n "$SL_SWL" link add br-srv type bridge
    ip -n "$SL_SWL" link set br-srv up
    sl_host inet $SL_INET || return 1
    sl_host probe $SL_PROBE || return 1
    if [ "$SERVER" = openvpn ]; then
        sl_host srv $SL_SRV_PUB || return 1
        ip -n "$SL_SRV" addr add $SL_SRV2_PUB/24 dev eth0
        sl_in "$SL_SRV" sysctl -qw net.ipv4.ip_forward=1
    else
        for i in 1 2; do
            ip -n "$SL_SWL" tuntap add dev tap-s$i mode tap
            ip -n "$SL_SWL" link set tap-s$i master br-srv up
        done
    fi
    [ "$SL_PRIVATE" = 1 ] || return 0
    # The private network: bridge br-lan, the LAN host, and the main server's private side on it.
    ip -n "$SL_SWL" link add br-lan type bridge
    ip -n "$SL_SWL" link set br-lan up
    sl_host lan $SL_LAN br-lan || return 1
    ip -n "$SL_LAN_NS" route add $SL_NET_UDP.0/24 via $SL_LAN_GW || return 1
    if [ "$SERVER" = openvpn ]; then
        ip link add lan-srv netns "$SL_SWL" type veth peer name lan0 netns "$SL_SRV" || return 1
        ip -n "$SL_SWL" link set lan-srv master br-lan up
        ip -n "$SL_SRV" addr add $SL_LAN_GW/24 dev lan0
        ip -n "$SL_SRV" link set lan0 up
    else
        ip -n "$SL_SWL" tuntap add dev tap-l1 mode tap
        ip -n "$SL_SWL" link set tap-l1 master br-lan up
    fi
}

# sl_inet_services: HTTP (python3 -m http.server, it logs each client's address) and iperf3 on the inet host.
sl_inet_services() {
    local i
    sl_bg http ip netns exec "$SL_INET_NS" python3 -m http.server 8080 --bind $SL_INET --directory "$SL_WORK/www"
    command -v iperf3 >/dev/null && sl_bg iperf3 ip netns exec "$SL_INET_NS" iperf3 -s -B $SL_INET
    for i in $(seq 50); do
        sl_in "$SL_INET_NS" bash -c "exec 3<>/dev/tcp/$SL_INET/8080" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "server-lab: http server on the inet host did not start"; return 1
}

# sl_lan_services: with SL_PRIVATE=1, HTTP on the LAN host (:8080, files in $SL_WORK/www-lan, log
# logs/http-lan.log with each client's address: the tunnel address, since nothing NATs on the way).
sl_lan_services() {
    local i
    mkdir -p "$SL_WORK/www-lan"
    sl_bg http-lan ip netns exec "$SL_LAN_NS" python3 -m http.server 8080 --bind $SL_LAN --directory "$SL_WORK/www-lan"
    for i in $(seq 50); do
        sl_in "$SL_LAN_NS" bash -c "exec 3<>/dev/tcp/$SL_LAN/8080" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "server-lab: http server on the LAN host did not start"; return 1
}

# sl_nat: in openvpn mode, masquerade tunnel traffic leaving the server's public side (nft or iptables).
# Returns 1 if neither is installed (then inet routes the tunnel networks back instead: no NAT checked).
sl_nat() {
    if command -v nft >/dev/null; then
        sl_in "$SL_SRV" nft -f - <<EOF
table ip oxs {
    chain post {
        type nat hook postrouting priority 100; policy accept;
        oifname "eth0" ip saddr 10.0.0.0/8 masquerade
    }
}
EOF
        return
    elif command -v iptables >/dev/null; then
        sl_in "$SL_SRV" iptables -t nat -A POSTROUTING -o eth0 -s 10.0.0.0/8 -j MASQUERADE
        return
    fi
    ip -n "$SL_INET_NS" route add 10.77.0.0/16 via $SL_SRV_PUB
    return 1
}

# --- keys and configs (build/ovpn-keys) -------------------------------------------------------------
SL_KEYS() { "$SL_ROOT/build/ovpn-keys" "$@"; }

# sl_pki: the PKI in $SL_WORK/pki with the server certificate, and a second, unrelated PKI in pki-other
# (wrong CA, wrong tls-crypt-v2 server key).
sl_pki() {
    ( cd "$SL_WORK" && SL_KEYS pki init pki && SL_KEYS pki server server --pki pki &&
      SL_KEYS pki init pki-other --cn "other CA" && SL_KEYS pki server server --pki pki-other ) \
        >"$SL_WORK/logs/pki.log" 2>&1
}

# sl_server_conf NAME PROTO SERVERIP NET [LINE...]: an ovpn-keys server config plus lines; prints its path.
sl_server_conf() {
    local name=$1 proto=$2 ip=$3 net=$4 conf=$SL_WORK/$1.conf line
    shift 4
    SL_KEYS server-config --pki "$SL_WORK/pki" --name server --proto "$proto" --port $SL_PORT \
        --subnet "$net.0/24" -o "$conf" --force >>"$SL_WORK/logs/pki.log" 2>&1 || return 1
    {
        echo "# added by server-lab.sh"
        echo "client-to-client"
        echo "push \"route $SL_INET 255.255.255.255\""
        for line in "$@"; do echo "$line"; done
    } >> "$conf"
    echo "$conf"
}

# sl_profile NAME PROTO SERVERIP [LINE...]: a client profile from ovpn-keys plus lines; prints its path.
sl_profile() {
    local name=$1 proto=$2 ip=$3 out=$SL_WORK/$1.ovpn line
    shift 3
    SL_KEYS profile "$name" --pki "$SL_WORK/pki" --remote "$ip" $SL_PORT "$proto" -o "$out" --force \
        >>"$SL_WORK/logs/pki.log" 2>&1 || return 1
    {
        echo "connect-retry 1 2"
        [ "$proto" = udp ] && echo "explicit-exit-notify 1"
        for line in "$@"; do echo "$line"; done
    } >> "$out"
    echo "$out"
}

# sl_swap_block FILE TAG NEWCONTENTFILE: replaces <TAG>...</TAG> in FILE with the contents of the new file.
sl_swap_block() {
    python3 - "$1" "$2" "$3" <<'EOF'
import re, sys
path, tag, new = sys.argv[1:]
text = open(path).read()
body = open(new).read().strip()
text, n = re.subn(rf"<{tag}>.*?</{tag}>", lambda m: f"<{tag}>\n{body}\n</{tag}>", text, flags=re.S)
assert n == 1, f"no <{tag}> block in {path}"
open(path, "w").write(text)
EOF
}

# --- the server under test -----------------------------------------------------------------------------
# sl_openvpn_server NAME CONF: Debian's openvpn with CONF in $SL_SRV; waits until it is ready.
sl_openvpn_server() {
    local name=$1 conf=$2 i
    sl_bg "$name" ip netns exec "$SL_SRV" openvpn --config "$conf" --writepid "$SL_WORK/$name.pid"
    for i in $(seq 100); do
        grep -q "Initialization Sequence Completed" "$SL_WORK/logs/$name.log" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "server-lab: openvpn server $name did not start"; tail -5 "$SL_WORK/logs/$name.log"; return 1
}

# sl_image_disk CONF DISK: the config disk for the server image. build/config-disk first; while it still
# refuses server configs, the raw disk format by hand (config text, crl-verify inlined, NUL-padded to
# 512 bytes), so that the image itself says what it makes of the config.
sl_image_disk() {
    local conf=$1 disk=$2
    "$SL_ROOT/build/config-disk" make "$conf" -o "$disk" >"$disk.log" 2>&1 && return 0
    python3 - "$conf" "$disk" <<'EOF'
import re, sys
conf, disk = sys.argv[1:]
out = []
for line in open(conf).read().splitlines():
    m = re.match(r"\s*crl-verify\s+(\S+)\s*$", line)
    if m:
        out.append("<crl-verify>\n" + open(m.group(1)).read().strip() + "\n</crl-verify>")
    else:
        out.append(line)
data = ("\n".join(out) + "\n").encode()
data += b"\0" * (-len(data) % 512)
open(disk, "wb").write(data)
EOF
}

# sl_image_server NAME N CONF IP: boots build/oxvpn.elf as a server on tap-sN with a disk made from CONF;
# console in $SL_WORK/logs/NAME.log. Does not wait (sl_wait_log the log for the ready line). With
# SL_PRIVATE=1 the main server (N=1) gets a second NIC on tap-l1 (br-lan) and --private-ipv4.
sl_image_server() {
    local name=$1 n=$2 conf=$3 ip=$4 mac disk=$SL_WORK/$1.img
    mac=$SL_SRV_MAC1; [ "$n" = 2 ] && mac=$SL_SRV_MAC2
    sl_image_disk "$conf" "$disk" || return 1
    local netdev=virtio-net-pci blk=virtio-blk-pci rom=,romfile=
    if [ "${MACHINE:-q35}" = microvm ]; then netdev=virtio-net-device blk=virtio-blk-device rom=; fi
    local private_args= private_nic=()
    if [ "$SL_PRIVATE" = 1 ] && [ "$n" = 1 ]; then
        private_args="--private-ipv4=$SL_LAN_GW/24"
        private_nic=(-netdev tap,id=lan,ifname=tap-l1,script=no,downscript=no
                     -device $netdev,netdev=lan,mac=$SL_SRV_MAC_LAN$rom)
    fi
    sl_bg "$name" ip netns exec "$SL_SWL" "$SL_ROOT/scripts/qemu.sh" -M "${MACHINE:-q35}" \
        -a "--ipv4=$ip/24 --ipv4-gateway=$SL_INET $private_args $SL_IMAGE_ARGS" -- \
        -netdev tap,id=pub,ifname=tap-s$n,script=no,downscript=no \
        -device $netdev,netdev=pub,mac=$mac$rom \
        "${private_nic[@]}" \
        -drive "file=$disk,if=none,format=raw,id=cfg,readonly=on" -device $blk,drive=cfg
}

# --- clients -------------------------------------------------------------------------------------------
# sl_client NAME PROFILE [ARG...]: Debian's openvpn client in namespace $SL-NAME (made if missing, address
# SL_CLIENT_IP or 192.0.2.(10+N) for NAME cN); log in logs/NAME.log.
sl_client() {
    local name=$1 profile=$2 ns=$SL-$1
    shift 2
    sl_stop "$name"
    : > "$SL_WORK/logs/$name.log"
    sl_bg "$name" ip netns exec "$ns" openvpn --config "$profile" "$@"
}

# sl_wait_log FILE PATTERN SECONDS [COUNT]: waits until FILE holds COUNT (1) lines matching PATTERN.
sl_wait_log() {
    local file=$1 pattern=$2 limit=$3 count=${4:-1} start
    start=$(date +%s)
    while [ "$(grep -cE -- "$pattern" "$file" 2>/dev/null)" -lt "$count" ]; do
        [ $(( $(date +%s) - start )) -ge "$limit" ] && return 1
        sleep 0.2
    done
}

# sl_tun_addr NAME: the IPv4 address of tun0 in $SL-NAME.
sl_tun_addr() { ip -n "$SL-$1" -4 -o addr show dev tun0 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }'; }

# sl_ping NS DEST [COUNT]: COUNT (3) pings; succeeds if one reply came back.
sl_ping() {
    timeout 20 ip netns exec "$1" busybox ping -c "${3:-3}" -i 0.3 -W 2 "$2" 2>&1 | grep -qE " [1-9][0-9]* packets received"
}

sl_down_namespaces() {
    local ns pid
    for ns in "${sl_namespaces[@]}"; do ip netns del "$ns" 2>/dev/null; done
    sl_namespaces=()
    # Leftovers of killed runs: $SL is BASE-PID, and PID no longer runs.
    if [[ $SL =~ ^(.*)-[0-9]+$ ]]; then
        for ns in $(ip netns list | awk '{ print $1 }' | grep -E "^${BASH_REMATCH[1]}-[0-9]+-[a-z0-9]+$"); do
            pid=${ns#"${BASH_REMATCH[1]}"-}; pid=${pid%%-*}
            kill -0 "$pid" 2>/dev/null || ip netns del "$ns" 2>/dev/null
        done
    fi
    return 0
}

sl_down() {
    local pid
    for pid in "${sl_pids[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${sl_pids[@]}"; do wait "$pid" 2>/dev/null; done
    sl_pids=()
    sl_down_namespaces
}

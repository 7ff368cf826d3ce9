#!/usr/bin/env bash
# Qubes-style client ports under QEMU: the image with the service NIC and three client NICs (one tap and one
# client namespace each, as Qubes gives each client VM one vif), on the namespaced OpenVPN network of
# scripts/netlab.sh. One boot; one result line per assertion:
#   each client reaches the host behind the server through the tunnel (ping + an HTTP fetch), NATed to the
#   tunnel address
#   client B's <qubes-firewall> rules from the config disk: port 8081 dropped by a rule, 8082 by its
#   policy=drop, 8080 accepted (client A, without rules, reaches all three)
#   a spoofed source from client A is dropped, and the image's `clients: spoofed_dropped=N` line says so
#   clients cannot reach each other
#   the virtual DNS (10.139.1.1) answers through the tunnel: dnsmasq behind the server logs the query
#   with the OpenVPN server stopped, nothing leaves the public bridge but OpenVPN packets (tcpdump)
# Bounded (every step has a timeout); cleans up in a trap. Exit status non-zero if any assertion fails.
set -u
cd "$(dirname "$0")/.."
NETLAB=oxv-qq-$$
# shellcheck source=scripts/netlab.sh
source scripts/netlab.sh
TUNNEL_TIMEOUT=${TUNNEL_TIMEOUT:-60}
fails=0
pass() { echo "qubes: PASS: $*"; }
fail() { echo "qubes: FAIL: $*"; fails=$((fails + 1)); }

for tool in qemu-system-x86_64 openvpn dnsmasq tcpdump busybox python3 curl; do
    command -v $tool >/dev/null || { echo "qubes: FAIL (missing $tool: run scripts/setup.sh)"; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "qubes: FAIL (needs root for network namespaces)"; exit 1; }
[ -f build/oxvpn.elf ] && [ -x build/config-disk ] || { echo "qubes: FAIL (run make image tools)"; exit 1; }

work=$(mktemp -d /tmp/oxv-qq.XXXXXX)
netlab_init "$work"
NAMES=(qa qb qc)
netlab_namespaces() { echo "$NS_SRV $NS_BEHIND $NS_VM $NS_LAN $NS_DHCP $NETLAB-qa $NETLAB-qb $NETLAB-qc"; }
cleanup() {
    netlab_down
    if [ -n "${KEEP_WORK:-}" ] || [ "$fails" -gt 0 ]; then echo "qubes: logs in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
started=$(date +%s)

GW=10.137.0.1
VDNS=10.139.1.1
client_ip() { echo "10.137.0.$((11 + $1))"; }
client_mac() { echo "52:54:00:13:70:1$1"; }

netlab_up >"$work/setup.log" 2>&1 || { cat "$work/setup.log"; fail "network setup"; exit 1; }
# One tap per client, bridged to a veth into the client's namespace; the client as Qubes configures it: a
# /32 address, the gateway on-link, the virtual DNS as resolver.
for i in 0 1 2; do
    ns=$NETLAB-${NAMES[$i]}
    ip -n "$NS_VM" link add br-$i type bridge
    ip -n "$NS_VM" link set br-$i up
    ip -n "$NS_VM" tuntap add dev tap-c$i mode tap
    ip -n "$NS_VM" link set tap-c$i master br-$i up
    ip link add cl$i netns "$NS_VM" type veth peer name eth0 netns "$ns"
    ip -n "$NS_VM" link set cl$i master br-$i up
    ip -n "$ns" addr add "$(client_ip $i)/32" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add $GW dev eth0
    ip -n "$ns" route add default via $GW dev eth0 onlink
    mkdir -p "/etc/netns/$ns"
    echo "nameserver $VDNS" > "/etc/netns/$ns/resolv.conf"
done

# The config disk: the netlab client profile plus client B's rules.
ovpn=$(scripts/interop/client.sh "$work/pki" "$work" qubes "$NETLAB_SRV_PUB" AES-256-GCM v2) \
    || { fail "client profile"; exit 1; }
B=$(client_ip 1)
cat >> "$ovpn" <<RULES
<qubes-firewall>
# client B: the web server on 8080, ping and DNS; 8081 refused by a rule, everything else by the policy
$B policy=drop
$B action=drop proto=tcp dst4=10.9.0.0/24 dstports=8081-8081
$B action=accept proto=tcp dst4=10.9.0.0/24 dstports=8080-8080
$B action=accept proto=icmp
$B action=accept specialtarget=dns
</qubes-firewall>
RULES
build/config-disk make "$ovpn" -o "$work/qubes.img" >"$work/disk.log" 2>&1 || { cat "$work/disk.log"; fail "config disk"; exit 1; }

netlab_services >"$work/services.log" 2>&1 || { cat "$work/services.log"; fail "server side"; exit 1; }
for port in 8081 8082; do
    netlab_bg http$port ip netns exec "$NS_BEHIND" python3 -m http.server $port --bind $NETLAB_BEHIND --directory "$work/www"
done
echo "oxvpn qubes test" > "$work/www/index.html"
for port in 8081 8082; do
    for _ in $(seq 100); do
        netlab_in "$NS_BEHIND" bash -c "exec 3<>/dev/tcp/$NETLAB_BEHIND/$port" 2>/dev/null && break
        sleep 0.2
    done
done

args="--ipv4=$NETLAB_VM_PUB/24 --ipv4-gateway=$NETLAB_SRV_PUB"
qemu_nics=()
for i in 0 1 2; do
    args+=" --client=$(client_mac $i),$(client_ip $i)"
    qemu_nics+=(-netdev "tap,id=c$i,ifname=tap-c$i,script=no,downscript=no"
        -device "virtio-net-pci,netdev=c$i,mac=$(client_mac $i),romfile=")
done
: > "$NETLAB_SERIAL"
NETLAB_VM_STARTED=$(date +%s.%N)
ip netns exec "$NS_VM" scripts/qemu.sh -M q35 -a "$args" -- \
    -netdev tap,id=pub,ifname=tap-pub,script=no,downscript=no \
    -device virtio-net-pci,netdev=pub,mac=$NETLAB_PUB_MAC,romfile= \
    "${qemu_nics[@]}" \
    -drive "file=$work/qubes.img,if=none,format=raw,id=cfg,readonly=on" -device virtio-blk-pci,drive=cfg \
    >"$NETLAB_SERIAL" 2>"$work/qemu.err" &
NETLAB_QEMU_PID=$!
netlab_pids+=($NETLAB_QEMU_PID)
netlab_bg tcpdump ip netns exec "$NS_VM" tcpdump -n -i br-pub -w "$work/public.pcap" -U

if t=$(netlab_wait_tunnel "$TUNNEL_TIMEOUT"); then
    pass "tunnel up with three client ports in ${t}s ($(grep -c 'role=client' "$NETLAB_SERIAL") client NICs, $(grep -o 'policy drop with [0-9]* rule(s)' "$NETLAB_SERIAL"))"
else
    fail "no tunnel within ${TUNNEL_TIMEOUT}s"; tail -20 "$NETLAB_SERIAL"; exit 1
fi

in_client() { local i=$1; shift; timeout "${T:-20}" ip netns exec "$NETLAB-${NAMES[$i]}" "$@"; }
fetch() { # CLIENT PORT
    in_client "$1" curl -s --max-time "${2#*:}" -o /dev/null -w '%{http_code}' "http://$NETLAB_BEHIND:${2%:*}/" 2>/dev/null
}
ping_ok() { in_client "$1" busybox ping -c 2 -W 3 "$2" 2>/dev/null | grep -q ", [12] packets received"; }

# --- each client through the tunnel ----------------------------------------------------------------------
for i in 0 1 2; do
    if ping_ok $i $NETLAB_BEHIND && [ "$(fetch $i 8080:10)" = 200 ]; then
        pass "client $(client_ip $i) reaches $NETLAB_BEHIND through the tunnel (ping, HTTP 8080)"
    else
        fail "client $(client_ip $i) does not reach $NETLAB_BEHIND"
    fi
done
if grep -q "10.8.0" "$work/http.log" && ! grep -q "10.137.0" "$work/http.log"; then
    pass "the host behind the server sees the tunnel address (NAT), never a client address"
else
    fail "http log: $(tail -3 "$work/http.log" | tr '\n' ';')"
fi

# --- client B's firewall rules --------------------------------------------------------------------------
a81=$(fetch 0 8081:10) a82=$(fetch 0 8082:10) b80=$(fetch 1 8080:10) b81=$(fetch 1 8081:3) b82=$(fetch 1 8082:3)
if [ "$a81$a82" = 200200 ] && [ "$b80" = 200 ] && [ "$b81" = 000 ] && [ "$b82" = 000 ]; then
    pass "client B's rules: 8080 accepted, 8081 dropped by its rule, 8082 by policy=drop (client A reaches all three)"
else
    fail "firewall: A 8081=$a81 8082=$a82, B 8080=$b80 8081=$b81 8082=$b82"
fi

# --- anti-spoofing --------------------------------------------------------------------------------------
ns_a=$NETLAB-qa
ip -n "$ns_a" addr add 10.137.0.99/32 dev eth0
ip netns exec "$NS_BEHIND" timeout 8 tcpdump -n -l -i eth0 "icmp and src 10.137.0.99" >"$work/spoof-behind.txt" 2>/dev/null &
dump=$!
sleep 1
in_client 0 busybox ping -c 3 -W 1 -I 10.137.0.99 $NETLAB_BEHIND >/dev/null 2>&1
in_client 0 busybox ping -c 3 -W 1 -I 10.137.0.99 10.8.0.1 >/dev/null 2>&1
ip -n "$ns_a" addr del 10.137.0.99/32 dev eth0
netlab_wait_console "clients: spoofed_dropped=[1-9]" 1 10
wait $dump 2>/dev/null
spoof_line=$(grep -o "clients: spoofed_dropped=[0-9]*" "$NETLAB_SERIAL" | tail -1)
if [ -n "$spoof_line" ] && [ "${spoof_line##*=}" -ge 1 ] && ! grep -q 10.137.0.99 "$work/spoof-behind.txt"; then
    pass "a spoofed source (10.137.0.99 from client A) is dropped and counted: '$spoof_line'"
else
    fail "spoofing: console '${spoof_line:-none}', seen behind: $(head -2 "$work/spoof-behind.txt" | tr '\n' ';')"
fi

# --- isolation ------------------------------------------------------------------------------------------
iso=ok
for pair in "0 1" "1 2" "2 0"; do
    set -- $pair
    if ping_ok "$1" "$(client_ip "$2")"; then iso="$(client_ip "$1") reached $(client_ip "$2")"; fi
done
if [ "$iso" = ok ] && [ "$(T=5 in_client 0 curl -s --max-time 3 -o /dev/null -w '%{http_code}' "http://$(client_ip 1):8080/")" = 000 ]; then
    pass "clients cannot reach each other (ping and TCP, each pair)"
else
    fail "isolation: $iso"
fi

# --- virtual DNS through the tunnel ---------------------------------------------------------------------
name=qubes-$$.behind.oxvpn.test
answer=$(in_client 2 busybox nslookup "$name" $VDNS 2>&1)
if echo "$answer" | grep -q "$NETLAB_BEHIND" && grep -q "query\[A\] $name from 10.8.0" "$work/dnsmasq.log"; then
    pass "the virtual DNS $VDNS answers through the tunnel (dnsmasq behind the server saw '$name' from the tunnel address)"
else
    fail "virtual DNS: $(echo "$answer" | tail -2 | tr '\n' ';')"
fi

# --- fail-closed with the server stopped ----------------------------------------------------------------
netlab_server_stop
netlab_wait_console "RECONNECTING" 1 90 >/dev/null
for i in 0 1 2; do
    T=5 in_client $i busybox ping -c 2 -W 1 $NETLAB_BEHIND >/dev/null 2>&1
    T=5 in_client $i curl -s --max-time 2 -o /dev/null "http://$NETLAB_BEHIND:8080/"
    T=5 in_client $i busybox nslookup "down-$i.behind.oxvpn.test" $VDNS >/dev/null 2>&1
done
sleep 1
kill "$NETLAB_PID_tcpdump" 2>/dev/null; wait "$NETLAB_PID_tcpdump" 2>/dev/null
total=$(tcpdump -n -r "$work/public.pcap" 2>/dev/null | wc -l)
ovpn=$(tcpdump -n -r "$work/public.pcap" "(udp or tcp) and host $NETLAB_SRV_PUB and host $NETLAB_VM_PUB and port 1194" 2>/dev/null | wc -l)
other=$(tcpdump -n -e -r "$work/public.pcap" "not arp and not ((udp or tcp) and host $NETLAB_SRV_PUB and host $NETLAB_VM_PUB and port 1194) and (ether src $NETLAB_PUB_MAC or net 10.137.0.0/24 or net 10.139.1.0/24 or net 10.8.0.0/24 or net 10.9.0.0/24)" 2>/dev/null)
if grep -q RECONNECTING "$NETLAB_SERIAL" && [ "$ovpn" -gt 0 ] && [ -z "$other" ]; then
    pass "fail-closed: with the server stopped the clients' traffic stays in; $total frames on the public bridge, $ovpn OpenVPN, none else from the image or with a client/tunnel address"
else
    fail "public bridge carried non-OpenVPN traffic: $(echo "$other" | head -5 | tr '\n' ';')"
fi

netlab_vm_stop
elapsed=$(( $(date +%s) - started ))
if [ "$fails" -eq 0 ]; then
    echo "qubes: OK (all assertions passed in ${elapsed}s)"
else
    echo "qubes: $fails assertion(s) failed (${elapsed}s)"
    tail -30 "$NETLAB_SERIAL"
    exit 1
fi

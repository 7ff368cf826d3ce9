#!/usr/bin/env bash
# The router crate between real Linux network stacks: a LAN host (namespace oxr-lan, on a TAP device) and
# a stand-in for the far end of the OpenVPN tunnel (namespace oxr-srv, on a TUN device), joined by
# router/examples/pipe_router (the sans-IO router on the host) through a small Python pump.
# Checks: DHCP lease (busybox udhcpc), ping of the gateway, ping through NAT, DNS through the forwarder
# (dnsmasq on the far side), traceroute (TTL exceeded from the gateway), a 20 MB TCP transfer each way
# with SHA-256 compare over a 1400-byte tunnel MTU (MSS clamping), the far side seeing only the tunnel
# address (NAT), and no packet reaching the far side while the tunnel is down.
set -euo pipefail
cd "$(dirname "$0")/.."

P=oxr
LAN=$P-lan
SRV=$P-srv
TAP=$P-tap0
TUN=$P-tun0
tmp=$(mktemp -d)
pump_pid=
cleanup() {
    [ -n "$pump_pid" ] && kill "$pump_pid" 2>/dev/null || true
    [ -f "$tmp/dnsmasq.pid" ] && kill "$(cat "$tmp/dnsmasq.pid")" 2>/dev/null || true
    ip netns pids "$SRV" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns pids "$LAN" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$LAN" 2>/dev/null || true
    ip netns del "$SRV" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "test-router-netns: FAIL: $*"
    echo "--- router log (tail)"; tail -n 30 "$tmp/router.log" 2>/dev/null || true
    exit 1
}

cargo build -q --release -p router --example pipe_router
BIN=$PWD/target/release/examples/pipe_router

ip netns del "$LAN" 2>/dev/null || true
ip netns del "$SRV" 2>/dev/null || true
ip netns add "$LAN"
ip netns add "$SRV"

cat > "$tmp/pump.py" <<'PY'
# Moves frames between a TAP device, a TUN device and the router's stdin/stdout records.
import fcntl, os, select, signal, struct, subprocess, sys
TUNSETIFF, IFF_TUN, IFF_TAP, IFF_NO_PI = 0x400454CA, 0x0001, 0x0002, 0x1000
def open_dev(name, kind):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), kind | IFF_NO_PI))
    return fd
tap, tun = open_dev(sys.argv[1], IFF_TAP), open_dev(sys.argv[2], IFF_TUN)
router = subprocess.Popen(sys.argv[3:], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
to_router, from_router = router.stdin.fileno(), router.stdout.fileno()
control = []
signal.signal(signal.SIGUSR1, lambda *_: control.append(2))
signal.signal(signal.SIGUSR2, lambda *_: control.append(3))
def send(kind, data):
    os.write(to_router, bytes([kind]) + struct.pack(">H", len(data)) + data)
buf = b""
while True:
    while control:
        send(control.pop(0), b"")
    try:
        ready, _, _ = select.select([tap, tun, from_router], [], [], 0.2)
    except InterruptedError:
        continue
    if tap in ready:
        send(0, os.read(tap, 65536))
    if tun in ready:
        send(1, os.read(tun, 65536))
    if from_router in ready:
        chunk = os.read(from_router, 1 << 20)
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 3:
            n = struct.unpack(">H", buf[1:3])[0]
            if len(buf) < 3 + n:
                break
            kind, data, buf = buf[0], buf[3:3 + n], buf[3 + n:]
            try:
                os.write(tap if kind == 0 else tun, data)
            except OSError:
                pass
PY

start_router() {
    python3 "$tmp/pump.py" "$TAP" "$TUN" "$BIN" "$@" 2>"$tmp/router.log" &
    pump_pid=$!
    for _ in $(seq 50); do
        ip link show "$TAP" >/dev/null 2>&1 && ip link show "$TUN" >/dev/null 2>&1 && break
        sleep 0.1
    done
    ip link set "$TAP" netns "$LAN"
    ip link set "$TUN" netns "$SRV"
    ip -n "$SRV" link set lo up
    ip -n "$SRV" addr add 10.99.0.1/24 dev "$TUN"
    ip -n "$SRV" link set "$TUN" mtu 1400 up
    ip -n "$LAN" link set lo up
    ip -n "$LAN" link set "$TAP" up
}
stop_router() {
    kill "$pump_pid" 2>/dev/null || true
    wait "$pump_pid" 2>/dev/null || true
    pump_pid=
    for _ in $(seq 50); do
        ip -n "$LAN" link show "$TAP" >/dev/null 2>&1 || break
        sleep 0.1
    done
}
tun_rx() { ip netns exec "$SRV" cat "/sys/class/net/$TUN/statistics/rx_packets"; }

start_router 10.77.0.1/24 10.99.0.2/24 10.99.0.1 1400 --ipv6 fd00:99::1000/64
ip -n "$SRV" addr add fd00:99::1/64 dev "$TUN" nodad

# The far side: a DNS server and a TCP peer that records who connected.
ip netns exec "$SRV" dnsmasq --conf-file=/dev/null --keep-in-foreground --bind-interfaces \
    --listen-address=10.99.0.1 --no-resolv --no-hosts --address=/router-test.example/10.99.0.7 \
    --pid-file="$tmp/dnsmasq.pid" --log-facility=/dev/null &
cat > "$tmp/peer.py" <<'PY'
import hashlib, socket, sys
N = 20 * 1024 * 1024
def stream(seed):
    block = hashlib.sha256(seed).digest() * 2048
    sent = 0
    while sent < N:
        yield block[: min(len(block), N - sent)]
        sent += len(block)
if sys.argv[1] == "server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("10.99.0.1", 5000)); s.listen(1)
    c, peer = s.accept()
    open(sys.argv[2], "w").write(peer[0])
    h, got = hashlib.sha256(), 0
    while got < N:
        d = c.recv(65536)
        if not d: break
        h.update(d); got += len(d)
    c.sendall(h.hexdigest().encode())
    for b in stream(b"down"): c.sendall(b)
    c.close()
else:
    c = socket.create_connection(("10.99.0.1", 5000), timeout=60)
    up = hashlib.sha256()
    for b in stream(b"up"): c.sendall(b); up.update(b)
    digest = b""
    while len(digest) < 64: digest += c.recv(64 - len(digest))
    assert digest.decode() == up.hexdigest(), "upload corrupted"
    h, want, got = hashlib.sha256(), hashlib.sha256(), 0
    for b in stream(b"down"): want.update(b)
    while True:
        d = c.recv(65536)
        if not d: break
        h.update(d); got += len(d)
    assert got == N and h.hexdigest() == want.hexdigest(), "download corrupted"
    print("transfer ok")
PY

# 1. DHCP from the router.
cat > "$tmp/udhcpc.sh" <<SH
#!/bin/sh
[ "\$1" = bound ] || exit 0
ip addr add "\$ip/\$subnet" dev "\$interface"
ip route add default via "\$router"
echo "\$ip \$router \$dns" > "$tmp/lease"
SH
chmod +x "$tmp/udhcpc.sh"
ip netns exec "$LAN" busybox udhcpc -i "$TAP" -n -q -t 5 -T 1 -s "$tmp/udhcpc.sh" >/dev/null 2>&1 || fail "no DHCP lease"
read -r lease_ip lease_router lease_dns < "$tmp/lease"
case "$lease_ip" in 10.77.0.*) ;; *) fail "lease $lease_ip outside 10.77.0.0/24" ;; esac
[ "$lease_router" = 10.77.0.1 ] || fail "DHCP router option $lease_router"
[ "$lease_dns" = 10.77.0.1 ] || fail "DHCP DNS option $lease_dns"

# 2. Ping the gateway, then through the tunnel (NAT).
ip netns exec "$LAN" busybox ping -c 2 -W 2 10.77.0.1 >/dev/null || fail "gateway does not answer ping"
ip netns exec "$LAN" busybox ping -c 2 -W 2 10.99.0.1 >/dev/null || fail "no ping through the tunnel"

# 3. DNS through the forwarder to the pushed server.
ip netns exec "$LAN" busybox nslookup router-test.example 10.77.0.1 > "$tmp/dns" 2>&1 || true
grep -q 10.99.0.7 "$tmp/dns" || fail "DNS through the forwarder: $(cat "$tmp/dns")"

# 4. Traceroute: the gateway is hop 1 (ICMP time exceeded), the far side hop 2.
ip netns exec "$LAN" busybox traceroute -n -m 3 -w 2 -q 1 10.99.0.1 2>/dev/null > "$tmp/trace"
grep -q "^ 1  10.77.0.1" "$tmp/trace" || fail "traceroute hop 1: $(cat "$tmp/trace")"
grep -q "10.99.0.1" "$tmp/trace" || fail "traceroute never reached 10.99.0.1: $(cat "$tmp/trace")"

# 5. 20 MB each way with checksums; the far side sees the tunnel address only.
ip netns exec "$SRV" python3 "$tmp/peer.py" server "$tmp/peer" &
server_pid=$!
sleep 0.5
timeout 120 ip netns exec "$LAN" python3 "$tmp/peer.py" client | grep -q "transfer ok" || fail "TCP transfer"
wait "$server_pid" || fail "TCP peer"
[ "$(cat "$tmp/peer")" = 10.99.0.2 ] || fail "far side saw $(cat "$tmp/peer"), not the NAT address"

# 6. Tunnel down: nothing reaches the far side, the LAN gets unreachable (not a hang); back up: works.
rx_before=$(tun_rx)
kill -USR1 "$pump_pid"
sleep 0.3
if ip netns exec "$LAN" busybox ping -c 2 -W 1 10.99.0.1 >/dev/null 2>&1; then fail "ping worked with the tunnel down"; fi
ip netns exec "$LAN" busybox ping -c 1 -W 1 10.77.0.1 >/dev/null || fail "gateway stopped answering while the tunnel is down"
rx_after=$(tun_rx)
[ "$rx_before" = "$rx_after" ] || fail "$((rx_after - rx_before)) packets leaked into the tunnel while down"
grep -q "TunnelDown" "$tmp/router.log" || fail "router did not report TunnelDown"
kill -USR2 "$pump_pid"
sleep 0.3
ip netns exec "$LAN" busybox ping -c 2 -W 2 10.99.0.1 >/dev/null || fail "no ping after the tunnel came back"

# 7. IPv6: the LAN host configures itself from the router's advertisement (SLAAC) and reaches the far side
#    through NAT66; the far side sees the tunnel's IPv6 address.
lan6=
for _ in $(seq 50); do
    lan6=$(ip -n "$LAN" -6 addr show dev "$TAP" scope global 2>/dev/null | awk '/inet6/ && !/tentative/ {sub("/.*", "", $2); print $2; exit}')
    [ -n "$lan6" ] && ip -n "$LAN" -6 route show default | grep -q "via fe80::" && break
    sleep 0.2
done
[ -n "$lan6" ] || fail "no SLAAC address from the router advertisement"
ip -n "$LAN" -6 route show default | grep -q "via fe80::" || fail "no IPv6 default route from the router advertisement"
ip netns exec "$LAN" busybox ping -6 -c 2 -W 2 fd00:99::1 >/dev/null || fail "no IPv6 ping through the tunnel"
ip netns exec "$SRV" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("fd00:99::1", 5006)); s.listen(1); s.settimeout(20)
c, peer = s.accept(); data = b""
while True:
    d = c.recv(65536)
    if not d: break
    data += d
open(sys.argv[1], "w").write(peer[0] + " " + str(len(data)))
' "$tmp/peer6" &
server6=$!
sleep 0.5
timeout 30 ip netns exec "$LAN" python3 -c '
import socket
c = socket.create_connection(("fd00:99::1", 5006), timeout=20)
c.sendall(bytes(range(256)) * 12000); c.close()
' || fail "IPv6 TCP through NAT66"
wait "$server6" || fail "IPv6 TCP peer"
[ "$(cat "$tmp/peer6")" = "fd00:99::1000 3072000" ] || fail "IPv6 far side saw: $(cat "$tmp/peer6")"

# 8. NAT off and no redirect-gateway: plain routing of the pushed route only (the far side routes the LAN
#    back, like an OpenVPN server with `iroute`); other destinations never enter the tunnel.
stop_router
start_router 10.77.0.1/24 10.99.0.2/24 10.99.0.1 1400 --no-nat --route 10.99.0.0/24
ip -n "$SRV" route add 10.77.0.0/24 dev "$TUN"
ip -n "$LAN" addr add 10.77.0.50/24 dev "$TAP"
ip -n "$LAN" route add default via 10.77.0.1
ip netns exec "$SRV" python3 "$tmp/peer.py" server "$tmp/peer" &
server_pid=$!
sleep 0.5
timeout 120 ip netns exec "$LAN" python3 "$tmp/peer.py" client | grep -q "transfer ok" || fail "TCP transfer without NAT"
wait "$server_pid" || fail "TCP peer without NAT"
[ "$(cat "$tmp/peer")" = 10.77.0.50 ] || fail "without NAT the far side saw $(cat "$tmp/peer")"
rx_before=$(tun_rx)
if ip netns exec "$LAN" busybox ping -c 2 -W 1 10.55.0.1 >/dev/null 2>&1; then fail "unrouted destination answered"; fi
[ "$rx_before" = "$(tun_rx)" ] || fail "a destination outside the pushed routes entered the tunnel"
grep -q "NoRoute" "$tmp/router.log" || fail "router did not report NoRoute"

echo "test-router-netns: ok (DHCP $lease_ip, ping, DNS, traceroute, 2x20 MB TCP via NAT at MTU 1400, no leak while down; SLAAC $lan6 + NAT66 TCP; no-NAT routing, unpushed route refused)"

#!/usr/bin/env bash
# The server demo (`make run-server`, after `make image tools`): oxvpn as an OpenVPN server for three clients.
#
# Sets up scripts/server-lab.sh's network in namespaces oxs-demo-*: a switch, the server image in QEMU
# (192.0.2.1, public NIC only, config disk from `ovpn-keys server-config`), three client namespaces running
# Debian's openvpn with profiles from `ovpn-keys profile` (alice and bob over UDP, carol over TCP), and an
# "internet" host (192.0.2.250) with a web server. Shows the server's console until it listens, connects
# the clients, then pings the server and a client from another, and downloads a file from the internet
# host through the tunnel and the server's NAT. Then it waits for Ctrl-C and cleans up.
#
# Environment: DEMO_EXIT=1 (or no terminal on stdin) exits after the showcase; SERVER=openvpn shows the same
# with Debian's openvpn as the server (the reference, until the image has the server role);
# MACHINE=pc|q35|microvm; ACCEL=tcg|kvm; SL_IMAGE_ARGS=extra boot arguments (e.g. --verb=4).
set -u
cd "$(dirname "$0")/.."
SL=oxs-demo
SERVER=${SERVER:-image}
# shellcheck source=scripts/server-lab.sh
source scripts/server-lab.sh

[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (network namespaces); try: sudo make run-server"; exit 1; }
[ -x build/ovpn-keys ] && [ -x build/config-disk ] || { echo "demo: run 'make image tools' first (make run-server does)"; exit 1; }
for tool in qemu-system-x86_64 openvpn busybox python3 curl; do
    command -v $tool >/dev/null || { echo "demo: $tool missing: run scripts/setup.sh"; exit 1; }
done

work=$(mktemp -d /tmp/oxs-demo.XXXXXX)
sl_init "$work"
console_pid=
cleanup() {
    [ -n "$console_pid" ] && kill "$console_pid" 2>/dev/null
    echo
    echo "demo: stopping the server, the clients and the namespaces"
    sl_down
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 0' INT TERM
say() { printf '\n\033[1mdemo: %s\033[0m\n' "$*"; }
on() { local who=$1; shift; echo "$who\$ $*"; timeout 30 ip netns exec "$SL-$who" "$@"; }

say "the keys: a PKI, the server config and one profile per user, all from build/ovpn-keys"
sl_up >"$work/logs/setup.log" 2>&1 || { cat "$work/logs/setup.log"; echo "demo: network setup failed"; exit 1; }
sl_pki || { cat "$work/logs/pki.log"; exit 1; }
echo "ovpn-keys pki init pki; ovpn-keys pki server server; ovpn-keys server-config -o server.conf; ovpn-keys profile NAME ..."
SRV_TUN=$SL_NET_UDP.1 SRV_TUN_TCP=$SL_NET_UDP.1
if [ "$SERVER" = openvpn ]; then
    conf=$(sl_server_conf server udp $SL_SRV_PUB $SL_NET_UDP "local $SL_SRV_PUB")
    conf_tcp=$(sl_server_conf server-tcp tcp $SL_SRV_PUB $SL_NET_TCP "local $SL_SRV_PUB")
    SRV_TUN_TCP=$SL_NET_TCP.1
    say "starting Debian's openvpn as the server (reference mode: one UDP and one TCP process)"
    sl_openvpn_server server "$conf" && sl_openvpn_server server-tcp "$conf_tcp" || exit 1
    sl_nat || echo "demo: no nft/iptables: the internet host routes the tunnel back instead of NAT"
else
    conf=$(sl_server_conf server udp $SL_SRV_PUB $SL_NET_UDP "$SL_IMAGE_LISTEN")
    say "booting build/oxvpn.elf as the server (${ACCEL:-tcg}, ${MACHINE:-q35}) on $SL_SRV_PUB; the serial console follows"
    sl_image_server server 1 "$conf" $SL_SRV_PUB || exit 1
    tail -n +1 -f "$work/logs/server.log" &
    console_pid=$!
    if ! sl_wait_log "$work/logs/server.log" "Initialization Sequence Completed" 60; then
        sleep 0.5
        echo "demo: the server did not start listening (console above; the image may not have the server role yet: try SERVER=openvpn)"
        exit 1
    fi
    sleep 0.3
    kill "$console_pid" 2>/dev/null; wait "$console_pid" 2>/dev/null; console_pid=
fi
sl_inet_services || exit 1
echo "Hello from the internet host ($SL_INET), fetched through the VPN server." > "$work/www/hello.txt"
head -c $((8 << 20)) /dev/urandom > "$work/www/8MB.bin"

say "three clients: alice and bob over UDP, carol over TCP (Debian's openvpn, one namespace each)"
n=10
for who in alice:udp bob:udp carol:tcp; do
    name=${who%%:*} proto=${who#*:}; n=$((n + 1))
    sl_host "$name" 192.0.2.$n >>"$work/logs/setup.log" 2>&1
    sl_profile "$name" "$proto" $SL_SRV_PUB >/dev/null || exit 1
    sl_client "$name" "$work/$name.ovpn"
done
for name in alice bob carol; do
    if sl_wait_log "$work/logs/$name.log" "Initialization Sequence Completed" 60; then
        echo "$name: connected, tunnel address $(sl_tun_addr "$name")"
    else
        echo "demo: $name did not connect"; tail -5 "$work/logs/$name.log"; exit 1
    fi
done

say "each client pings the server's tunnel address; alice pings bob (client-to-client)"
on alice busybox ping -c 2 "$SRV_TUN"
on bob busybox ping -c 2 "$SRV_TUN"
on carol busybox ping -c 2 "$SRV_TUN_TCP"
on alice busybox ping -c 2 "$(sl_tun_addr bob)"
say "carol downloads from the internet host through the tunnel; the server NATs her traffic"
on carol curl -s "http://$SL_INET:8080/hello.txt"
on carol curl -s -o /dev/null -w "downloaded %{size_download} bytes in %{time_total} s (%{speed_download} bytes/s)\n" \
    "http://$SL_INET:8080/8MB.bin"
echo "the internet host saw: $(grep "GET /8MB.bin" "$work/logs/http.log" | tail -1 | awk '{ print $1 }')"

if [ -n "${DEMO_EXIT:-}" ] || [ ! -t 0 ]; then
    say "done (DEMO_EXIT or no terminal)"
    exit 0
fi
say "the server keeps running. Try: sudo ip netns exec $SL-alice bash   (then ping $SRV_TUN, curl http://$SL_INET:8080/hello.txt)"
echo "demo: press Ctrl-C to stop"
while kill -0 "$(sl_pid server)" 2>/dev/null; do sleep 1; done
echo "demo: the server stopped; its log:"
tail -5 "$work/logs/server.log"

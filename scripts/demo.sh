#!/usr/bin/env bash
# The demo (`make run`, after `make image tools`): oxvpn as the VPN router of a LAN.
#
# Sets up scripts/netlab.sh's network in namespaces oxv-demo-*: Debian's openvpn 2.6 server with a host behind
# it, the router image in QEMU between a public and a private bridge, and a LAN host. Boots build/oxvpn.elf
# with the client config on a config disk, shows its console until `Initialization Sequence Completed`, then
# has the LAN host ping the server's tunnel address and the host behind the server, resolve a name through
# the tunnel's DNS, and download a file from behind the server. Then it waits for Ctrl-C (the router keeps
# running: try `ip netns exec oxv-demo-lan bash`) and cleans up.
#
# Environment: DEMO_EXIT=1 (or no terminal on stdin) exits after the showcase; DEMO_NAT=0 boots with
# --no-nat (the server routes the LAN); MACHINE=pc|q35|microvm (default q35);
# ACCEL=tcg|kvm; ARGS=extra boot arguments (e.g. --verb=5).
set -u
cd "$(dirname "$0")/.."
NETLAB=oxv-demo
# shellcheck source=scripts/netlab.sh
source scripts/netlab.sh

[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (network namespaces); try: sudo make run"; exit 1; }
[ -f build/oxvpn.elf ] && [ -x build/config-disk ] || { echo "demo: run 'make image tools' first (make run does)"; exit 1; }
for tool in qemu-system-x86_64 openvpn dnsmasq busybox python3; do
    command -v $tool >/dev/null || { echo "demo: $tool missing: run scripts/setup.sh"; exit 1; }
done

work=$(mktemp -d /tmp/oxv-demo.XXXXXX)
netlab_init "$work"
console_pid=
cleanup() {
    [ -n "$console_pid" ] && kill "$console_pid" 2>/dev/null
    echo
    echo "demo: stopping the router, the server and the namespaces"
    netlab_down
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 0' INT TERM
say() { printf '\n\033[1mdemo: %s\033[0m\n' "$*"; }
lan() { echo "lan\$ $*"; timeout 30 ip netns exec "$NS_LAN" "$@"; }

say "setting up the network: OpenVPN server (oxv-demo-srv, $NETLAB_SRV_PUB), a host behind it ($NETLAB_BEHIND), the router's two bridges (oxv-demo-vm), a LAN host (oxv-demo-lan, $NETLAB_LAN_HOST)"
netlab_up >"$work/setup.log" 2>&1 || { cat "$work/setup.log"; echo "demo: network setup failed"; exit 1; }
netlab_services || exit 1
echo "Hello from the host behind the OpenVPN server ($NETLAB_BEHIND), served through oxvpn's tunnel." > "$work/www/hello.txt"
head -c $((8 << 20)) /dev/urandom > "$work/www/8MB.bin"

nat=--nat
[ "${DEMO_NAT:-1}" = 0 ] && nat=--no-nat
say "booting build/oxvpn.elf (${ACCEL:-tcg}, ${MACHINE:-q35}): $nat ${ARGS:-}; the serial console follows"
netlab_vm_start "$nat ${ARGS:-}"
tail -n +1 -f "$NETLAB_SERIAL" &
console_pid=$!
if ! t=$(netlab_wait_tunnel 60); then
    sleep 0.5
    echo "demo: the tunnel did not come up (see the console above; server log: $work/openvpn.log)"
    exit 1
fi
sleep 0.3
kill "$console_pid" 2>/dev/null; wait "$console_pid" 2>/dev/null; console_pid=
say "tunnel up $t s after starting QEMU"

say "the LAN host pings the server's tunnel address and the host behind the server, through the tunnel"
lan busybox ping -c 3 $NETLAB_SRV_TUN
lan busybox ping -c 3 $NETLAB_BEHIND
say "the LAN host resolves a name with the gateway's DNS forwarder, answered by dnsmasq behind the tunnel"
lan busybox nslookup -type=a behind.oxvpn.test $NETLAB_GW
say "the LAN host downloads files from the host behind the server"
lan curl -s "http://behind.oxvpn.test:8080/hello.txt"
lan curl -s -o /dev/null -w "downloaded %{size_download} bytes in %{time_total} s (%{speed_download} bytes/s)\n" \
    "http://$NETLAB_BEHIND:8080/8MB.bin"
say "the server's view: $(grep -c 'Peer Connection Initiated' "$work/openvpn.log") client(s) connected"
grep -E "PUSH_REPLY|Data Channel: cipher" "$work/openvpn.log" | tail -2 | cut -c1-200

if [ -n "${DEMO_EXIT:-}" ] || [ ! -t 0 ]; then
    say "done (DEMO_EXIT or no terminal)"
    exit 0
fi
say "the router keeps running. Try: sudo ip netns exec oxv-demo-lan bash   (then ping $NETLAB_BEHIND, curl http://$NETLAB_BEHIND:8080/hello.txt)"
echo "demo: press Ctrl-C to stop"
while kill -0 "$NETLAB_QEMU_PID" 2>/dev/null; do sleep 1; done
echo "demo: the router stopped (QEMU exited); console:"
tail -5 "$NETLAB_SERIAL"

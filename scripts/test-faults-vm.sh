#!/usr/bin/env bash
# Fault injection against the image: the router VM (build/oxvpn.elf in QEMU) on the namespaced network of
# scripts/netlab.sh (namespaces oxv-flt-*), with scripts/relay/relay.py between the VM and Debian's openvpn
# 2.6 server (the relay listens on 10.60.0.3 in the server's namespace; the config disk's `remote` points
# there). Faults: 5% loss, 1% duplication, 2% reordering, 5 ms + 0..50 ms jitter each way (seed fixed).
# Checks, one line each:
#   the tunnel comes up through the faults
#   a LAN host pings the host behind the server for 30 s while the server renegotiates every 10 s:
#     >= 2 renegotiations complete and >= 80% of the pings are answered
#   a 2 MB download from behind the server to the LAN host arrives intact (sha256) through the faults
#   the server is killed and restarted: the image reconnects by itself (console: second
#     `Initialization Sequence Completed`) and LAN traffic resumes
# Bounded (every step has a timeout); cleans up in a trap. Exit status non-zero if any check fails.
set -u
cd "$(dirname "$0")/.."
NETLAB=oxv-flt
# shellcheck source=scripts/netlab.sh
source scripts/netlab.sh
RELAY_ADDR=10.60.0.3
fails=0
pass() { echo "faults-vm: PASS: $*"; }
fail() { echo "faults-vm: FAIL: $*"; fails=$((fails + 1)); }

for tool in qemu-system-x86_64 openvpn busybox python3 curl; do
    command -v $tool >/dev/null || { echo "faults-vm: FAIL (missing $tool: run scripts/setup.sh)"; exit 1; }
done
[ -f build/oxvpn.elf ] && [ -x build/config-disk ] || { echo "faults-vm: FAIL (run make image tools)"; exit 1; }

work=$(mktemp -d /tmp/oxv-faults-vm.XXXXXX)
netlab_init "$work"
relay_pid= watchdog=
cleanup() {
    [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null && wait "$relay_pid" 2>/dev/null
    # The watchdog subshell and its sleep.
    [ -n "$watchdog" ] && { pkill -P "$watchdog" 2>/dev/null; kill "$watchdog" 2>/dev/null; }
    netlab_vm_stop
    netlab_down
    if [ -n "${KEEP_WORK:-}" ]; then echo "faults-vm: logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Whole-test bound: the trap cleans up.
# `&&`: when cleanup kills the sleep, the subshell must not go on to signal this script mid-cleanup.
( sleep "${FAULTS_VM_TIMEOUT:-400}" && kill -TERM $$ 2>/dev/null ) >/dev/null 2>&1 &
watchdog=$!

NETLAB_REMOTE=$RELAY_ADDR netlab_up >"$work/setup.log" 2>&1 \
    || { cat "$work/setup.log"; echo "faults-vm: FAIL (network setup)"; exit 1; }
ip -n "$NS_SRV" addr add $RELAY_ADDR/24 dev eth0
netlab_server_start "reneg-sec 10" >/dev/null || { echo "faults-vm: FAIL (server)"; exit 1; }
netlab_bg http ip netns exec "$NS_BEHIND" python3 -m http.server 8080 --bind $NETLAB_BEHIND --directory "$work/www"
head -c $((2 * 1024 * 1024)) /dev/urandom > "$work/www/blob"

ip netns exec "$NS_SRV" python3 scripts/relay/relay.py --listen $RELAY_ADDR:1194 --upstream $NETLAB_SRV_PUB:1194 \
    --seed 31 --loss 0.05 --dup 0.01 --reorder 0.02 --delay-ms 5 --jitter-ms 50 --stats "$work/relay.txt" \
    2>"$work/relay.log" &
relay_pid=$!

lan() { timeout "${T:-30}" ip netns exec "$NS_LAN" "$@"; }

netlab_vm_start "--nat"
if t=$(netlab_wait_tunnel 120); then
    pass "tunnel up through the faults in $t s"
else
    fail "no tunnel through the faults in 120 s"; tail -20 "$NETLAB_SERIAL"
    exit 1
fi

# Pings under renegotiation.
T=40 lan busybox ping -c 150 -i 0.2 -W 2 $NETLAB_BEHIND >"$work/ping.log" 2>&1
got=$(grep -o "[0-9]* packets received" "$work/ping.log" | cut -d' ' -f1)
renegs=$(grep -c "TLS: soft reset" "$work/openvpn.log")
if [ "${got:-0}" -ge 120 ] && [ "$renegs" -ge 2 ]; then
    pass "pings under faults: ${got}/150 answered over 30 s, $renegs server renegotiations (reneg-sec 10)"
else
    fail "pings under faults: ${got:-0}/150 answered, $renegs renegotiations"
fi

# Bulk transfer through the faults.
want=$(sha256sum < "$work/www/blob" | cut -d' ' -f1)
start=$(date +%s)
got=$(T=120 lan curl -s "http://$NETLAB_BEHIND:8080/blob" | sha256sum | cut -d' ' -f1)
secs=$(( $(date +%s) - start ))
[ "$got" = "$want" ] && pass "2 MB download behind -> LAN through the faults in $secs s, sha256 equal" \
    || fail "2 MB download: sha256 differs or transfer cut ($secs s)"

# Server restart: the image must come back by itself (ping-restart 10 pushed by keepalive 2 10).
netlab_server_stop
sleep 3
restart=$(date +%s)
netlab_server_start "reneg-sec 10" >/dev/null || fail "server did not restart"
if netlab_wait_console "Initialization Sequence Completed" 2 90; then
    back=$(( $(date +%s) - restart ))
    if T=30 lan busybox ping -c 10 -i 0.5 -W 2 $NETLAB_BEHIND >"$work/ping2.log" 2>&1 \
        || grep -q "[1-9][0-9]* packets received" "$work/ping2.log"; then
        pass "server restart: the image reconnected by itself ${back} s after the server came back; LAN pings answered again ($(grep -o '[0-9]* packets received' "$work/ping2.log"))"
    else
        fail "server restart: tunnel back after ${back} s but LAN pings unanswered"
    fi
else
    fail "server restart: no second tunnel within 90 s"; grep -E "RECONNECT|restart|Initialization" "$NETLAB_SERIAL" | tail -5
fi

kill "$relay_pid" 2>/dev/null; wait "$relay_pid" 2>/dev/null; relay_pid=
faults=$(cat "$work/relay.txt" 2>/dev/null)
echo "faults-vm: injected: ${faults#relay: }"
if [ $fails -eq 0 ]; then echo "faults-vm: ok"; else echo "faults-vm: FAILED ($fails checks)"; exit 1; fi

#!/usr/bin/env bash
# The image under libvirt (QEMU driver, TCG): deploy/libvirt/oxvpn-router.xml with its placeholders filled in,
# on the namespaced network of scripts/netlab.sh (Debian's openvpn server in oxv-lv-PID-srv, a LAN host in
# oxv-lv-PID-lan). One result line per assertion:
#   libvirt answers on qemu:///system (a running daemon, or libvirtd + virtlogd started here, inside the
#   namespace that holds the bridges, and stopped at the end)
#   the template fills in (no @PLACEHOLDER@ left), `virsh define --validate` takes it (libvirt's RNG schema),
#   `virsh start` runs it
#   tunnel up: `Initialization Sequence Completed` in the console log (<log file=...> of the serial port),
#   the console's OpenVPN state lines end in CONNECTED
#   ping from the LAN host to the server's tunnel address through the router
#   `virsh shutdown` (the ACPI power button) ends it cleanly within SHUTDOWN_TIMEOUT (default 15 s): the console
#   says the host asked for a poweroff, the tunnel's EXITING line and the clean exit, the image powered off
#   through S5 (`virsh domstate --reason`: shut off (shutdown), not crashed: isa-debug-exit would say crashed),
#   QEMU is gone, and the server heard the explicit exit notification (OCC EXIT: `remote-exit`)
#   `virsh start` again, then `virsh destroy` stops it (shut off, QEMU gone), `virsh undefine` forgets it
#   (not in `virsh list --all`)
#   the image's own exit (`--help`: exit code 0x10 through isa-debug-exit) ends a transient domain
#   nothing left: no QEMU of the test's domains, namespaces gone, the daemon stopped if the test started it
# Settings: TUNNEL_TIMEOUT (default 60 s), SHUTDOWN_TIMEOUT (default 15 s), LIBVIRT_URI (default
# qemu:///system), LIBVIRT_TIMEOUT (whole test, default 240 s), MACHINE (q35 as in the template, or pc),
# KEEP_WORK=1 (keep the work directory with the console, daemon and libvirt's domain logs). Needs root, libvirt-daemon-system and libvirt-clients
# (scripts/setup.sh).
# When a daemon already runs (systemd's libvirtd or virtqemud), its QEMU creates its taps in the host's network
# namespace: the test then puts two bridges of its own there (oxl-PID-pub/-lan) and moves netlab's veth ends
# onto them; otherwise it starts libvirtd in the namespace of netlab's bridges, so nothing of it touches the host.
# Not for two runs at once without a system daemon: the second would take the first's daemon for a system one.
set -u
cd "$(dirname "$0")/.."
NETLAB=oxv-lv-$$
# shellcheck source=scripts/netlab.sh
source scripts/netlab.sh
TUNNEL_TIMEOUT=${TUNNEL_TIMEOUT:-60}
URI=${LIBVIRT_URI:-qemu:///system}
DOM=oxvpn-test-$$
fails=0 passes=0
# fd 3 is the test's own stdout: a trap runs inside the redirections of the command it interrupts (e.g.
# `v define ... >define.log`), so what the traps say goes to fd 3. Closed for the daemons and the timer.
exec 3>&1
pass() { echo "libvirt: PASS: $*"; passes=$((passes + 1)); }
fail() { echo "libvirt: FAIL: $*"; fails=$((fails + 1)); }
finish() { echo "libvirt: $passes passed, $fails failed"; [ "$fails" -eq 0 ]; exit; }
v() { timeout 30 virsh -q -c "$URI" "$@"; }
daemon_version() { timeout 30 virsh -c "$URI" version --daemon | awk '/Running against daemon/ { print $NF }'; }

for tool in virsh libvirtd virtlogd qemu-system-x86_64 openvpn busybox; do
    command -v $tool >/dev/null || { echo "libvirt: FAIL (missing $tool: run scripts/setup.sh)"; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "libvirt: FAIL (needs root for network namespaces and qemu:///system)"; exit 1; }
[ -f build/oxvpn.elf ] && [ -x build/config-disk ] || { echo "libvirt: FAIL (run make image tools)"; exit 1; }

# The work directory is world-readable: QEMU runs as libvirt-qemu on Debian and reads the kernel, the disk
# and (through virtlogd, as root) writes the console log here.
work=$(mktemp -d /tmp/oxv-libvirt.XXXXXX)
chmod 755 "$work"
netlab_init "$work"
NETLAB_SERIAL=$work/console.log
daemon_pids=() created_run=
pub_br=br-pub lan_br=br-lan host_bridges= timer=

# domain_gone NAME: virsh no longer lists NAME and no QEMU runs with it as its guest name.
domain_gone() {
    ! v list --all --name 2>/dev/null | grep -qx "$1" && ! pgrep -f "qemu-system.*guest=$1," >/dev/null
}
stop_daemons() {
    local pid
    for pid in "${daemon_pids[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${daemon_pids[@]}"; do wait "$pid" 2>/dev/null; done
    daemon_pids=()
    # /run/libvirt did not exist before this test's daemon made it: nothing else uses it.
    [ -n "$created_run" ] && rm -rf /run/libvirt
    created_run=
}
cleanup() {
    local d
    for d in "$DOM" "$DOM-help"; do
        v domstate "$d" >/dev/null 2>&1 || continue
        v destroy "$d" >/dev/null 2>&1; v undefine "$d" >/dev/null 2>&1
    done
    for d in "$DOM" "$DOM-help"; do
        [ -f "/var/log/libvirt/qemu/$d.log" ] && mv "/var/log/libvirt/qemu/$d.log" "$work/libvirt-$d.log"
    done
    stop_daemons
    netlab_down
    if [ -n "$host_bridges" ]; then ip link del "$pub_br" 2>/dev/null; ip link del "$lan_br" 2>/dev/null; fi
    [ -n "$timer" ] && { pkill -P "$timer" sleep; kill "$timer"; } 2>/dev/null
    if [ -n "${KEEP_WORK:-}" ] || [ "$fails" -gt 0 ]; then echo "libvirt: logs in $work" >&3; else rm -rf "$work"; fi
}
trap cleanup EXIT
# Interrupted or over time: counts as a failure (the logs are kept), with the tally so far.
trap 'fails=$((fails + 1)); echo "libvirt: $passes passed, $fails failed" >&3; exit 130' INT TERM
# The timer's sleep writes nowhere: a caller reading this test's output through a pipe is not held open by it.
( sleep "${LIBVIRT_TIMEOUT:-240}" >/dev/null 2>&1 && echo "libvirt: FAIL (over ${LIBVIRT_TIMEOUT:-240}s)" \
    && kill -TERM $$ ) 2>/dev/null 3>&- &
timer=$!

netlab_up >"$work/setup.log" 2>&1 || { cat "$work/setup.log"; echo "libvirt: FAIL (network setup)"; exit 1; }
netlab_server_start >"$work/server-start.log" || { cat "$work/server-start.log"; echo "libvirt: FAIL (server)"; exit 1; }

# --- the daemon -----------------------------------------------------------------------------------
if v version >/dev/null 2>&1; then
    # Someone else's daemon: its QEMU makes taps in the host namespace, so the bridges go there.
    pub_br=oxl-$$-pub lan_br=oxl-$$-lan host_bridges=1
    for br in "$pub_br" "$lan_br"; do
        ip link add "$br" type bridge && ip link set "$br" up
        sysctl -qw "net.ipv6.conf.$br.disable_ipv6=1"
    done
    ip -n "$NS_VM" link set pub0 netns $$ && ip link set pub0 master "$pub_br" up
    for l in lan0 dhcp0; do ip -n "$NS_VM" link set $l netns $$ && ip link set $l master "$lan_br" up; done
    pass "libvirt $(daemon_version) answers on $URI (a running daemon; bridges $pub_br, $lan_br)"
else
    # No daemon (no systemd, e.g. a container): virtlogd (the console log) and libvirtd, in the namespace that
    # holds netlab's bridges br-pub and br-lan, so that their taps, and any network libvirt autostarts,
    # stay there. Children of this shell, not daemonised (-d): the trap stops and reaps them.
    [ -d /run/libvirt ] || created_run=1
    vlog=$(pgrep -x virtlogd | while read -r p; do grep -q '^State:.*Z' "/proc/$p/status" || echo "$p"; done)
    if [ -z "$vlog" ]; then
        ip netns exec "$NS_VM" virtlogd >"$work/virtlogd.log" 2>&1 3>&- &
        daemon_pids+=($!)
    fi
    # libvirtd under a subreaper: QEMU daemonises (-daemonize), so its processes (the capability probe, the
    # guests) become orphans that init must reap. An init that does not (a container's PID 1) leaves zombies,
    # and libvirtd then waits 15 s for each "running" QEMU to die, then fails. The reaper adopts and reaps them.
    cat > "$work/reaper.py" <<'PY'
import ctypes, os, signal, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans below come to this process
child = os.fork()
if child == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
signal.signal(signal.SIGTERM, lambda *_: os.kill(child, signal.SIGTERM))
signal.signal(signal.SIGINT, signal.SIG_IGN)
status = 1
while True:
    try:
        pid, st = os.wait()
    except ChildProcessError:  # the daemon and every orphan reaped
        break
    if pid == child:
        status = os.waitstatus_to_exitcode(st)
sys.exit(status if status >= 0 else 1)
PY
    ip netns exec "$NS_VM" python3 "$work/reaper.py" libvirtd >"$work/libvirtd.log" 2>&1 3>&- &
    daemon_pids+=($!)
    for _ in $(seq 50); do v version >/dev/null 2>&1 && break; sleep 0.2; done
    if v version >/dev/null 2>&1; then
        pass "libvirt $(daemon_version) answers on $URI (libvirtd$([ -z "$vlog" ] && echo " + virtlogd") started by the test in $NS_VM)"
    else
        fail "libvirtd started but $URI does not answer"; tail -5 "$work/libvirtd.log"; finish
    fi
fi

# --- define and start -----------------------------------------------------------------------------
cp build/oxvpn.elf "$work/oxvpn.elf"
cp "$NETLAB_DISK" "$work/config.img"
chmod 644 "$work/oxvpn.elf" "$work/config.img"
# fill NAME LOG CMDLINE: the deploy/ template with its placeholders replaced from the <domain> line on (the
# comment above it names them, and may not hold the boot arguments' double dashes), on stdout.
fill() {
    sed -e "/^<domain/,\$ { s|@NAME@|$1|g; s|@KERNEL@|$work/oxvpn.elf|g; s|@CONFIG_DISK@|$work/config.img|g" \
        -e "s|@CONSOLE_LOG@|$2|g; s|@PUBLIC_BRIDGE@|$pub_br|g; s|@LAN_BRIDGE@|$lan_br|g; s|@CMDLINE@|$3|g" \
        -e "s|machine='q35'|machine='${MACHINE:-q35}'|; }" \
        deploy/libvirt/oxvpn-router.xml
}
fill "$DOM" "$NETLAB_SERIAL" \
    "--ipv4=$NETLAB_VM_PUB/24 --ipv4-gateway=$NETLAB_SRV_PUB --private-ipv4=$NETLAB_GW/24 --nat" >"$work/domain.xml"
left=$(sed -n '/^<domain/,$p' "$work/domain.xml" | grep -o '@[A-Z_]*@' | sort -u | tr '\n' ' ')
if [ -z "$left" ] && v define --validate "$work/domain.xml" >"$work/define.log" 2>&1; then
    pass "deploy/libvirt/oxvpn-router.xml filled in, valid against libvirt's schema (define --validate), defined as $DOM (machine ${MACHINE:-q35})"
else
    fail "define: ${left:+placeholders left: $left} $(cat "$work/define.log")"; finish
fi
NETLAB_VM_STARTED=$(date +%s.%N)
if v start "$DOM" >"$work/start.log" 2>&1 && [ "$(v domstate "$DOM")" = running ]; then
    NETLAB_QEMU_PID=$(cat "/run/libvirt/qemu/$DOM.pid" 2>/dev/null)
    pass "virsh start: $DOM running (QEMU pid $NETLAB_QEMU_PID)"
else
    fail "virsh start: $(cat "$work/start.log")"; finish
fi

# --- the tunnel and the LAN -----------------------------------------------------------------------
if t=$(netlab_wait_tunnel "$TUNNEL_TIMEOUT"); then
    pass "tunnel up $t s after virsh start: the console log says 'Initialization Sequence Completed'"
else
    fail "no tunnel within ${TUNNEL_TIMEOUT}s"; tail -20 "$NETLAB_SERIAL"
fi
states=$(grep -o "STATE [A-Z_]*" "$NETLAB_SERIAL" | cut -d' ' -f2 | tr '\n' ' ')
[[ $states == *"CONNECTED " ]] && pass "console state lines: $states" || fail "console state lines: $states"
if timeout 20 ip netns exec "$NS_LAN" busybox ping -c 3 -W 2 "$NETLAB_SRV_TUN" >"$work/ping.log" 2>&1 &&
        grep -q ", [1-9] packets received" "$work/ping.log"; then
    pass "ping LAN host $NETLAB_LAN_HOST -> server tunnel address $NETLAB_SRV_TUN through the router: $(grep -o '[0-9]* packets received' "$work/ping.log")"
else
    fail "ping LAN host -> $NETLAB_SRV_TUN: $(tail -2 "$work/ping.log" | tr '\n' ' ')"
fi

# --- stop and forget ------------------------------------------------------------------------------
# The power button: the image polls PWRBTN_STS, runs the tunnel's shutdown (explicit exit notification) and
# powers off through ACPI S5, which libvirt records as a guest shutdown.
SHUTDOWN_TIMEOUT=${SHUTDOWN_TIMEOUT:-15}
if ! v shutdown "$DOM" >"$work/shutdown.log" 2>&1; then
    fail "virsh shutdown refused: $(cat "$work/shutdown.log")"
fi
shutdown_started=$(date +%s.%N)
for _ in $(seq $((SHUTDOWN_TIMEOUT * 5))); do [ "$(v domstate "$DOM" 2>/dev/null)" = running ] || break; sleep 0.2; done
took=$(echo "$(date +%s.%N) - $shutdown_started" | bc)
reason=$(v domstate --reason "$DOM" 2>&1)
gone=1
for _ in $(seq 25); do kill -0 "$NETLAB_QEMU_PID" 2>/dev/null || { gone=; break; }; sleep 0.2; done
cp "$NETLAB_SERIAL" "$work/console-shutdown.log"
said=() missing=()
for re in "acpi: power button armed" "host requests Poweroff: shutting down" \
        "STATE EXITING shutdown requested by the host" "exit: clean shutdown" "acpi: powering off \(S5\)"; do
    if grep -qE "$re" "$NETLAB_SERIAL"; then said+=("$re"); else missing+=("$re"); fi
done
if [ "$reason" = "shut off (shutdown)" ] && [ -z "$gone" ] && [ ${#missing[@]} -eq 0 ]; then
    pass "virsh shutdown (ACPI power button): $reason after $(printf %.1f "$took") s, QEMU pid $NETLAB_QEMU_PID gone; console: $(grep -E "host requests|exit: |powering off" "$NETLAB_SERIAL" | sed 's/^\[[^]]*\] *//' | tr -d '\r' | paste -sd'|' | sed 's/|/; /g')"
else
    fail "virsh shutdown: state '$reason' after $(printf %.1f "$took") s (want 'shut off (shutdown)'), QEMU ${gone:+still }running${missing[*]:+, console lacks: ${missing[*]}}"
    tail -8 "$NETLAB_SERIAL"
fi
# The server's side of the explicit exit notification (the router sends OCC EXIT on shutdown).
for _ in $(seq 10); do grep -q "remote-exit" "$NETLAB_WORK/openvpn.log" 2>/dev/null && break; sleep 0.2; done
if grep -q "remote-exit" "$NETLAB_WORK/openvpn.log" 2>/dev/null; then
    pass "explicit exit notification heard by the server: $(grep -m1 -o "[A-Z0-9]*\[soft,remote-exit\][^,]*" "$NETLAB_WORK/openvpn.log")"
else
    fail "the server did not log the router's explicit exit notification (no 'remote-exit' in its log)"
fi

# Again, for `virsh destroy`.
if [ "$(v domstate "$DOM" 2>/dev/null)" != running ] && v start "$DOM" >"$work/start2.log" 2>&1 &&
        [ "$(v domstate "$DOM")" = running ]; then
    NETLAB_QEMU_PID=$(cat "/run/libvirt/qemu/$DOM.pid" 2>/dev/null)
    pass "virsh start (again, for destroy): $DOM running (QEMU pid $NETLAB_QEMU_PID)"
else
    fail "virsh start (again): $(cat "$work/start2.log" 2>/dev/null) state $(v domstate "$DOM" 2>&1)"
fi
v destroy "$DOM" >"$work/destroy.log" 2>&1
gone=1
for _ in $(seq 50); do kill -0 "$NETLAB_QEMU_PID" 2>/dev/null || { gone=; break; }; sleep 0.2; done
state=$(v domstate "$DOM" 2>&1)
[ "$state" = "shut off" ] && [ -z "$gone" ] && pass "virsh destroy: shut off, QEMU pid $NETLAB_QEMU_PID gone" \
    || fail "virsh destroy: state '$state', QEMU ${gone:+still }running"
v undefine "$DOM" >"$work/undefine.log" 2>&1
domain_gone "$DOM" && [ ! -e "/etc/libvirt/qemu/$DOM.xml" ] \
    && pass "virsh undefine: $DOM not in 'virsh list --all', no QEMU of it, no /etc/libvirt/qemu/$DOM.xml" \
    || fail "virsh undefine: $DOM still known: $(v list --all | grep "$DOM")"

# --- the image's own exit -------------------------------------------------------------------------
# `--help` prints the arguments and ends with exit code 0x10 through isa-debug-exit: QEMU exits, and a
# transient domain (virsh create) disappears.
fill "$DOM-help" "$work/help.log" "--help" >"$work/help.xml"
if v create "$work/help.xml" >"$work/create.log" 2>&1; then
    for _ in $(seq 100); do domain_gone "$DOM-help" && break; sleep 0.2; done
    if domain_gone "$DOM-help" && grep -q "0x10" "$work/help.log"; then
        pass "the image's exit (--help, code 0x10 via isa-debug-exit) ends the domain: $(grep "0x10" "$work/help.log" | tail -1 | tr -d '\r')"
    else
        fail "--help: domain $(v domstate "$DOM-help" 2>&1), console: $(tail -2 "$work/help.log" | tr -d '\r' | tr '\n' ' ')"
    fi
else
    fail "virsh create (--help): $(cat "$work/create.log")"
fi

# --- nothing left ---------------------------------------------------------------------------------
stop_daemons
netlab_down
if [ -n "$host_bridges" ]; then ip link del "$pub_br" 2>/dev/null; ip link del "$lan_br" 2>/dev/null; fi
left=$(ip netns list | grep -c "^$NETLAB-")
procs=$(pgrep -fc "qemu-system.*guest=$DOM")
links=$(ip link show | grep -c "oxl-$$-")
if [ "$left" -eq 0 ] && [ "$procs" -eq 0 ] && [ "$links" -eq 0 ] && [ ${#daemon_pids[@]} -eq 0 ]; then
    pass "nothing left: no QEMU of $DOM*, no $NETLAB-* namespace, no bridge, the test's daemons stopped"
else
    fail "left behind: $left namespaces, $procs QEMU, $links bridges"
fi
finish

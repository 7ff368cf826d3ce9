#!/bin/sh
# Runs inside the lab's dom0 as /test/run.sh (packed per run by scripts/xen/lab.sh, settings in /test/env).
# The network of scripts/netlab.sh, with Xen bridges in place of QEMU's taps:
#
#   ns behind 10.9.0.2 -- ns srv: openvpn server 10.60.0.1, dnsmasq on 10.8.0.1 (behind.oxvpn.test)
#                               | veth
#   dom0: [xenbr0] -- vif<id>.0 ==== domU (first vif: service side)  (second vif: private side) ==== vif<id>.1 -- [xenbr1]
#                                                                                                  | veth
#                                                                         ns lan 192.168.60.250, gateway 192.168.60.1
# Modes (XEN_MODE):
#   oxvpn   the router test: `xl create` the image, wait for the tunnel, ping / DNS / TCP both ways from the LAN
#           namespace, `xl shutdown -w`, the domain must be gone
#   linux   the wiring test: a Linux PVH domU (scripts/xen/domu-init.sh) addresses its two vifs, pings both
#           sides and reads the disk; dom0's namespaces ping it back; then `xl shutdown -w`
#   qubesdb the image with --qubesdb and no --ipv4 against dom0's QubesDB stand-in (qubesdb-standin, vchan port
#           111): it must log the keys, take /qubes-ip as its public address, bring the tunnel up with it, and
#           log a firewall update written at run time
#   create  for debugging a domU: `xl create`, wait WAIT seconds (or until WAIT_FOR appears on its console),
#           dump the console, `xl list`, `xl dmesg`, destroy
#   qubes   the image as a Qubes-style net VM: --qubesdb with the stand-in, the tunnel up; a Linux client domU
#           (vif backend=guest, ip 10.137.0.5) becomes a client port and pings the host behind the server
#           through the tunnel; dom0 then commits a rule that drops ICMP for it (stand-in, SIGUSR1); the client
#           leaves (its port goes), comes back with the same address and its ping through the tunnel must
#           now fail; the image stays up
#   netback the image as a driver domain: `xl create` it (with the server, as oxvpn), then a Linux client
#           domU whose vif has `backend=guest`; it becomes a client port of the router, which answers its pings,
#           then `xl shutdown -w` of the client must tear the vif down (backend directory removed) with the
#           image still alive; then the image's own `xl shutdown -w`
# Output (on the serial console): `XENTEST ok|FAIL <check>: detail`, `XENTEST info ...` on a failure, the guest
# console as `GUEST| ` lines, `XENTEST done`.
. /test/env
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/xen-4.17/bin
NAME=guest
CONSOLE=/var/log/xen/console/guest-$NAME.log
fails=0
ok() { echo "XENTEST ok $*"; }
bad() { echo "XENTEST FAIL $*"; fails=$((fails + 1)); }
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
rate() { awk -v s="$SIZE_MB" -v t="$1" 'BEGIN { printf "%.1f", (t > 0 ? s * 8 / t : 0) }'; }
# Debian's busybox-static runs its own applets before anything on PATH (FEATURE_SH_STANDALONE): iproute2's ip
# (for netns and veth) by its full path.
ip() { /usr/bin/ip "$@"; }
in_ns() { ns=$1; shift; ip netns exec "$ns" "$@"; }

# --- the network ------------------------------------------------------------------------------------------
net_up() {
    sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    for br in xenbr0 xenbr1; do
        ip link add $br type bridge && ip link set $br up
    done
    for ns in srv behind lan; do
        ip netns add $ns
        ip -n $ns link set lo up
        in_ns $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    ip link add pub0 type veth peer name eth0 netns srv
    ip link set pub0 master xenbr0 up
    ip -n srv addr add "$SRV_PUB/24" dev eth0
    ip -n srv link set eth0 up
    ip link add behind0 netns srv type veth peer name eth0 netns behind
    ip -n srv addr add 10.9.0.1/24 dev behind0
    ip -n srv link set behind0 up
    ip -n behind addr add "$BEHIND/24" dev eth0
    ip -n behind link set eth0 up
    ip -n behind route add default via 10.9.0.1
    in_ns srv sysctl -qw net.ipv4.ip_forward=1
    ip link add lan0 type veth peer name eth0 netns lan
    ip link set lan0 master xenbr1 up
    ip -n lan addr add "$LAN_HOST/24" dev eth0
    ip -n lan link set eth0 up
    ip -n lan route add default via "$GW"
}

# The OpenVPN server (the config test-xen.sh wrote with scripts/interop/server.sh), then dnsmasq on its
# tunnel address, as netlab_services does.
services_up() {
    mkdir -p /dev/net
    [ -e /dev/net/tun ] || mknod /dev/net/tun c 10 200
    in_ns srv openvpn --config /test/server.conf >/tmp/openvpn.log 2>&1 &
    for _ in $(seq 100); do grep -q "Initialization Sequence Completed" /tmp/openvpn.log && break; sleep 0.1; done
    if ! grep -q "Initialization Sequence Completed" /tmp/openvpn.log; then
        bad "openvpn server: did not start: $(tail -3 /tmp/openvpn.log | tr '\n' ' ')"; return 1
    fi
    in_ns srv dnsmasq --keep-in-foreground --no-resolv --no-hosts --pid-file= --user=root \
        --listen-address="$SRV_TUN" --bind-dynamic --address="/behind.oxvpn.test/$BEHIND" \
        --log-queries --log-facility=/tmp/dnsmasq.log &
    return 0
}

# --- the domU -----------------------------------------------------------------------------------------------
guest_create() {
    {
        echo "name = \"$NAME\""
        echo "type = \"pvh\""
        echo "kernel = \"$GUEST_KERNEL\""
        [ -n "${GUEST_RAMDISK:-}" ] && echo "ramdisk = \"$GUEST_RAMDISK\""
        echo "extra = \"$GUEST_EXTRA\""
        echo "memory = ${GUEST_MEM:-64}"
        echo "vcpus = 1"
        # Xen traps RDTSC/RDTSCP when it thinks the TSC unreliable (it does under QEMU TCG), and QEMU 7.2's
        # nested SVM reports an RDTSCP exit as RDTSC without a next-RIP, which Xen cannot step over
        # ("SVM Insn len emulation failed"): the guest crashes. Native TSC means no trap.
        echo "tsc_mode = \"native\""
        echo "vif = [ 'bridge=xenbr0,mac=$PUB_MAC,script=oxv-vif', 'bridge=xenbr1,mac=$LAN_MAC,script=oxv-vif' ]"
        [ -n "${GUEST_DISK:-}" ] &&
            echo "disk = [ 'format=raw,vdev=xvda,access=ro,backendtype=phy,script=oxv-block,target=$GUEST_DISK' ]"
        echo "on_poweroff = \"destroy\""
        echo "on_reboot = \"destroy\""
        echo "on_crash = \"destroy\""
    } > /tmp/guest.cfg
    : > "$CONSOLE"
    created_at=$(now)
    if xl create ${XL_CREATE_FLAGS:-} /tmp/guest.cfg >/tmp/xl-create.log 2>&1; then
        ok "xl create: domain $(xl domid $NAME) created in $(since "$created_at") s ($(basename "$GUEST_KERNEL"), ${GUEST_MEM:-64} MB)"
        return 0
    fi
    bad "xl create: $(tr '\n' ' ' < /tmp/xl-create.log)"
    return 1
}

# wait_console PATTERN SECONDS: until the guest console holds PATTERN; fails at once if the domain is gone.
# $why says which: "within N s" or "the domain ended after N s".
wait_console() {
    local t0   # its own clock: the caller's $t0 (e.g. its xl create) stays
    t0=$(now)
    while ! grep -q -- "$1" "$CONSOLE" 2>/dev/null; do
        if ! xl domid $NAME >/dev/null 2>&1; then
            sleep 0.5   # xenconsoled's last reads of the ring
            grep -q -- "$1" "$CONSOLE" 2>/dev/null && return 0
            # xl itself fails now and then in the lab (it once segfaulted): gone only if it says so twice.
            xl domid $NAME >/dev/null 2>&1 && continue
            why="the domain ended after $(since "$t0") s"; return 1
        fi
        [ "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print (b - a >= 0 + '"$2"') }')" = 1 ] && { why="within $2 s"; return 1; }
        sleep 0.2
    done
}

# The domain's state for a failure report: xl list, the console's size, Xen's log tail.
guest_state() {
    echo "XENTEST info xl list: $(xl list 2>&1 | tail -n +2 | tr -s ' ' | tr '\n' ';')"
    echo "XENTEST info guest console: $(wc -c < "$CONSOLE" 2>/dev/null || echo 0) bytes"
    # Xen's log: guest_loglvl=all lets a domU's port 0xe9 writes through, as "(d1) ..." lines.
    xl dmesg 2>&1 | tail -n "${DMESG_LINES:-25}" | sed 's/^/XENTEST xl-dmesg| /'
    # Where a live domain's vCPU is: registers and the stack (xenctx; symbols from the ELF's `nm` when lab.sh
    # could make /test/kernel.map).
    map=; [ -s /test/kernel.map ] && map="-s /test/kernel.map"
    id=$(xl domid $NAME 2>/dev/null) && xenctx $map -a -S "$id" 0 2>&1 | head -n 40 | sed 's/^/XENTEST xenctx| /'
    for l in /sys/class/net/*; do
        echo "XENTEST info link ${l##*/}: $(cat "$l/operstate") rx $(cat "$l/statistics/rx_packets") tx $(cat "$l/statistics/tx_packets") drop rx/tx $(cat "$l/statistics/rx_dropped")/$(cat "$l/statistics/tx_dropped")$([ -e "$l/brport" ] && echo " port of $(basename "$(readlink "$l/master")") state $(cat "$l/brport/state")")"
    done
    for ns in srv lan; do echo "XENTEST info ns $ns: $(ip -n $ns -s -o link show eth0 | tr -s ' ' | cut -c1-300) neigh: $(ip -n $ns neigh | tr '\n' ';')"; done
    sed 's/^/XENTEST hotplug| /' /var/log/xen/hotplug.log 2>/dev/null
}

dump_console() { sed 's/^/GUEST| /' "$CONSOLE" 2>/dev/null; echo; }

guest_shutdown() {
    t0=$(now)
    timeout "${SHUTDOWN_TIMEOUT:-30}" xl shutdown -w $NAME >/tmp/xl-shutdown.log 2>&1
    # xl returns when the domain has shut down; libxl then destroys it, which took over 5 s once under a
    # double load (dom0 under TCG, a second QEMU beside it): allow 30 s.
    for _ in $(seq 150); do xl domid $NAME >/dev/null 2>&1 || break; sleep 0.2; done
    if ! xl domid $NAME >/dev/null 2>&1; then
        ok "xl shutdown: domain gone after $(since "$t0") s"
    else
        bad "xl shutdown: $(tr '\n' ' ' < /tmp/xl-shutdown.log) ($(xl list 2>&1 | grep -w $NAME | tr -s ' '))"
        xl destroy $NAME >/dev/null 2>&1
    fi
}

# ping_ok NS DEST
# qdb_update [2]: has the stand-in send its UPDATE set (SIGUSR1; with 2: UPDATE2, SIGUSR2), again every 5 s
# until its log says it did (a stand-in that never says so is reported with where it sleeps, for the next
# reader of the log).
qdb_update() {
    local i sig=USR1 tag=update
    [ "${1:-}" = 2 ] && sig=USR2 tag=update2
    for i in 1 2 3 4 5 6; do
        kill -$sig "$qdb_pid" 2>/dev/null
        for _ in $(seq 50); do grep -q "^QDB $tag " /tmp/qdb.log && return 0; sleep 0.1; done
        echo "XENTEST info qubesdb stand-in: no 'QDB $tag' 5 s after SIG$sig #$i (wchan $(cat /proc/$qdb_pid/wchan 2>/dev/null), state $(awk '{print $3}' /proc/$qdb_pid/stat 2>/dev/null))"
    done
    return 1
}
ping_ok() { in_ns "$1" timeout 20 ping -c 3 -W 2 "$2" >/tmp/ping.log 2>&1 && grep -q ", [1-9] packets received" /tmp/ping.log; }

# --- modes --------------------------------------------------------------------------------------------------
mode_oxvpn() {
    services_up || return
    guest_create || return
    # STANDIN=1 (lab.sh --standin): a Linux domU routes without a tunnel, to check these checks; the server
    # routes the LAN back to it.
    up=${TUNNEL_PATTERN:-Initialization Sequence Completed}
    [ -n "${STANDIN:-}" ] && ip -n srv route add 192.168.60.0/24 via "$VM_PUB"
    if wait_console "$up" "${TUNNEL_TIMEOUT:-60}"; then
        ok "tunnel up: '$up' on the guest console $(since "$created_at") s after xl create"
    else
        bad "tunnel: no '$up' on the console ($why)"
        guest_state; return
    fi
    ping_ok lan "$SRV_TUN" && ok "ping LAN host -> server tunnel address $SRV_TUN" || bad "ping LAN host -> $SRV_TUN"
    ping_ok lan "$BEHIND" && ok "ping LAN host -> host behind the server $BEHIND" || bad "ping LAN host -> $BEHIND"
    # The LAN host asks its gateway; dnsmasq (on the server's tunnel address) must see the query come from the
    # tunnel. The stand-in has no forwarder: the LAN host asks dnsmasq itself, routed through the stand-in.
    dns=$GW from=10.8.0.
    [ -n "${STANDIN:-}" ] && dns=$SRV_TUN from=$LAN_HOST
    answer=$(in_ns lan timeout 20 nslookup behind.oxvpn.test "$dns" 2>&1)
    if echo "$answer" | grep -q "Address.*$BEHIND" && grep -q "query\[A\] behind.oxvpn.test from $from" /tmp/dnsmasq.log; then
        ok "DNS: LAN host asked $dns, dnsmasq behind the tunnel answered behind.oxvpn.test = $BEHIND (query from $from)"
    else
        bad "DNS through the tunnel: $(echo "$answer" | tr '\n' ' ')"
    fi
    # TCP both ways over HTTP, SHA-256 compared: busybox httpd behind the server serves the file (download) and
    # a CGI that answers the hash of a POST body (upload). The file is base64 text: busybox wget's
    # --post-file stops at a NUL byte.
    mkdir -p /tmp/www/cgi-bin
    head -c $(((SIZE_MB << 20) * 3 / 4 + 4096)) /dev/urandom | base64 | head -c $((SIZE_MB << 20)) > /tmp/www/blob
    printf '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\nhead -c "$CONTENT_LENGTH" | sha256sum | cut -d" " -f1\n' \
        > /tmp/www/cgi-bin/sink
    chmod +x /tmp/www/cgi-bin/sink
    want=$(sha256sum < /tmp/www/blob | cut -d' ' -f1)
    in_ns behind httpd -f -p "$BEHIND:8080" -h /tmp/www &
    httpd_pid=$!
    sleep 0.5
    t0=$(now)
    got=$(in_ns lan timeout "$TRANSFER_BUDGET" wget -q -O - "http://$BEHIND:8080/blob" | sha256sum | cut -d' ' -f1)
    secs=$(since "$t0")
    [ "$got" = "$want" ] && ok "TCP download $SIZE_MB MB behind -> LAN in $secs s ($(rate "$secs") Mbit/s), sha256 equal" \
        || bad "TCP download $SIZE_MB MB: sha256 differs or transfer cut ($secs s)"
    t0=$(now)
    got=$(in_ns lan timeout "$TRANSFER_BUDGET" wget -q -O - --post-file /tmp/www/blob "http://$BEHIND:8080/cgi-bin/sink" 2>/tmp/upload.err)
    code=$?
    secs=$(since "$t0")
    # On failure: wget's status and words, for the rare cut seen here (about 1 run in 12, 0.2 s in).
    [ "$got" = "$want" ] && ok "TCP upload $SIZE_MB MB LAN -> behind in $secs s ($(rate "$secs") Mbit/s), sha256 equal" \
        || bad "TCP upload $SIZE_MB MB: sha256 differs or transfer cut ($secs s, wget status $code: $(tr '\n' ' ' < /tmp/upload.err | cut -c1-200), got '${got:0:64}')"
    kill $httpd_pid 2>/dev/null
    guest_shutdown
}

mode_linux() {
    guest_create || return
    if wait_console "DOMU done" "${BOOT_TIMEOUT:-60}"; then
        ok "Linux domU ran its checks $(since "$created_at") s after xl create"
    else
        bad "Linux domU: no 'DOMU done' ($why)"; guest_state; return
    fi
    grep "^DOMU ok" "$CONSOLE" | sed 's/^DOMU ok /XENTEST ok domU: /'
    grep "^DOMU FAIL" "$CONSOLE" | while read -r line; do echo "XENTEST FAIL domU: ${line#DOMU FAIL }"; done
    fails=$((fails + $(grep -c "^DOMU FAIL" "$CONSOLE")))
    grep -q "^DOMU FAIL" "$CONSOLE" && guest_state
    ping_ok srv "$VM_PUB" && ok "ping server namespace -> domU $VM_PUB over xenbr0" || bad "ping srv -> domU $VM_PUB"
    ping_ok lan "$GW" && ok "ping LAN namespace -> domU $GW over xenbr1" || bad "ping lan -> domU $GW"
    guest_shutdown
}

mode_qubesdb() {
    client=$LAN_HOST fw=/qubes-firewall/$LAN_HOST
    printf '%s\n' "/qubes-ip=$VM_PUB" /qubes-netmask=255.255.255.0 "/qubes-gateway=$SRV_PUB" \
        "/qubes-primary-dns=$SRV_PUB" /qubes-secondary-dns=10.139.1.2 "/qubes-netvm-primary-dns=10.139.1.1" \
        "$fw/0000=action=accept proto=tcp dstports=8080-8080" "$fw/policy=drop" "$fw=" > /tmp/qdb.keys
    # What dom0 does on a rule change: drop the client's rules, write the new ones, mark them complete.
    printf '%s\n' "-$fw/" "$fw/0000=action=drop proto=udp dstports=53-53" "$fw/policy=accept" "$fw=" > /tmp/qdb.update
    services_up || return
    # Paused, so that the stand-in serves the vchan before the image looks for it.
    XL_CREATE_FLAGS=-p guest_create || return
    domid=$(xl domid $NAME)
    qubesdb-standin "$domid" /tmp/qdb.keys /tmp/qdb.update > /tmp/qdb.log 2>&1 &
    qdb_pid=$!
    for _ in $(seq 50); do grep -q "^QDB serving" /tmp/qdb.log && break; sleep 0.1; done
    grep -q "^QDB serving" /tmp/qdb.log || { bad "qubesdb stand-in: $(tr '\n' ' ' < /tmp/qdb.log)"; xl destroy $NAME; return; }
    xl unpause $NAME
    if wait_console "qubesdb: initial dump complete" "${QDB_TIMEOUT:-60}"; then
        ok "QubesDB: $(grep -o 'initial dump complete ([0-9]* keys)' "$CONSOLE") on the console $(since "$created_at") s after xl create"
    else
        bad "QubesDB: no initial dump on the console ($why)"; guest_state; kill $qdb_pid; return
    fi
    grep -q "qubesdb: /qubes-ip = \"$VM_PUB\"" "$CONSOLE" && grep -q "qubesdb: /qubes-gateway = \"$SRV_PUB\"" "$CONSOLE" \
        && ok "QubesDB keys logged: /qubes-ip = $VM_PUB, /qubes-gateway = $SRV_PUB" || bad "QubesDB keys not logged"
    grep -q "qubesdb: firewall $client 0000: action=accept proto=tcp dstports=8080-8080" "$CONSOLE" \
        && ok "QubesDB firewall rules for $client in the dump" || bad "QubesDB: the dump's firewall rules not logged"
    grep -q "public $VM_PUB/24 gateway $SRV_PUB (static)" "$CONSOLE" \
        && ok "public address from /qubes-ip: $VM_PUB/24 gateway $SRV_PUB" || bad "public address: not $VM_PUB/24 from QubesDB"
    up="Initialization Sequence Completed"
    if wait_console "$up" "${TUNNEL_TIMEOUT:-60}"; then
        ok "tunnel up with the QubesDB address: '$up' $(since "$created_at") s after xl create"
        ping_ok lan "$SRV_TUN" && ok "ping LAN host -> server tunnel address $SRV_TUN" || bad "ping LAN host -> $SRV_TUN"
    else
        bad "tunnel: no '$up' on the console ($why)"; guest_state
    fi
    t0=$(now)
    qdb_update
    if wait_console "qubesdb: firewall $client 0000: action=drop proto=udp dstports=53-53" 30; then
        ok "run-time firewall update for $client on the console $(since "$t0") s after dom0 wrote it"
    else
        bad "run-time firewall update not on the console ($why)"
    fi
    sleep 1
    grep -q "^QDB OK $fw\$" /tmp/qdb.log && ok "the image acknowledged the update (RESP_OK $fw)" || bad "no RESP_OK for $fw"
    guest_shutdown
    kill $qdb_pid 2>/dev/null
    sed 's/^/XENTEST qdb| /' /tmp/qdb.log
}

mode_create() {
    [ -n "${WITH_SERVER:-}" ] && services_up
    guest_create || return
    if [ -n "${WAIT_FOR:-}" ]; then
        wait_console "$WAIT_FOR" "${WAIT:-10}" && ok "'$WAIT_FOR' on the console $(since "$created_at") s after xl create" \
            || bad "no '$WAIT_FOR' on the console ($why)"
    else
        # WAIT seconds, or less if the domain ends first.
        wait_console "XENLAB-NEVER-PRINTED" "${WAIT:-10}" || echo "XENTEST info waited: $why"
    fi
    DMESG_LINES=${DMESG_LINES:-60} guest_state
    if [ -n "${SHUTDOWN:-}" ]; then guest_shutdown; else xl destroy $NAME >/dev/null 2>&1; fi
}

# The client domU of netback mode: the lab's Linux PVH domU, its one vif served by the image.
CLIENT=client
CLIENT_CONSOLE=/var/log/xen/console/guest-$CLIENT.log
CLIENT_IP=10.137.0.5
CLIENT_GW=10.137.0.1

# client_wait PATTERN SECONDS: until the client's console holds PATTERN.
client_wait() {
    local t0   # its own clock: the caller's $t0 (e.g. its xl create) stays
    t0=$(now)
    while ! grep -q -- "$1" "$CLIENT_CONSOLE" 2>/dev/null; do
        xl domid $CLIENT >/dev/null 2>&1 || { sleep 0.5; grep -q -- "$1" "$CLIENT_CONSOLE" 2>/dev/null; return; }
        [ "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print (b - a >= 0 + '"$2"') }')" = 1 ] && return 1
        sleep 0.2
    done
}

# client_not_done: the client did not finish its checks ($t0: its xl create): fail, saying whether its domain
# is still there, and show the end of its console (kernel log included: a domU that died says why there).
client_not_done() {
    bad "client: no 'DOMU done' ($(since "$t0") s after xl create; $(xl domid $CLIENT >/dev/null 2>&1 && echo "still running" || echo "the domain is gone"))"
    tail -n 30 "$CLIENT_CONSOLE" 2>/dev/null | sed 's/^/XENTEST info client console| /'
}

# client_wait_count PATTERN COUNT SECONDS: until the client's console holds COUNT lines matching PATTERN.
client_wait_count() {
    local t0   # its own clock: the caller's $t0 (e.g. its xl create) stays
    t0=$(now)
    while [ "$(grep -c -- "$1" "$CLIENT_CONSOLE" 2>/dev/null)" -lt "$2" ]; do
        [ "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print (b - a >= 0 + '"$3"') }')" = 1 ] && return 1
        sleep 0.2
    done
}

mode_netback() {
    services_up || return
    guest_create || return
    if wait_console "watching backend/vif" "${BOOT_TIMEOUT:-30}"; then
        ok "the image watches backend/vif $(since "$created_at") s after xl create"
    else
        bad "no 'watching backend/vif' on the image's console ($why)"; guest_state; return
    fi
    {
        echo "name = \"$CLIENT\""
        echo "type = \"pvh\""
        echo "kernel = \"$CLIENT_KERNEL\""
        echo "ramdisk = \"$CLIENT_RAMDISK\""
        echo "extra = \"console=hvc0 quiet oxv.net=eth0:$CLIENT_IP/24 oxv.gw=$CLIENT_GW oxv.ping=$CLIENT_GW oxv.stay=1\""
        echo "memory = 256"
        echo "vcpus = 1"
        echo "tsc_mode = \"native\""
        echo "vif = [ 'backend=$NAME,mac=00:16:3e:00:00:05,ip=$CLIENT_IP' ]"
        echo "on_poweroff = \"destroy\""
        echo "on_reboot = \"destroy\""
        echo "on_crash = \"destroy\""
    } > /tmp/client.cfg
    : > "$CLIENT_CONSOLE"
    t0=$(now)
    if xl create /tmp/client.cfg >/tmp/xl-client.log 2>&1; then
        ok "xl create client (vif backend=$NAME): domain $(xl domid $CLIENT) in $(since "$t0") s"
    else
        bad "xl create client: $(tr '\n' ' ' < /tmp/xl-client.log)"; guest_state; return
    fi
    be=/local/domain/$(xl domid $NAME)/backend/vif/$(xl domid $CLIENT)/0
    echo "XENTEST info backend $be: $(xenstore-ls "$be" 2>&1 | tr -s ' ' | tr '\n' ';' | cut -c1-600)"
    if client_wait "DOMU done" "${BOOT_TIMEOUT:-60}"; then
        ok "client ran its checks $(since "$t0") s after xl create"
    else
        client_not_done
    fi
    sed 's/^/CLIENT| /' "$CLIENT_CONSOLE" | grep -v "^CLIENT| \[" | head -n 40
    grep "^DOMU ok" "$CLIENT_CONSOLE" | sed 's/^DOMU ok /XENTEST ok client: /'
    grep "^DOMU FAIL" "$CLIENT_CONSOLE" | while read -r line; do echo "XENTEST FAIL client: ${line#DOMU FAIL }"; done
    fails=$((fails + $(grep -c "^DOMU FAIL" "$CLIENT_CONSOLE")))
    grep -q "netback vif.*: connected" "$CONSOLE" && ok "image: $(grep -o "netback vif.*: connected.*" "$CONSOLE" | head -1)" \
        || bad "image: no 'netback ... connected' on its console"
    grep -q "netback vif.*: client $CLIENT_IP gateway" "$CONSOLE" && ok "image: $(grep -o "netback vif.*: client $CLIENT_IP gateway.*" "$CONSOLE" | tail -1)" \
        || bad "image: the client's vif did not become a router port"
    t0=$(now)
    timeout 40 xl shutdown -w $CLIENT >/tmp/xl-client-shutdown.log 2>&1
    for _ in $(seq 50); do xl domid $CLIENT >/dev/null 2>&1 || break; sleep 0.1; done
    if xl domid $CLIENT >/dev/null 2>&1; then
        bad "xl shutdown client: $(tr '\n' ' ' < /tmp/xl-client-shutdown.log)"; xl destroy $CLIENT >/dev/null 2>&1
    else
        ok "xl shutdown client: gone after $(since "$t0") s ($(tr '\n' ' ' < /tmp/xl-client-shutdown.log | cut -c1-200))"
    fi
    sleep 1
    if xenstore-exists "$be" 2>/dev/null; then bad "backend directory $be still there"; else ok "backend directory removed"; fi
    grep -q "netback vif.*gone" "$CONSOLE" && ok "image: $(grep -o "netback vif.*gone.*" "$CONSOLE" | tail -1)" \
        || bad "image: the vif was not torn down"
    xl domid $NAME >/dev/null 2>&1 && ok "the image is still alive after the client left" || bad "the image died"
    guest_shutdown
}

# client_boot PINGS [WATCH]: `xl create` the client domU (vif backend=the image, ip $CLIENT_IP, gateway
# $CLIENT_GW) pinging PINGS, and wait for its checks; with WATCH it then pings WATCH once a second for as long
# as it runs (`DOMU tick` lines).
client_boot() {
    {
        echo "name = \"$CLIENT\""
        echo "type = \"pvh\""
        echo "kernel = \"$CLIENT_KERNEL\""
        echo "ramdisk = \"$CLIENT_RAMDISK\""
        echo "extra = \"console=hvc0 quiet oxv.net=eth0:$CLIENT_IP/24 oxv.gw=$CLIENT_GW oxv.ping=$1 oxv.stay=1${2:+ oxv.watch=$2}\""
        echo "memory = 256"
        echo "vcpus = 1"
        echo "tsc_mode = \"native\""
        echo "vif = [ 'backend=$NAME,mac=00:16:3e:00:00:05,ip=$CLIENT_IP' ]"
        echo "on_poweroff = \"destroy\""
        echo "on_reboot = \"destroy\""
        echo "on_crash = \"destroy\""
    } > /tmp/client.cfg
    : > "$CLIENT_CONSOLE"
    t0=$(now)
    # A second create right after a domain left can fail to unpack the kernel (dom0 short of memory for
    # the XZ decompressor): free the page cache and try again.
    sync; echo 3 > /proc/sys/vm/drop_caches
    if ! xl create /tmp/client.cfg >/tmp/xl-client.log 2>&1; then
        echo "XENTEST info xl create client failed once: $(grep -v 'tsc mode' /tmp/xl-client.log | tr '\n' ' ' | cut -c1-300)"
        # It may have failed after the domain was built (it runs): keep that one.
        if ! xl domid $CLIENT >/dev/null 2>&1; then
            sleep 2; sync; echo 3 > /proc/sys/vm/drop_caches
            xl create /tmp/client.cfg >/tmp/xl-client.log 2>&1 || { bad "xl create client: $(tr '\n' ' ' < /tmp/xl-client.log | cut -c1-300)"; return 1; }
        fi
    fi
    if client_wait "DOMU done" "${BOOT_TIMEOUT:-60}"; then
        ok "client (vif backend=$NAME) ran its checks $(since "$t0") s after xl create"
    else
        client_not_done; return 1
    fi
    sed 's/^/CLIENT| /' "$CLIENT_CONSOLE" | grep "^CLIENT| DOMU"
}

# client_down: `xl shutdown -w` the client; the image must drop its port.
client_down() {
    t0=$(now)
    timeout 40 xl shutdown -w $CLIENT >/tmp/xl-client-shutdown.log 2>&1
    for _ in $(seq 50); do xl domid $CLIENT >/dev/null 2>&1 || break; sleep 0.1; done
    if xl domid $CLIENT >/dev/null 2>&1; then
        bad "xl shutdown client"; xl destroy $CLIENT >/dev/null 2>&1
    else
        ok "xl shutdown client: gone after $(since "$t0") s"
    fi
    n=$(grep -c "netback vif.*gone.*removed" "$CONSOLE")
    for _ in $(seq 30); do [ "$n" -ge "$1" ] && break; sleep 0.2; n=$(grep -c "netback vif.*gone.*removed" "$CONSOLE"); done
    [ "$n" -ge "$1" ] && ok "image: $(grep -o "netback vif.*gone.*" "$CONSOLE" | tail -1)" || bad "image: the client's port was not removed"
}

mode_qubes() {
    fw=/qubes-firewall/$CLIENT_IP
    printf '%s\n' "/qubes-ip=$VM_PUB" /qubes-netmask=255.255.255.0 "/qubes-gateway=$SRV_PUB" \
        "/qubes-primary-dns=$SRV_PUB" /qubes-secondary-dns=10.139.1.2 "/qubes-netvm-primary-dns=10.139.1.1" \
        "$fw/0000=action=accept proto=icmp" "$fw/policy=drop" "$fw=" > /tmp/qdb.keys
    printf '%s\n' "-$fw/" "$fw/0000=action=drop proto=icmp" "$fw/policy=accept" "$fw=" > /tmp/qdb.update
    # A second update whose first rule would let ICMP through but whose second does not parse: the whole set
    # is refused, the client fails closed (policy drop) and dom0 hears why in /qubes-iptables-error.
    printf '%s\n' "-$fw/" "$fw/0000=action=accept proto=icmp" "$fw/0001=action=allow proto=tcp" "$fw/policy=accept" "$fw=" > /tmp/qdb.update2
    services_up || return
    XL_CREATE_FLAGS=-p guest_create || return
    qubesdb-standin "$(xl domid $NAME)" /tmp/qdb.keys /tmp/qdb.update /tmp/qdb.update2 > /tmp/qdb.log 2>&1 &
    qdb_pid=$!
    for _ in $(seq 50); do grep -q "^QDB serving" /tmp/qdb.log && break; sleep 0.1; done
    grep -q "^QDB serving" /tmp/qdb.log || { bad "qubesdb stand-in: $(tr '\n' ' ' < /tmp/qdb.log)"; xl destroy $NAME; return; }
    xl unpause $NAME
    up="Initialization Sequence Completed"
    if wait_console "$up" "${TUNNEL_TIMEOUT:-60}"; then
        ok "tunnel up (QubesDB uplink): '$up' $(since "$created_at") s after xl create"
    else
        bad "tunnel: no '$up' on the console ($why)"; guest_state; kill $qdb_pid; return
    fi
    grep -q "qubesdb: initial dump complete (9 keys)" "$CONSOLE" && grep -q "qubesdb: /qubes-ip = \"$VM_PUB\"" "$CONSOLE" \
        && ok "QubesDB: initial dump of 9 keys over vchan, /qubes-ip = $VM_PUB logged" || bad "QubesDB: no initial dump of 9 keys"
    grep -q "public $VM_PUB/24 gateway $SRV_PUB (static)" "$CONSOLE" \
        && ok "public address from /qubes-ip, /qubes-gateway: $VM_PUB/24 gateway $SRV_PUB" || bad "public address: not $VM_PUB/24 from QubesDB"
    client_boot "$CLIENT_GW,$BEHIND" "$BEHIND" || { guest_state; kill $qdb_pid; return; }
    grep -q "^DOMU ok ping $BEHIND" "$CLIENT_CONSOLE" && ok "client $CLIENT_IP -> $BEHIND through the tunnel: ping answered" \
        || bad "client ping $BEHIND through the tunnel: $(grep "^DOMU FAIL" "$CLIENT_CONSOLE" | tr '\n' ' ')"
    grep -q "^DOMU ok ping $CLIENT_GW" "$CLIENT_CONSOLE" && ok "client -> its gateway $CLIENT_GW: ping answered" || bad "client ping $CLIENT_GW"
    grep -q "netback vif.*: client $CLIENT_IP gateway $CLIENT_GW: port" "$CONSOLE" \
        && ok "image: $(grep -o "netback vif.*: client $CLIENT_IP.*" "$CONSOLE" | head -1)" || bad "image: the vif did not become a port"
    grep -q "firewall: $CLIENT_IP: policy drop with 1 rule(s) from QubesDB" "$CONSOLE" \
        && ok "image: QubesDB rules applied to the port (policy drop, accept icmp)" || bad "image: QubesDB rules not applied on attach"
    # The running client pings the host behind once a second: answered under the first rules, then dropped
    # once dom0 commits the new ones, without the client going away.
    client_wait "DOMU tick .* ok $BEHIND" 15 || bad "client: no answered ping tick before the update"
    t0=$(now)
    qdb_update
    if wait_console "firewall: $CLIENT_IP: policy accept with 1 rule(s) from QubesDB" 30; then
        ok "run-time rule (action=drop proto=icmp) applied to the live port $(since "$t0") s after dom0 committed it"
    else
        bad "run-time rule not applied ($why)"
    fi
    sleep 0.5
    grep -q "^QDB OK $fw\$" /tmp/qdb.log && ok "the image acknowledged the update to dom0 (RESP_OK $fw)" || bad "no RESP_OK for $fw"
    oks_before=$(grep -c "^DOMU tick .* ok $BEHIND" "$CLIENT_CONSOLE")
    # Ticks after the rule was applied (a tick in flight may still pass): then three in a row must fail.
    sleep 1.5
    seen=$(grep -c "^DOMU tick" "$CLIENT_CONSOLE")
    client_wait_count "DOMU tick" $((seen + 3)) 15
    after=$(grep "^DOMU tick" "$CLIENT_CONSOLE" | tail -n +$((seen + 1)) | head -3 | awk '{ print $4 }' | tr '\n' ' ')
    [ "$after" = "fail fail fail " ] && [ "$oks_before" -ge 1 ] \
        && ok "live client: $oks_before ping(s) to $BEHIND answered before the update, then three in a row dropped after it" \
        || bad "live client pings around the update: $oks_before answered before, then '$after'"
    sleep 1.2
    grep -o "clients: spoofed_dropped=.*" "$CONSOLE" | tail -1 | grep -qv "firewall_dropped=0 " \
        && ok "image: $(grep -o "clients: spoofed_dropped=.*" "$CONSOLE" | tail -1)" || bad "image: no firewall drops counted"
    # A rule set that does not parse: refused whole, fail closed, reported to dom0.
    qdb_update 2
    if wait_console "client $CLIENT_IP gets policy drop" 30; then
        ok "a bad rule set is refused: $(grep -o "firewall: $CLIENT_IP: rule.*gets policy drop" "$CONSOLE" | tail -1)"
    else
        bad "bad rule set: no refusal on the console ($why)"
    fi
    for _ in $(seq 30); do grep -q "^QDB VM wrote /qubes-iptables-error = " /tmp/qdb.log && break; sleep 0.2; done
    grep -q "^QDB VM wrote /qubes-iptables-error = .*$CLIENT_IP" /tmp/qdb.log \
        && ok "dom0 told: $(grep -m1 '^QDB VM wrote /qubes-iptables-error' /tmp/qdb.log | cut -c1-160)" \
        || bad "no /qubes-iptables-error written to dom0: $(grep '^QDB VM wrote' /tmp/qdb.log | tr '\n' ' ')"
    seen=$(grep -c "^DOMU tick" "$CLIENT_CONSOLE")
    client_wait_count "DOMU tick" $((seen + 2)) 10
    after=$(grep "^DOMU tick" "$CLIENT_CONSOLE" | tail -n +$((seen + 1)) | head -2 | awk '{ print $4 }' | tr '\n' ' ')
    [ "$after" = "fail fail " ] && ok "fail closed: the client's pings stay dropped although the refused set's first rule accepts ICMP" \
        || bad "after the refused rule set the client's pings: '$after'"
    client_down 1
    xl domid $NAME >/dev/null 2>&1 && ok "the image is still alive after the client left" || bad "the image died"
    guest_shutdown
    kill $qdb_pid 2>/dev/null
}

echo "XENTEST start mode $XEN_MODE"
net_up
mode_"$XEN_MODE"
echo "XENTEST console begin"
dump_console
echo "XENTEST console end"
[ "$fails" -gt 0 ] && [ -f /tmp/openvpn.log ] && tail -n 15 /tmp/openvpn.log | sed 's/^/XENTEST openvpn| /'
echo "XENTEST done fails=$fails"

#!/usr/bin/env bash
# build/ovpn-keys against the real binaries, both ways (issue 14):
# - `openvpn --genkey` outputs (secret, tls-crypt-v2-server, tls-crypt-v2-client with user metadata, auth-token)
#   read by `ovpn-keys show` (the client key's metadata decoded) and by the engine (build/config-disk);
# - bad input refused with the documented exit codes (truncated key, wrong kind of key, bad base64, overwrite),
#   secrets written 0600;
# - an ovpn-keys PKI and `server-config` run Debian's `openvpn` 2.6 server (namespace oxv-keys-srv); Debian's
#   `openvpn` client (namespace oxv-keys-cli, a real tun device) connects with an `ovpn-keys profile` and pings
#   10.8.0.1, and the server's tls-crypt-v2-verify script receives the metadata we wrapped (the user name; a
#   `genkey tls-crypt-v2-client --metadata timestamp:T` key); build/ovpn-ping works with a profile too; a
#   revoked client is refused by the server (crl-verify of the PKI's crl.pem);
# - tls-crypt and tls-auth with an `ovpn-keys genkey secret` key, Debian's server and client;
# - `server-config --proto tcp` with a TCP profile: Debian's server and client, and build/ovpn-ping;
# - Ed25519 and RSA 2048 PKIs: Debian's server and client, and build/ovpn-ping;
# - the router image boots with a config disk made from a profile and passes traffic (scripts/netlab.sh with
#   the server's PKI files replaced by ovpn-keys outputs).
# One result line per check; non-zero exit if any fails.
set -u
cd "$(dirname "$0")/.."
root=$PWD
NS_SRV=oxv-keys-srv
NS_CLI=oxv-keys-cli
SRV_ADDR=10.98.0.1
CLI_ADDR=10.98.0.2

for bin in ovpn-keys ovpn-ping config-disk; do
    [ -x "build/$bin" ] || { echo "keys: FAILED (build/$bin missing; run make tools)"; exit 1; }
done
command -v openvpn >/dev/null || { echo "keys: FAILED (openvpn not installed)"; exit 1; }
K=$root/build/ovpn-keys

work=$(mktemp -d /tmp/oxv-keys.XXXXXX)
server_pid= client_pid=
NETLAB=oxv-keys-$$
netlab_started=
cleanup() {
    [ -n "$client_pid" ] && kill "$client_pid" 2>/dev/null && wait "$client_pid" 2>/dev/null
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    [ -n "$netlab_started" ] && netlab_down
    ip netns del $NS_SRV 2>/dev/null
    ip netns del $NS_CLI 2>/dev/null
    if [ -n "${KEEP_WORK:-}" ]; then echo "keys: logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0 failed=0
ok() { echo "keys $1: ok${2:+ ($2)}"; passed=$((passed + 1)); }
fail() { echo "keys $1: FAILED${2:+ ($2)}"; failed=$((failed + 1)); }
# check NAME DETAIL CMD...: ok if CMD succeeds.
check() { local name=$1 detail=$2; shift 2; if "$@"; then ok "$name" "$detail"; else fail "$name" "$detail"; fi; }

cd "$work"

# --- openvpn --genkey outputs, read by ovpn-keys and by the engine --------------------------------------------
openvpn --genkey secret o-secret.key >/dev/null
openvpn --genkey tls-crypt-v2-server o-v2s.key >/dev/null
openvpn --tls-crypt-v2 o-v2s.key --genkey tls-crypt-v2-client o-v2c.key "$(printf 'from-openvpn' | base64)" >/dev/null
openvpn --genkey auth-token o-token.key >/dev/null
out=$("$K" show o-secret.key 2>&1; "$K" show o-v2s.key 2>&1; "$K" show o-token.key 2>&1;
      "$K" show o-v2c.key --server-key o-v2s.key 2>&1)
if grep -q "o-secret.key: OpenVPN static key V1" <<<"$out" && grep -q "o-v2s.key: tls-crypt-v2 server key" <<<"$out" \
    && grep -q "o-token.key: auth-token server key" <<<"$out" \
    && grep -q 'metadata: user (type 0x00), 12 bytes: .*text "from-openvpn"' <<<"$out"; then
    ok "show-openvpn-genkey" "secret, tls-crypt-v2-server, tls-crypt-v2-client metadata \"from-openvpn\", auth-token"
else
    fail "show-openvpn-genkey"; sed 's/^/    /' <<<"$out"
fi
openvpn --tls-crypt-v2 o-v2s.key --genkey tls-crypt-v2-client o-v2c-time.key >/dev/null
out=$("$K" show o-v2c-time.key --server-key o-v2s.key 2>&1)
stamp=$(sed -n 's/.*timestamp (type 0x01): \([0-9]*\) = .*/\1/p' <<<"$out")
check "show-openvpn-timestamp" "$(grep -o 'timestamp (type 0x01): .*' <<<"$out"), made just now" \
    test $(( $(date +%s) - ${stamp:-0} )) -lt 120
# The engine's config parser (build/config-disk) takes openvpn's static and tls-crypt-v2 client keys.
engine_reads() {
    local prot=$1 keyfile=$2
    { sed '/<tls-crypt-v2>/,/<\/tls-crypt-v2>/d' alice.ovpn; printf '<%s>\n' "$prot"; cat "$keyfile"; printf '</%s>\n' "$prot"; } > "eng-$prot.ovpn"
    "$root/build/config-disk" make "eng-$prot.ovpn" -o "eng-$prot.img" >"eng-$prot.log" 2>&1 \
        && "$root/build/config-disk" check "eng-$prot.img" 2>&1 | grep -q "control channel: $prot"
}

# --- bad input and file handling -------------------------------------------------------------------------------
"$K" genkey secret our-secret.key >/dev/null
"$K" genkey tls-crypt-v2-server our-v2s.key >/dev/null
expect_fail() { # NAME CODE REGEX CMD...: CMD must exit CODE with a message matching REGEX
    local name=$1 code=$2 regex=$3 msg rc
    shift 3
    msg=$("$@" 2>&1 >/dev/null); rc=$?
    if [ $rc -eq "$code" ] && grep -Eq "$regex" <<<"$msg"; then ok "$name" "exit $rc: $msg"
    else fail "$name" "exit $rc, wanted $code: $msg"; fi
}
head -c 300 o-v2c.key > truncated.key
expect_fail refuse-truncated 1 "truncated.key: .*END" "$K" show truncated.key
expect_fail refuse-wrong-kind 1 "o-v2c.key: this is a tls-crypt-v2 client key, not a tls-crypt-v2 server key" \
    "$K" genkey tls-crypt-v2-client --server-key o-v2c.key x.key
expect_fail refuse-bad-base64 1 "not valid base64" "$K" genkey tls-crypt-v2-client --server-key our-v2s.key --metadata 'user:@@@' x.key
expect_fail refuse-overwrite 1 "our-secret.key: already exists" "$K" genkey secret our-secret.key
expect_fail refuse-wrong-server-key 1 "does not authenticate" "$K" show o-v2c.key --server-key our-v2s.key
expect_fail usage 2 "unknown key kind" "$K" genkey nonsense x.key
modes=$(stat -c %a our-secret.key our-v2s.key | sort -u | tr '\n' ' ')
check "secret-mode" "mode $modes" test "$modes" = "600 "

# --- our keys read by openvpn and by the engine ----------------------------------------------------------------
"$K" genkey tls-crypt-v2-client --server-key our-v2s.key --metadata "user:$(printf 'our-meta' | base64)" our-v2c.key >/dev/null
check "openvpn-reads-ours" "openvpn --tls-crypt-v2 our server key wraps a client key" \
    openvpn --tls-crypt-v2 our-v2s.key --genkey tls-crypt-v2-client o-from-ours.key
"$K" show o-from-ours.key --server-key our-v2s.key >/dev/null 2>&1 || fail "openvpn-reads-ours" "ovpn-keys cannot open it"

# --- PKI, profiles and a Debian openvpn server ---------------------------------------------------------------
ip netns del $NS_SRV 2>/dev/null; ip netns del $NS_CLI 2>/dev/null
ip netns add $NS_SRV && ip netns add $NS_CLI || { echo "keys: FAILED (netns)"; exit 1; }
ip link add oxvk-s netns $NS_SRV type veth peer name oxvk-c netns $NS_CLI
ip -n $NS_SRV addr add $SRV_ADDR/24 dev oxvk-s
ip -n $NS_CLI addr add $CLI_ADDR/24 dev oxvk-c
for ns in $NS_SRV $NS_CLI; do ip -n $ns link set lo up; done
ip -n $NS_SRV link set oxvk-s up
ip -n $NS_CLI link set oxvk-c up

{ "$K" pki init pki && "$K" pki server vpn --pki pki && "$K" server-config --pki pki -o server.conf \
    && for user in alice bob carol; do "$K" profile $user --pki pki --remote $SRV_ADDR 1194 udp -o $user.ovpn; done
} >pki.log 2>&1
check "pki" "init, server, server-config, 3 profiles; $(grep -c valid < <("$K" pki list --pki pki)) valid certificates" \
    test -s alice.ovpn -a -s carol.ovpn -a -s server.conf
check "engine-reads" "openvpn's and ours: tls-crypt static key, tls-crypt-v2 client key" \
    eval 'engine_reads tls-crypt o-secret.key && engine_reads tls-crypt-v2 o-v2c.key && engine_reads tls-crypt our-secret.key && engine_reads tls-crypt-v2 our-v2c.key'
modes=$(stat -c %a pki/ca.key pki/private/*.key pki/tc-v2-server.key alice.ovpn server.conf | sort -u | tr '\n' ' ')
check "pki-secret-modes" "mode $modes" test "$modes" = "600 "

# The server runs tls-crypt-v2-verify: it records the metadata type and bytes it receives.
cat > verify.sh <<EOF
#!/bin/sh
echo "\$metadata_type" > "$work/meta.type"
cp "\$metadata_file" "$work/meta.bin"
EOF
chmod +x verify.sh
cp server.conf server-v2.conf
printf 'script-security 2\ntls-crypt-v2-verify %s\n' "$work/verify.sh" >> server-v2.conf

start_server() { # NAME CONF
    ip netns exec $NS_SRV openvpn --config "$2" --log "$work/$1.server.log" >/dev/null 2>&1 &
    server_pid=$!
    for _ in $(seq 50); do
        grep -q "Initialization Sequence Completed" "$work/$1.server.log" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}
stop_server() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null; server_pid=; }
# client_connects NAME CONF: Debian's openvpn client connects within 20 s and pings the server's tunnel address.
client_connects() {
    local name=$1 conf=$2 rc=1
    ip netns exec $NS_CLI openvpn --config "$conf" --log "$work/$name.client.log" >/dev/null 2>&1 &
    client_pid=$!
    for _ in $(seq 100); do
        if grep -q "Initialization Sequence Completed" "$work/$name.client.log" 2>/dev/null; then
            timeout 10 ip netns exec $NS_CLI busybox ping -c 2 -W 2 10.8.0.1 >"$work/$name.ping.log" 2>&1 && rc=0
            break
        fi
        kill -0 $client_pid 2>/dev/null || break
        sleep 0.2
    done
    kill $client_pid 2>/dev/null; wait $client_pid 2>/dev/null; client_pid=
    [ $rc -eq 0 ] || tail -5 "$work/$name.client.log" | sed 's/^/    client: /'
    return $rc
}
# metadata_is TYPE BYTES: what the server's verify script received last.
metadata_is() { [ "$(cat meta.type 2>/dev/null)" = "$1" ] && cmp -s meta.bin <(printf '%b' "$2"); }

if start_server v2 server-v2.conf; then
    rm -f meta.type meta.bin
    check "openvpn-client-profile" "Debian openvpn with alice.ovpn: connected, ping 10.8.0.1 answered" client_connects alice alice.ovpn
    check "v2-verify-metadata" "server's tls-crypt-v2-verify got type $(cat meta.type 2>/dev/null) \"$(cat meta.bin 2>/dev/null)\", wanted 0 \"alice\"" \
        metadata_is 0 alice
    # A client key from `genkey tls-crypt-v2-client --metadata timestamp:T` in a profile.
    "$K" genkey tls-crypt-v2-client --server-key pki/tc-v2-server.key --metadata timestamp:1700000000 ts.key >/dev/null
    { sed '/<tls-crypt-v2>/,/<\/tls-crypt-v2>/d' bob.ovpn; echo "<tls-crypt-v2>"; cat ts.key; echo "</tls-crypt-v2>"; } > bob-ts.ovpn
    rm -f meta.type meta.bin
    check "openvpn-client-genkey-v2" "Debian openvpn with a genkey'd client key: connected, ping answered" client_connects bob-ts bob-ts.ovpn
    check "v2-verify-timestamp" "type $(cat meta.type 2>/dev/null), 8 bytes $(od -An -tx1 meta.bin 2>/dev/null | tr -d ' \n'), wanted 1 000000006553f100" \
        metadata_is 1 '\x00\x00\x00\x00\x65\x53\xf1\x00'
    out=$work/bob.ping.log
    if timeout 40 ip netns exec $NS_CLI "$root/build/ovpn-ping" bob.ovpn --count 3 --timeout 20 >"$out" 2>&1; then
        ok "ovpn-ping-profile" "$(grep -E '^(handshake|rtt summary)' "$out" | tr '\n' ' ')"
    else
        fail "ovpn-ping-profile"; tail -8 "$out" | sed 's/^/    /'
    fi
    # Revoked: carol's certificate is in the CRL the server re-reads at each connection.
    "$K" pki revoke carol --pki pki >/dev/null
    if ! timeout 12 ip netns exec $NS_CLI "$root/build/ovpn-ping" carol.ovpn --count 1 --timeout 8 >carol.ping.log 2>&1 \
        && grep -qi "revoked" v2.server.log; then
        ok "revoked-refused" "$(grep -i -m1 -o 'VERIFY ERROR.*revoked' v2.server.log)"
    else
        fail "revoked-refused"; grep -i "verify\|revoked" v2.server.log | tail -3 | sed 's/^/    server: /'
    fi
else
    fail "openvpn-server-v2" "server did not start"; tail -8 v2.server.log | sed 's/^/    /'
fi
stop_server

# --- tls-crypt and tls-auth with our static key --------------------------------------------------------------
strip_v2() { sed '/<tls-crypt-v2>/,/<\/tls-crypt-v2>/d' "$1"; }
for mode in tls-crypt tls-auth; do
    if [ $mode = tls-crypt ]; then srv_extra="" cli_extra=""; else srv_extra="key-direction 0" cli_extra="key-direction 1"; fi
    { strip_v2 server.conf; echo "$srv_extra"; echo "<$mode>"; cat our-secret.key; echo "</$mode>"; } > server-$mode.conf
    { strip_v2 alice.ovpn; echo "$cli_extra"; echo "<$mode>"; cat our-secret.key; echo "</$mode>"; } > alice-$mode.ovpn
    if start_server $mode server-$mode.conf; then
        check "openvpn-$mode" "our static key on both Debian openvpn ends: connected, ping answered" client_connects alice-$mode alice-$mode.ovpn
    else
        fail "openvpn-$mode" "server did not start"; tail -8 $mode.server.log | sed 's/^/    /'
    fi
    stop_server
done

# --- server-config --proto tcp: Debian's server over TCP, a TCP profile with Debian's client and ovpn-ping --------
if "$K" server-config --pki pki --proto tcp -o server-tcp.conf >/dev/null 2>&1 \
    && "$K" profile erin --pki pki --remote $SRV_ADDR 1194 tcp -o erin-tcp.ovpn >/dev/null 2>&1; then
    if start_server tcp server-tcp.conf; then
        if client_connects erin-tcp erin-tcp.ovpn \
            && timeout 30 ip netns exec $NS_CLI "$root/build/ovpn-ping" erin-tcp.ovpn --count 2 --timeout 15 >erin-tcp.ping.log 2>&1; then
            ok "server-config-tcp" "$(grep -m1 -o 'proto [a-z0-9-]*' server-tcp.conf); Debian openvpn client and ovpn-ping over TCP connected, pings answered"
        else
            fail "server-config-tcp"; tail -5 erin-tcp.ping.log 2>/dev/null | sed 's/^/    ovpn-ping: /'
        fi
    else
        fail "server-config-tcp" "server did not start"; tail -8 tcp.server.log | sed 's/^/    /'
    fi
    stop_server
else
    fail "server-config-tcp" "ovpn-keys server-config --proto tcp or profile failed"
fi

# --- the other key types: an Ed25519 and an RSA 2048 PKI, Debian's server and client, and ovpn-ping ------------
for kt in ed25519 rsa2048; do
    { "$K" pki init pki-$kt --key-type $kt && "$K" pki server vpn --pki pki-$kt \
        && "$K" server-config --pki pki-$kt -o server-$kt.conf \
        && "$K" profile dave --pki pki-$kt --remote $SRV_ADDR 1194 udp -o dave-$kt.ovpn; } >pki-$kt.log 2>&1 \
        || { fail "pki-$kt" "$(tail -1 pki-$kt.log)"; continue; }
    if start_server $kt server-$kt.conf; then
        if client_connects dave-$kt dave-$kt.ovpn \
            && timeout 30 ip netns exec $NS_CLI "$root/build/ovpn-ping" dave-$kt.ovpn --count 2 --timeout 15 >dave-$kt.ping.log 2>&1; then
            ok "pki-$kt" "$kt CA and certificates: Debian openvpn client and ovpn-ping connected, pings answered"
        else
            fail "pki-$kt"; tail -5 dave-$kt.ping.log 2>/dev/null | sed 's/^/    ovpn-ping: /'
        fi
    else
        fail "pki-$kt" "server did not start"; tail -8 $kt.server.log | sed 's/^/    /'
    fi
    stop_server
done
ip netns del $NS_SRV 2>/dev/null; ip netns del $NS_CLI 2>/dev/null

# --- the router image with a config disk made from a profile ---------------------------------------------------
if [ -n "${KEYS_SKIP_IMAGE:-}" ]; then
    echo "keys router-image: skipped (KEYS_SKIP_IMAGE set)"
elif [ -f "$root/build/oxvpn.elf" ]; then
    # shellcheck source=netlab.sh
    . "$root/scripts/netlab.sh"
    netlab_init "$work/lab"
    netlab_started=1
    if netlab_up >"$work/lab/up.log" 2>&1; then
        # The lab server's files become ovpn-keys outputs: our CA, server certificate and tls-crypt-v2 key.
        cp pki/ca.crt "$NETLAB_WORK/pki/ca.crt"
        cp pki/issued/vpn.crt "$NETLAB_WORK/pki/server.crt"
        cp pki/private/vpn.key "$NETLAB_WORK/pki/server.key"
        cp pki/tc-v2-server.key "$NETLAB_WORK/pki/v2-server.key"
        "$K" profile router --pki pki --remote $NETLAB_SRV_PUB 1194 udp -o router.ovpn >/dev/null \
            && "$root/build/config-disk" make router.ovpn -o router.img >router.disk.log 2>&1 \
            && netlab_server_start >/dev/null \
            && netlab_vm_start "" "$work/router.img"
        if secs=$(netlab_wait_tunnel 40) \
            && timeout 15 ip netns exec "$NS_LAN" busybox ping -c 3 -W 2 $NETLAB_SRV_TUN >"$work/lab-ping.log" 2>&1 \
            && timeout 15 ip netns exec "$NS_LAN" busybox ping -c 3 -W 2 $NETLAB_BEHIND >>"$work/lab-ping.log" 2>&1; then
            ok "router-image" "disk from \`ovpn-keys profile\`: tunnel up after ${secs}s, LAN host pings 10.8.0.1 and 10.9.0.2"
        else
            fail "router-image"; tail -8 "$NETLAB_SERIAL" | sed 's/^/    console: /'; tail -4 "$NETLAB_WORK/openvpn.log" | sed 's/^/    server: /'
        fi
    else
        fail "router-image" "netlab_up"; tail -5 "$work/lab/up.log"
    fi
    netlab_down; netlab_started=
else
    fail "router-image" "build/oxvpn.elf missing (make image)"
fi

echo "keys: $passed passed, $failed failed"
[ $failed -eq 0 ]

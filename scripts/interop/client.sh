#!/usr/bin/env bash
# Writes a standard client .ovpn with everything inline and prints its path.
# Usage: client.sh PKI_DIR WORK_DIR NAME REMOTE_ADDR DATA_CIPHERS PROTECTION [EXTRA_LINE...]
#   REMOTE_ADDR - : no `remote` line (the EXTRA_LINEs hold <connection> blocks).
#   PROTECTION as in server.sh; EXTRA_LINEs are appended verbatim (e.g. an <auth-user-pass> block).
set -euo pipefail
pki=$1 work=$2 name=$3 remote=$4 ciphers=$5 prot=$6
shift 6
conf=$work/$name.client.ovpn
{
    echo "client"
    echo "dev tun"
    echo "proto udp"
    # REMOTE_ADDR "-" leaves the remote line out (the extra lines bring <connection> blocks).
    [ "$remote" = - ] || echo "remote $remote 1194"
    echo "nobind"
    echo "remote-cert-tls server"
    echo "data-ciphers $ciphers"
    echo "verb 3"
    # NO_CA=1 leaves out <ca> (peer-fingerprint setups).
    [ -n "${NO_CA:-}" ] || { echo "<ca>"; cat "$pki/ca.crt"; echo "</ca>"; }
    # CLIENT_CERT=NAME picks another client certificate/key pair from the PKI (default: client).
    echo "<cert>"; cat "$pki/${CLIENT_CERT:-client}.crt"; echo "</cert>"
    echo "<key>"; cat "$pki/${CLIENT_CERT:-client}.key"; echo "</key>"
    case $prot in
        v2) echo "<tls-crypt-v2>"; cat "$pki/v2-client.key"; echo "</tls-crypt-v2>" ;;
        crypt) echo "<tls-crypt>"; cat "$pki/ta.key"; echo "</tls-crypt>" ;;
        auth) echo "key-direction 1"; echo "auth SHA256"; echo "<tls-auth>"; cat "$pki/ta.key"; echo "</tls-auth>" ;;
        none) ;;
        *) echo "client.sh: unknown protection $prot" >&2; exit 2 ;;
    esac
    for line in "$@"; do echo "$line"; done
} > "$conf"
echo "$conf"

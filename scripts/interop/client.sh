#!/usr/bin/env bash
# Writes a standard client .ovpn (inline ca/cert/key/tls-crypt-v2) and prints its path.
# Usage: client.sh PKI_DIR WORK_DIR NAME REMOTE_ADDR [DATA_CIPHERS]
set -euo pipefail
pki=$1 work=$2 name=$3 remote=$4 ciphers=${5:-AES-256-GCM:AES-128-GCM}
conf=$work/$name.client.ovpn
{
    echo "client"
    echo "dev tun"
    echo "proto udp"
    echo "remote $remote 1194"
    echo "nobind"
    echo "remote-cert-tls server"
    echo "data-ciphers $ciphers"
    echo "verb 3"
    echo "<ca>"; cat "$pki/ca.crt"; echo "</ca>"
    echo "<cert>"; cat "$pki/client.crt"; echo "</cert>"
    echo "<key>"; cat "$pki/client.key"; echo "</key>"
    echo "<tls-crypt-v2>"; cat "$pki/v2-client.key"; echo "</tls-crypt-v2>"
} > "$conf"
echo "$conf"

#!/usr/bin/env bash
# Writes an OpenVPN 2.6 server config for the interop tests and prints its path.
# Usage: server.sh PKI_DIR WORK_DIR NAME LISTEN_ADDR DATA_CIPHERS CERT_NAME PROTECTION [EXTRA_LINE...]
#   PROTECTION: v2 (tls-crypt-v2) | crypt (tls-crypt) | auth (tls-auth, key-direction 0, auth SHA256) | none
set -euo pipefail
pki=$1 work=$2 name=$3 addr=$4 ciphers=$5 cert=$6 prot=$7
shift 7
conf=$work/$name.server.conf
{
    cat <<CONF
dev tun
proto udp4
local $addr
port 1194
topology subnet
server 10.8.0.0 255.255.255.0
ca $pki/ca.crt
cert $pki/$cert.crt
key $pki/$cert.key
dh none
data-ciphers $ciphers
keepalive 2 10
push "route 10.9.0.0 255.255.255.0"
push "dhcp-option DNS 10.8.0.1"
verb 3
CONF
    case $prot in
        v2) echo "tls-crypt-v2 $pki/v2-server.key" ;;
        crypt) echo "tls-crypt $pki/ta.key" ;;
        auth) echo "tls-auth $pki/ta.key 0"; echo "auth SHA256" ;;
        none) ;;
        *) echo "server.sh: unknown protection $prot" >&2; exit 2 ;;
    esac
    for line in "$@"; do echo "$line"; done
} > "$conf"
echo "$conf"

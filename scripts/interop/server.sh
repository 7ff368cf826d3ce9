#!/usr/bin/env bash
# Writes an OpenVPN 2.6 server config for the interop tests and prints its path.
# Usage: server.sh PKI_DIR WORK_DIR NAME LISTEN_ADDR DATA_CIPHERS [SERVER_CERT_NAME]
set -euo pipefail
pki=$1 work=$2 name=$3 addr=$4 ciphers=$5 cert=${6:-server}
conf=$work/$name.server.conf
cat > "$conf" <<CONF
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
tls-crypt-v2 $pki/v2-server.key
data-ciphers $ciphers
keepalive 2 10
push "route 10.9.0.0 255.255.255.0"
push "dhcp-option DNS 10.8.0.1"
verb 3
CONF
echo "$conf"

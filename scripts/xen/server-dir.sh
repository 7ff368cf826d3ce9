#!/usr/bin/env bash
# Makes DIR for dom0's /test as scripts/netlab.sh makes its network's files: a throwaway PKI
# (scripts/interop/make-pki.sh), the openvpn 2.6 server's config with paths under /test/pki
# (scripts/interop/server.sh: tls-crypt-v2, AES-256-GCM, 10.8.0.0/24, pushes route 10.9.0.0/24 and DNS
# 10.8.0.1), and the client's config disk made by build/config-disk (config.img).
# Usage: server-dir.sh DIR
set -eu
cd "$(dirname "$0")/../.."
dir=$1
[ -x build/config-disk ] || { echo "server-dir.sh: no build/config-disk (make tools)" >&2; exit 1; }
# shellcheck source=scripts/netlab.sh
NETLAB=oxv-xen   # the addresses and netlab_disk of scripts/netlab.sh; no namespace is made
source scripts/netlab.sh
mkdir -p "$dir/pki" "$dir/work"
netlab_init "$dir/work"
scripts/interop/make-pki.sh "$dir/work/pki" >"$dir/work/pki.log" 2>&1 || { cat "$dir/work/pki.log" >&2; exit 1; }
disk=$(netlab_disk lab)
cp "$dir/work/pki"/{ca.crt,server.crt,server.key,v2-server.key} "$dir/pki/"
cp "$disk" "$dir/config.img"
conf=$(scripts/interop/server.sh /test/pki "$dir/work" lab $NETLAB_SRV_PUB AES-256-GCM server v2)
cp "$conf" "$dir/server.conf"

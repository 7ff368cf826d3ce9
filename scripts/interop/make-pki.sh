#!/usr/bin/env bash
# Makes a throwaway PKI and tls-crypt-v2 keys in DIR for the interop tests:
#   ca.crt/ca.key     ECDSA P-256 CA
#   server.crt/.key   server certificate with EKU serverAuth (what `remote-cert-tls server` checks)
#   client.crt/.key   client certificate with EKU clientAuth, ECDSA P-256 key (PKCS#8)
#   v2-server.key     `openvpn --genkey tls-crypt-v2-server`
#   v2-client.key     `openvpn --genkey tls-crypt-v2-client`
#   ta.key            `openvpn --genkey secret` (tls-crypt, tls-auth)
# Usage: make-pki.sh DIR
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
days=30
ossl() { openssl "$@" 2>/dev/null; }

ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
ossl req -x509 -new -key ca.key -sha256 -days $days -subj "/CN=oxvpn interop CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt

issue() { # name cn eku
    ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"
    ossl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=%s\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' "$3" > "$1.ext"
    ossl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days $days -extfile "$1.ext" -out "$1.crt"
    rm -f "$1.csr" "$1.ext"
}
issue server "oxvpn interop server" serverAuth
issue client "oxvpn interop client" clientAuth
# A server certificate WITHOUT serverAuth (for the remote-cert-tls negative case).
issue badserver "oxvpn interop client-as-server" clientAuth

openvpn --genkey secret ta.key >/dev/null
openvpn --genkey tls-crypt-v2-server v2-server.key >/dev/null
openvpn --tls-crypt-v2 v2-server.key --genkey tls-crypt-v2-client v2-client.key >/dev/null

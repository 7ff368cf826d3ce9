#!/usr/bin/env bash
# Makes a throwaway PKI and tls-crypt-v2 keys in DIR for the interop tests:
#   ca.crt/ca.key     ECDSA P-256 CA
#   server.crt/.key   server certificate with EKU serverAuth (what `remote-cert-tls server` checks)
#   client.crt/.key   client certificate with EKU clientAuth, ECDSA P-256 key (PKCS#8)
#   v2-server.key     `openvpn --genkey tls-crypt-v2-server`
#   v2-client.key     `openvpn --genkey tls-crypt-v2-client`
#   ta.key            `openvpn --genkey secret` (tls-crypt, tls-auth)
#   server-rsa, client-rsa, client-p384, client-ed25519   other key types (RSA-4096, P-384, Ed25519)
#   revoked.crt/.key  a server certificate (EKU serverAuth) that the CRLs below revoke
#   crl.pem           CRL (version 2) from the CA revoking revoked.crt; crl-v1.pem the same as a version 1 CRL
#   crl-other.pem     CRL from the CA revoking another certificate (badserver.crt) only
#   crl-server.pem    CRL from the CA revoking server.crt (the netlab server's certificate: scripts/test-e2e.sh)
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

issue() { # name cn eku [key algorithm: ec (default) | rsa4096 | ed25519 | p384]
    case ${4:-ec} in
        ec) ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" ;;
        p384) ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$1.key" ;;
        rsa4096) ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 -out "$1.key" ;;
        ed25519) ossl genpkey -algorithm ED25519 -out "$1.key" ;;
    esac
    ossl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=%s\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' "$3" > "$1.ext"
    ossl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days $days -extfile "$1.ext" -out "$1.crt"
    rm -f "$1.csr" "$1.ext"
}
issue server "oxvpn interop server" serverAuth
issue client "oxvpn interop client" clientAuth
# A server certificate WITHOUT serverAuth (for the remote-cert-tls negative case).
issue badserver "oxvpn interop client-as-server" clientAuth
# Other key types: an RSA-4096 server (a certificate flight spanning several control packets) and
# RSA-4096, P-384 and Ed25519 client keys.
issue server-rsa "oxvpn interop server" serverAuth rsa4096
issue client-rsa "oxvpn interop client rsa" clientAuth rsa4096
issue client-p384 "oxvpn interop client p384" clientAuth p384
issue client-ed25519 "oxvpn interop client ed25519" clientAuth ed25519

# crl-verify: a server certificate to revoke, and CRLs made by `openssl ca` with a minimal config.
issue revoked "oxvpn interop server" serverAuth
crl() { # out version(1|2) revoked-cert
    local d=crl-$1.d
    mkdir -p "$d"
    : > "$d/index.txt"
    {
        printf '[ca]\ndefault_ca = this\n[this]\ndatabase = %s/index.txt\n' "$d"
        printf 'certificate = ca.crt\nprivate_key = ca.key\ndefault_md = sha256\ndefault_crl_days = %s\n' $days
        if [ "$2" = 2 ]; then
            echo 01 > "$d/crlnumber"
            printf 'crlnumber = %s/crlnumber\ncrl_extensions = crl_ext\n[crl_ext]\nauthorityKeyIdentifier = keyid:always\n' "$d"
        fi
    } > "$d/ca.cnf"
    ossl ca -config "$d/ca.cnf" -revoke "$3"
    ossl ca -config "$d/ca.cnf" -gencrl -out "$1"
    rm -rf "$d"
}
crl crl.pem 2 revoked.crt
crl crl-v1.pem 1 revoked.crt
crl crl-other.pem 2 badserver.crt
crl crl-server.pem 2 server.crt

openvpn --genkey secret ta.key >/dev/null
openvpn --genkey tls-crypt-v2-server v2-server.key >/dev/null
openvpn --tls-crypt-v2 v2-server.key --genkey tls-crypt-v2-client v2-client.key >/dev/null

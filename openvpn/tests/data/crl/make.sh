#!/usr/bin/env bash
# Regenerates the crl-verify test fixtures in this directory (committed; run by hand, not by the tests):
#   root.crt                 ECDSA P-256 root CA ("oxvpn crl root")
#   server-good.crt/.key     server certificate from root, serial 0x1001 (EKU serverAuth)
#   server-revoked.crt/.key  server certificate from root, serial 0x1002
#   int.crt                  intermediate CA from root, serial 0x2001
#   server-int.crt/.key      server certificate from the intermediate, serial 0x3001
#   server-noku.crt/.key     server certificate from root without a key usage extension, serial 0x1004
#                            (for `remote-cert-ku` without values, tests/security_directives.rs)
#   root-revokes-server.crl       v2 CRL from root revoking 0x1002
#   root-revokes-other.crl        v2 CRL from root revoking 0x1003 (a serial nobody uses)
#   root-revokes-int.crl          v2 CRL from root revoking the intermediate 0x2001
#   root-expired.crl              v2 CRL from root revoking nothing, nextUpdate one hour after it was made
#   root-v1-revokes-server.crl    version 1 CRL (no extensions, as easy-rsa 2 and PIA ship) revoking 0x1002
#   root-v1-revokes-other.crl     version 1 CRL revoking 0x1003
#   int-empty.crl                 v2 CRL from the intermediate revoking nothing
#   impostor-revokes-other.crl    v2 CRL naming root as issuer but signed by another key (a forgery)
# Certificates and the non-expired CRLs are valid for 100 years; server keys are PKCS#8 PEM; the CA keys are
# thrown away.
# Usage: openvpn/tests/data/crl/make.sh   (needs openssl 3)
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ossl() { openssl "$@" 2>/dev/null; }
days=36500

ca_cert() { # name subject
    ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"
    ossl req -x509 -new -key "$1.key" -sha256 -days $days -subj "$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" -out "$1.crt"
}
issue() { # name cn ca serial [ca|noku]
    ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"
    ossl req -new -key "$1.key" -subj "/CN=$2" -out "$work/$1.csr"
    if [ "${5:-}" = ca ]; then
        printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' > "$work/$1.ext"
    elif [ "${5:-}" = noku ]; then
        printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' > "$work/$1.ext"
    else
        printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' > "$work/$1.ext"
    fi
    ossl x509 -req -in "$work/$1.csr" -CA "$3.crt" -CAkey "$3.key" -set_serial "$4" -sha256 -days $days \
        -extfile "$work/$1.ext" -out "$1.crt"
}
crl() { # out ca version(1|2) hours-or-empty [revoked-cert...]
    local out=$1 ca=$2 version=$3 hours=$4
    shift 4
    local d="$work/ca-$out"
    mkdir -p "$d"
    : > "$d/index.txt"
    {
        printf '[ca]\ndefault_ca = this\n[this]\ndatabase = %s/index.txt\nnew_certs_dir = %s\n' "$d" "$d"
        printf 'certificate = %s.crt\nprivate_key = %s.key\ndefault_md = sha256\ndefault_crl_days = %s\n' "$ca" "$ca" $days
        printf 'policy = any\n'
        if [ "$version" = 2 ]; then
            printf 'crlnumber = %s/crlnumber\ncrl_extensions = crl_ext\n' "$d"
            echo 01 > "$d/crlnumber"
        fi
        printf '[any]\ncommonName = optional\n[crl_ext]\nauthorityKeyIdentifier = keyid:always\n'
    } > "$d/ca.cnf"
    for cert in "$@"; do
        ossl ca -config "$d/ca.cnf" -revoke "$cert"
    done
    if [ -n "$hours" ]; then
        ossl ca -config "$d/ca.cnf" -gencrl -crlhours "$hours" -out "$out"
    else
        ossl ca -config "$d/ca.cnf" -gencrl -out "$out"
    fi
}

ca_cert root "/CN=oxvpn crl root"
ca_cert impostor "/CN=oxvpn crl root"
issue server-good "oxvpn crl server" root 0x1001
issue server-revoked "oxvpn crl server" root 0x1002
issue other "oxvpn crl other" root 0x1003
issue server-noku "oxvpn crl server" root 0x1004 noku
issue int "oxvpn crl intermediate" root 0x2001 ca
issue server-int "oxvpn crl server" int 0x3001

crl root-revokes-server.crl root 2 "" server-revoked.crt
crl root-revokes-other.crl root 2 "" other.crt
crl root-revokes-int.crl root 2 "" int.crt
crl root-expired.crl root 2 1
crl root-v1-revokes-server.crl root 1 "" server-revoked.crt
crl root-v1-revokes-other.crl root 1 "" other.crt
crl int-empty.crl int 2 ""
crl impostor-revokes-other.crl impostor 2 "" other.crt
rm -f other.crt other.key impostor.crt impostor.key root.key int.key

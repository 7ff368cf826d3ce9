#!/usr/bin/env python3
"""Writes the project's config corpus (valid/ and invalid/) from the test keys in keys/.

Run from this folder: python3 make-corpus.py. The outputs are committed; the Rust tests assert their parse.
"""
import os

K = lambda name: open(os.path.join("keys", name)).read()
CA, CRL = K("ca.crt"), K("ca.crl")
RSA_CRT, RSA_KEY, RSA_PKCS1 = K("client-rsa.crt"), K("client-rsa.key"), K("client-rsa-pkcs1.key")
EASYRSA_CRT = K("client-rsa-easyrsa.crt")
EC_CRT, EC_KEY, EC_PKCS8 = K("client-ec.crt"), K("client-ec.key"), K("client-ec-pkcs8.key")
ED_CRT, ED_KEY = K("client-ed25519.crt"), K("client-ed25519.key")
TA, V2C, V2S = K("ta.key"), K("tc-v2-client.key"), K("tc-v2-server.key")
ENC_KEY, ENC_PKCS1 = K("client-rsa-encrypted.key"), K("client-rsa-encrypted-pkcs1.key")


def block(name, body):
    return f"<{name}>\n{body}</{name}>\n"


def write(path, text, eol="\n", prefix=b""):
    data = text.replace("\n", eol)
    with open(path, "wb") as f:
        f.write(prefix + data.encode())


os.makedirs("valid", exist_ok=True)
os.makedirs("invalid", exist_ok=True)
V = {}

V["nordvpn-style-udp"] = """client
dev tun
proto udp
remote 203.0.113.10 1194
resolv-retry infinite
remote-random
nobind
tun-mtu 1500
tun-mtu-extra 32
mssfix 1450
persist-key
persist-tun
ping 15
ping-restart 0
ping-timer-rem
reneg-sec 0
comp-lzo no

verify-x509-name CN=nl123.example.com

remote-cert-tls server

auth-user-pass
verb 3
pull
fast-io
cipher AES-256-CBC
auth SHA512
""" + block("ca", CA) + "key-direction 1\n" + block("tls-auth", TA)

V["protonvpn-style-tcp-tls-crypt"] = """# ==============================================================================
# Copyright (c) 2016-2020 Example VPN AG (Switzerland)
# Email: contact@example.com
# ==============================================================================

# The client directive
client

# Interface type
dev tun

# Protocol
proto tcp

remote 198.51.100.20 443
remote 198.51.100.21 443
remote 198.51.100.22 7770
remote 198.51.100.22 7770

server-poll-timeout 20

remote-random
resolv-retry infinite
nobind

cipher AES-256-GCM

setenv CLIENT_CERT 0
tun-mtu 1500
mssfix 0
persist-key
persist-tun

reneg-sec 0

remote-cert-tls server

#up /etc/openvpn/update-resolv-conf
#down /etc/openvpn/update-resolv-conf

<auth-user-pass>
alice+pmp
correct horse battery staple
</auth-user-pass>
""" + block("ca", CA) + block("tls-crypt", TA)

V["mullvad-style-files-by-path"] = """client
dev tun
proto udp
remote 192.0.2.1 1301 # se-got-ovpn-001
remote 192.0.2.2 1301 # se-got-ovpn-002
remote 192.0.2.3 1301 # se-got-ovpn-003
cipher AES-256-CBC
resolv-retry infinite
nobind
persist-key
persist-tun
verb 3
remote-cert-tls server
ping 10
ping-restart 60
sndbuf 524288
rcvbuf 524288
tls-cipher TLS-DHE-RSA-WITH-AES-256-GCM-SHA384:TLS-DHE-RSA-WITH-AES-256-CBC-SHA
remote-random
ca ../keys/ca.crt
auth-user-pass ../files/userpass.txt
tun-ipv6
script-security 2
up /etc/openvpn/update-resolv-conf
down /etc/openvpn/update-resolv-conf"""

V["windscribe-style"] = """client
dev tun
proto tcp
remote 203.0.113.77 1194
verify-x509-name acc-394.example.com name
auth SHA512
ncp-ciphers AES-256-GCM:AES-256-CBC:AES-128-GCM
cipher AES-256-CBC
auth-user-pass
remote-cert-tls server
persist-key
persist-tun
resolv-retry infinite
nobind
key-direction 1
explicit-exit-notify 0
""" + block("ca", CA) + block("tls-auth", TA)

V["pia-style-crl"] = """client
dev tun06
proto udp
remote ro.example.net 1198
resolv-retry infinite
nobind
persist-key
persist-tun
cipher aes-128-cbc
auth sha1
tls-client
remote-cert-tls server
auth-user-pass
compress
verb 1
reneg-sec 0
""" + block("crl-verify", CRL) + block("ca", CA) + "disable-occ\n"

V["pfsense-export"] = """dev tun
persist-tun
persist-key
data-ciphers AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305
data-ciphers-fallback AES-256-CBC
auth SHA256
tls-client
client
resolv-retry infinite
remote vpn.example.org 1194 udp4
nobind
verify-x509-name "server.example.net" name
auth-user-pass
remote-cert-tls server
explicit-exit-notify
setenv opt block-outside-dns
""" + block("ca", CA) + block("cert", RSA_CRT) + block("key", RSA_KEY) + "key-direction 1\n" + block("tls-auth", TA)

V["opnsense-export"] = """dev tun
persist-tun
persist-key
data-ciphers AES-256-GCM:CHACHA20-POLY1305
auth SHA256
client
resolv-retry infinite
reneg-sec 0
remote 198.51.100.7 1194 udp
lport 0
verify-x509-name "opnsense-server" name
remote-cert-tls server
""" + block("ca", CA) + block("cert", EC_CRT) + block("key", EC_KEY) + block("tls-crypt", TA)

V["easyrsa-selfhosted-paths"] = """##############################################
# Sample client-side OpenVPN 2.6 config file #
##############################################

client
dev tun
;dev tap
proto udp
remote myvpn.example.com 1194
;remote my-server-2 1194
resolv-retry infinite
nobind
;user openvpn
;group openvpn
persist-key
persist-tun
ca ../keys/ca.crt
cert ../keys/client-rsa-easyrsa.crt
key ../keys/client-rsa-pkcs1.key
remote-cert-tls server
tls-auth ../keys/ta.key 1
cipher AES-256-CBC
verb 3
;mute 20
"""

V["openvpn-install-angristan"] = """client
proto udp
explicit-exit-notify
remote 192.0.2.44 1194
dev tun
resolv-retry infinite
nobind
persist-key
persist-tun
remote-cert-tls server
verify-x509-name server_pQ4Vh7Dm4jE0fFa3 name
auth SHA256
auth-nocache
cipher AES-128-GCM
tls-client
tls-version-min 1.2
tls-cipher TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256
ignore-unknown-option block-outside-dns
setenv opt block-outside-dns # Prevent Windows 10 DNS leak
verb 3
""" + block("ca", CA) + block("cert", EC_CRT) + block("key", EC_PKCS8) + block("tls-crypt", TA)

V["openvpn-install-nyr"] = """client
dev tun
proto udp
remote 192.0.2.45 1194
resolv-retry infinite
nobind
persist-key
persist-tun
remote-cert-tls server
auth SHA512
ignore-unknown-option block-outside-dns
block-outside-dns
verb 3
""" + block("ca", CA) + block("cert", RSA_CRT) + block("key", RSA_KEY) + block("tls-crypt", TA)

V["inline-everything-tls-crypt-v2"] = """client
dev tun
proto udp
remote vpn.example.org 1194
data-ciphers AES-256-GCM:CHACHA20-POLY1305
remote-cert-tls server
""" + block("ca", CA) + block("cert", EC_CRT) + block("key", EC_KEY) + block("tls-crypt-v2", V2C)

V["inline-ed25519"] = """client
dev tun
remote 2001:db8::1 1194 udp6
tls-version-min 1.3
tls-ciphersuites TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
""" + block("ca", CA) + block("cert", ED_CRT) + block("key", ED_KEY)

V["connection-blocks"] = """client
dev tun
nobind
persist-key
remote-cert-tls server
auth-user-pass
cipher AES-256-CBC
key-direction 1
""" + block("ca", CA) + block("tls-auth", TA) + """<connection>
    remote vpn1.example.net 1194 udp
</connection>
<connection>
    remote vpn1.example.net 443 tcp
    connect-retry-max 1
</connection>
<connection>
remote vpn2.example.net
proto tcp-client
port 8443
""" + block("tls-crypt", TA) + "</connection>\n"

V["multi-remote-global-port"] = """client
dev tun
port 443
proto tcp
remote a.example.net
remote b.example.net 1194 udp
remote c.example.net 1195
remote d.example.net 53 udp4
remote e.example.net 80 tcp6-client
ca [inline]
cert [inline]
key [inline]
""" + block("ca", CA) + block("cert", RSA_CRT) + block("key", RSA_PKCS1)

V["crlf-windows"] = """client\ndev tun\nproto udp\nremote vpn.example.com 1194\nresolv-retry infinite\nnobind\nroute-method exe\nblock-outside-dns\nremote-cert-tls server\nauth-user-pass\ncipher AES-256-GCM\n""" + block("ca", CA)

V["bom-utf8"] = """client
dev tun
remote vpn.example.com 1194
auth-user-pass
""" + block("ca", CA)

V["utf16le-windows"] = """client
dev tun
proto udp
remote 192.0.2.9 1194
auth-user-pass
""" + block("ca", CA)

V["access-server-style"] = """# Automatically generated OpenVPN client config file
# Generated on Mon Jan 1 00:00:00 2024 by vpn.example.com
# Note: this config file contains inline private keys
#       and therefore should be kept confidential!
setenv FORWARD_COMPATIBLE 1
client
server-poll-timeout 4
nobind
remote vpn.example.com 1194 udp
remote vpn.example.com 1194 udp
remote vpn.example.com 443 tcp
remote vpn.example.com 1194 udp
dev tun
dev-type tun
remote-cert-tls server
tls-version-min 1.2
reneg-sec 604800
tun-mtu 1420
verb 3
push-peer-info
setenv PUSH_PEER_INFO
""" + block("ca", CA) + block("cert", RSA_CRT) + block("key", RSA_KEY) + "key-direction 1\n" + block("tls-auth", TA)

V["peer-fingerprint"] = """client
dev tun
remote 192.0.2.50 1194
peer-fingerprint 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff
<peer-fingerprint>
# the server's new certificate
01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF
FE:DC:BA:98:76:54:32:10:FE:DC:BA:98:76:54:32:10:FE:DC:BA:98:76:54:32:10:FE:DC:BA:98:76:54:32:10
</peer-fingerprint>
""" + block("cert", EC_CRT) + block("key", EC_KEY)

V["quoting-and-comments"] = """# hand-edited
;comment with a semicolon
--client
--dev tun
	remote	"vpn.example.com"	1194	# tab separated
remote-cert-eku "TLS Web Server Authentication"
verify-x509-name 'C=DE, O=Example GmbH, CN=vpn server' subject
pull-filter ignore "route-gateway"
pull-filter accept 'route 10.'
pull-filter reject "dhcp-option DNS"
setenv comment this\\ has\\ spaces
auth-user-pass
""" + block("ca", CA)

V["routes-compress-stub-v2"] = """client
dev tun
remote 203.0.113.5 1194
compress stub-v2
allow-compression asym
route-nopull
route 10.20.0.0 255.255.0.0
route 192.168.77.0 255.255.255.0 vpn_gateway 5
route-ipv6 2001:db8:77::/48
redirect-gateway def1 bypass-dhcp
auth-user-pass
""" + block("ca", CA)

V["legacy-2.3"] = """client
dev tun0
proto udp
remote legacy.example.net 443
tls-remote legacy.example.net
ns-cert-type server
keysize 256
comp-lzo
cipher BF-CBC
auth-user-pass
persist-key
ca [inline]
""" + block("ca", CA)

V["timers-and-keepalive"] = """client
dev tun
remote 203.0.113.6 1194 udp
keepalive 10 120
explicit-exit-notify 2
inactive 3600 100000
reneg-bytes 64000000
reneg-pkts 1000000
hand-window 180
tran-window 600
connect-retry 2 30
connect-retry-max 5
auth-retry nointeract
float
replay-window 512 60
max-packet-size 1400
sndbuf 393216
rcvbuf 393216
verb 4
auth-user-pass ../files/userpass.txt
""" + block("ca", CA)

V["tls-auth-bidirectional"] = """client
dev tun
remote 203.0.113.8 1194
tls-auth [inline]
""" + block("tls-auth", TA) + block("ca", CA) + block("cert", RSA_CRT) + block("key", RSA_KEY) + block("extra-certs", CA)

for name, text in V.items():
    path = f"valid/{name}.ovpn"
    if name == "crlf-windows":
        write(path, text, eol="\r\n")
    elif name == "bom-utf8":
        write(path, text, prefix=b"\xef\xbb\xbf")
    elif name == "utf16le-windows":
        with open(path, "wb") as f:
            f.write(b"\xff\xfe" + text.replace("\n", "\r\n").encode("utf-16-le"))
    else:
        write(path, text)

os.makedirs("files", exist_ok=True)
write("files/userpass.txt", "alice\ns3cret pass\n")

BASE = "client\ndev tun\nremote vpn.example.com 1194\n" + block("ca", CA) + block("cert", RSA_CRT) + block("key", RSA_KEY)
I = {
    "static-key-secret": "dev tun\nremote vpn.example.com\nifconfig 10.1.0.2 10.1.0.1\nsecret static.key\n",
    "dev-tap": "client\ndev tap\nremote vpn.example.com 1194\n",
    "dev-tap-type": "client\ndev vpn0\ndev-type tap\n",
    "server-mode": "port 1194\nproto udp\ndev tun\nserver 10.8.0.0 255.255.255.0\n",
    "tls-server": "dev tun\ntls-server\n",
    "proto-tcp-server": "client\ndev tun\nproto tcp-server\n",
    "mode-server": "mode server\n",
    "askpass": "client\ndev tun\naskpass pass.txt\n",
    "pkcs12": "client\ndev tun\nremote vpn.example.com\npkcs12 client.p12\n",
    "fragment": "client\ndev tun\nremote vpn.example.com\nfragment 1300\n",
    "http-proxy": "client\ndev tun\nhttp-proxy proxy.example.com 8080\n",
    "unknown-directive": "client\ndev tun\ndata-ciphers-fallbacks AES-256-CBC\n",
    "unknown-after-ignore-list": "client\nignore-unknown-option foo bar\nfoo 1\nbaz 2\n",
    "unclosed-quote": "client\nverify-x509-name \"vpn server name\n",
    "bad-escape": "client\ndev tun\nca C:\\Users\\me\\ca.crt\n",
    "unclosed-block": "client\ndev tun\n<ca>\n" + CA,
    "html-404": "<html>\n<head><title>404 Not Found</title></head>\n</html>\n",
    "nested-connection": "client\n<connection>\nremote a\n<connection>\nremote b\n</connection>\n</connection>\n",
    "connection-without-remote": "client\n<connection>\nproto udp\n</connection>\n",
    "not-allowed-in-connection": "client\n<connection>\nremote a\nca ca.crt\n</connection>\n",
    "only-unsupported-cipher": "client\ndev tun\nremote a\ndata-ciphers BF-CBC:DES-EDE3-CBC\n",
    "unsupported-digest": "client\ndev tun\nauth MD5\n",
    "tls-version-max-old": "client\ntls-version-max 1.1\n",
    "tls-auth-and-tls-crypt": "client\ntls-auth ta.key 1\ntls-crypt ta.key\n",
    "bad-port": "client\nremote vpn.example.com 70000\n",
    "bad-proto": "client\nremote vpn.example.com 1194 sctp\n",
    "bad-key-direction": "client\nkey-direction 2\n",
    "glued-route-ipv6": "client\ndev tun\nremote a\nroute-ipv6 ::/128 ::1ping-restart 30\n",
    "binary-junk": "client\ndev tun\nremote \x01\x02\x03\n",
    "no-remote": "client\ndev tun\n" + block("ca", CA) + "auth-user-pass\n",
    "not-a-client": "dev tun\nremote vpn.example.com\n" + block("ca", CA) + "auth-user-pass\n",
    "no-ca": "client\ndev tun\nremote vpn.example.com\nauth-user-pass\n",
    "no-client-auth": "client\ndev tun\nremote vpn.example.com\n" + block("ca", CA),
    "cert-without-key": "client\ndev tun\nremote vpn.example.com\n" + block("ca", CA) + block("cert", RSA_CRT),
    "encrypted-key-pkcs8": "client\ndev tun\nremote vpn.example.com\n" + block("ca", CA) + block("cert", RSA_CRT) + block("key", ENC_KEY),
    "encrypted-key-pkcs1": "client\ndev tun\nremote vpn.example.com\n" + block("ca", CA) + block("cert", RSA_CRT) + block("key", ENC_PKCS1),
    "key-cert-mismatch": "client\ndev tun\nremote vpn.example.com\n" + block("ca", CA) + block("cert", RSA_CRT) + block("key", EC_KEY),
    "tls-crypt-v2-server-key": BASE + block("tls-crypt-v2", V2S),
    "truncated-static-key": BASE + block("tls-crypt", "\n".join(TA.splitlines()[:10]) + "\n-----END OpenVPN Static key V1-----\n"),
    "static-key-bad-hex": BASE + block("tls-auth", TA.replace("a", "g", 1) if "-----BEGIN" not in TA[:0] else TA),
    "ca-is-a-key": "client\ndev tun\nremote vpn.example.com\n" + block("ca", RSA_KEY) + "auth-user-pass\n",
    "auth-user-pass-no-password": "client\ndev tun\nremote vpn.example.com\n" + block("ca", CA) + block("auth-user-pass", "alice\n"),
    "auth-user-pass-prompt": "client\ndev tun\nremote vpn.example.com\n" + block("ca", CA) + "auth-user-pass\n",
    "file-by-path-on-image": "client\ndev tun\nremote vpn.example.com\nca ca.crt\nauth-user-pass\n",
}
# Make the bad-hex case really bad: replace a hex digit inside the key body.
lines = TA.splitlines()
body_start = lines.index("-----BEGIN OpenVPN Static key V1-----") + 1
lines[body_start + 2] = "zz" + lines[body_start + 2][2:]
I["static-key-bad-hex"] = BASE + block("tls-auth", "\n".join(lines) + "\n")
for name, text in I.items():
    write(f"invalid/{name}.ovpn", text)
print(len(V), "valid,", len(I), "invalid")

#!/usr/bin/env python3
"""Probes an OpenVPN server's stateless UDP handshake (tls-crypt-v2, early negotiation). Test tool.

Needs Python's `cryptography` module (AES-256-CTR; HMAC-SHA256 comes from the standard library).

  server-probe.py flood  --server 192.0.2.1:1194 --key client.ovpn [--count 10000] [--sockets 256]
      sends COUNT valid P_CONTROL_HARD_RESET_CLIENT_V3 packets (wrapped with the client key, early
      negotiation packet id 0x0f000001, random session ids) from SOCKETS sockets on random source ports;
      prints `probe: sent N resets from M ports, R server resets came back`.
  server-probe.py cookie --server 192.0.2.1:1194 --key client.ovpn --echo right|wrong
      one handshake start: reset, the server's reset (its session id is the HMAC cookie), then the third
      packet, a P_CONTROL_WKC_V1 carrying a TLS ClientHello, echoing the server's session id as it came
      (`right`) or with one bit flipped (`wrong`). Exit 0 if the server answered the third packet (state
      created), 3 if it stayed silent for --wait seconds (refused), 1 if the server never sent its reset.

--key takes a .ovpn with an inline <tls-crypt-v2> block or a client key file. Layouts: openvpn-wire.md
sections 2.6 to 2.8 (tls-crypt wrap: header17 || HMAC-SHA256 tag || AES-256-CTR(IV = tag[:16]); the client
sends with Kc bytes 128..159 / 192..223 and receives with 0..31 / 64..95).
"""
import argparse
import base64
import hashlib
import hmac
import os
import re
import select
import socket
import ssl
import struct
import sys
import time

try:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
except ImportError:  # pragma: no cover
    sys.exit("server-probe: needs python3-cryptography (AES-256-CTR)")

P_CONTROL_V1, P_ACK_V1, P_RESET_SERVER_V2, P_RESET_CLIENT_V3, P_CONTROL_WKC_V1 = 4, 5, 8, 10, 11
EARLY_NEG_START = 0x0F000000


def addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def load_key(path):
    text = open(path).read()
    m = re.search(r"<tls-crypt-v2>(.*?)</tls-crypt-v2>", text, re.S)
    if m:
        text = m.group(1)
    m = re.search(r"-----BEGIN OpenVPN tls-crypt-v2 client key-----(.*?)-----END", text, re.S)
    if not m:
        sys.exit(f"server-probe: no tls-crypt-v2 client key in {path}")
    raw = base64.b64decode("".join(m.group(1).split()))
    kc, wkc = raw[:256], raw[256:]
    return kc, wkc


def ctr(key, iv, data):
    c = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return c.update(data) + c.finalize()


class Wrap:
    def __init__(self, kc, wkc):
        self.send_e, self.send_a = kc[128:160], kc[192:224]
        self.recv_e, self.recv_a = kc[0:32], kc[64:96]
        self.wkc = wkc

    def wrap(self, opcode, sid, pid, plaintext, with_wkc=True):
        header = bytes([opcode << 3]) + sid + struct.pack(">II", pid, int(time.time()))
        tag = hmac.new(self.send_a, header + plaintext, hashlib.sha256).digest()
        return header + tag + ctr(self.send_e, tag[:16], plaintext) + (self.wkc if with_wkc else b"")

    def unwrap(self, pkt):
        """(opcode, session id, plaintext) or None if the tag does not verify."""
        if len(pkt) < 17 + 32:
            return None
        header, tag, ct = pkt[:17], pkt[17:49], pkt[49:]
        plain = ctr(self.recv_e, tag[:16], ct)
        if not hmac.compare_digest(tag, hmac.new(self.recv_a, header + plain, hashlib.sha256).digest()):
            return None
        return header[0] >> 3, header[1:9], plain


def reset_plaintext():
    return b"\x00" + struct.pack(">I", 0)  # no ACKs, message id 0


def flood(args, w):
    socks = []
    for _ in range(args.sockets):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((args.bind, 0))
        s.setblocking(False)
        socks.append(s)
    sent = replies = 0
    for i in range(args.count):
        s = socks[i % len(socks)]
        pkt = w.wrap(P_RESET_CLIENT_V3, os.urandom(8), EARLY_NEG_START + 1, reset_plaintext())
        try:
            s.sendto(pkt, args.server)
            sent += 1
        except BlockingIOError:
            time.sleep(0.001)
        if i % 64 == 0:
            replies += drain(socks)
    time.sleep(0.5)
    replies += drain(socks)
    print(f"probe: sent {sent} resets from {len(socks)} ports, {replies} server resets came back")
    return 0


def drain(socks):
    n = 0
    r, _, _ = select.select(socks, [], [], 0)
    for s in r:
        while True:
            try:
                s.recv(2048)
                n += 1
            except BlockingIOError:
                break
    return n


def client_hello():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def cookie(args, w):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((args.bind, 0))
    s.settimeout(1.0)
    sid = os.urandom(8)
    server_sid = None
    for _ in range(5):
        s.sendto(w.wrap(P_RESET_CLIENT_V3, sid, EARLY_NEG_START + 1, reset_plaintext()), args.server)
        try:
            got = w.unwrap(s.recv(4096))
        except socket.timeout:
            continue
        if got and got[0] == P_RESET_SERVER_V2:
            server_sid = got[1]
            break
    if server_sid is None:
        print("probe: no server reset came back")
        return 1
    echo = server_sid
    if args.echo == "wrong":
        echo = bytes([server_sid[0] ^ 0x01]) + server_sid[1:]
    # ACK block: one ACK (message 0) with the echoed server session id; then message id 1; ClientHello.
    plain = b"\x01" + struct.pack(">I", 0) + echo + struct.pack(">I", 1) + client_hello()
    s.sendto(w.wrap(P_CONTROL_WKC_V1, sid, EARLY_NEG_START + 2, plain), args.server)
    deadline = time.time() + args.wait
    while time.time() < deadline:
        try:
            pkt = s.recv(4096)
        except socket.timeout:
            continue
        got = w.unwrap(pkt)
        if got and got[0] in (P_CONTROL_V1, P_ACK_V1):
            print(f"probe: server cookie {server_sid.hex()}, echoed {echo.hex()} ({args.echo}): "
                  f"the server answered the third packet (opcode {got[0]}): state created")
            return 0
    print(f"probe: server cookie {server_sid.hex()}, echoed {echo.hex()} ({args.echo}): "
          f"no answer to the third packet in {args.wait} s: refused")
    return 3


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["flood", "cookie"])
    p.add_argument("--server", type=addr, required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--sockets", type=int, default=256)
    p.add_argument("--echo", choices=["right", "wrong"], default="right")
    p.add_argument("--wait", type=float, default=3.0)
    args = p.parse_args()
    w = Wrap(*load_key(args.key))
    sys.exit(flood(args, w) if args.mode == "flood" else cookie(args, w))


if __name__ == "__main__":
    main()

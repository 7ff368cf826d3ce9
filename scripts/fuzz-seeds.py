#!/usr/bin/env python3
"""Writes the committed fuzz seeds, fuzz/seeds/<target>/<name>, from real bytes.

Packets come from /work/shared/docs/openvpn-vectors.json (captures of OpenVPN 2.6, copied into
fuzz/seeds/vectors.json so the script runs on any machine); router frames are built here with correct
checksums (ARP, DHCP, DNS, ICMP, TCP, UDP, IPv4 fragments) in the router_frame target's record format.
Run: scripts/fuzz.sh seeds (or python3 scripts/fuzz-seeds.py). The generated corpus (fuzz/corpus/) is not
committed; these seeds are.
"""
import json
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")
SHARED = "/work/shared/docs/openvpn-vectors.json"
LOCAL = os.path.join(SEEDS, "vectors.json")


def load_vectors():
    path = SHARED if os.path.exists(SHARED) else LOCAL
    with open(path) as f:
        vectors = json.load(f)
    if path == SHARED:
        os.makedirs(SEEDS, exist_ok=True)
        with open(LOCAL, "w") as f:
            json.dump(vectors, f, indent=1, sort_keys=True)
    return vectors


def write(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def record(kind, data):
    return bytes([kind]) + struct.pack(">H", len(data)) + data


# --- IPv4 / Ethernet helpers -----------------------------------------------------------------------------

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f">{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip4(a):
    return bytes(int(x) for x in a.split("."))


def ipv4(src, dst, proto, payload, ident=1, frag=0, ttl=64):
    hdr = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, ttl, proto, 0, ip4(src), ip4(dst))
    hdr = hdr[:10] + struct.pack(">H", csum(hdr)) + hdr[12:]
    return hdr + payload


def udp(src, dst, sport, dport, payload):
    length = 8 + len(payload)
    pseudo = ip4(src) + ip4(dst) + struct.pack(">BBH", 0, 17, length)
    hdr = struct.pack(">HHHH", sport, dport, length, 0)
    c = csum(pseudo + hdr + payload) or 0xFFFF
    return ipv4(src, dst, 17, hdr[:6] + struct.pack(">H", c) + payload)


def tcp_syn(src, dst, sport, dport):
    opts = bytes([2, 4, 0x05, 0xB4])  # MSS 1460
    hdr = struct.pack(">HHIIBBHHH", sport, dport, 1000, 0, (5 + 1) << 4, 0x02, 64240, 0, 0) + opts
    pseudo = ip4(src) + ip4(dst) + struct.pack(">BBH", 0, 6, len(hdr))
    c = csum(pseudo + hdr)
    return ipv4(src, dst, 6, hdr[:16] + struct.pack(">H", c) + hdr[18:])


def icmp_echo(src, dst, ident, seq, data=b"oxvpn-fuzz-seed!" * 2, kind=8):
    body = struct.pack(">BBHHH", kind, 0, 0, ident, seq) + data
    body = body[:2] + struct.pack(">H", csum(body)) + body[4:]
    return body


def eth(dst, src, ethertype, payload):
    return dst + src + struct.pack(">H", ethertype) + payload


ROUTER_MAC = bytes([2, 0, 0, 0, 0, 1])
HOST_MAC = bytes([2, 0, 0, 0, 0, 0x42])
BCAST = b"\xff" * 6


def arp_request(sender_ip, target_ip):
    body = struct.pack(">HHBBH", 1, 0x0800, 6, 4, 1) + HOST_MAC + ip4(sender_ip) + b"\0" * 6 + ip4(target_ip)
    return eth(BCAST, HOST_MAC, 0x0806, body)


def dhcp_discover():
    bootp = struct.pack(">BBBBIHH", 1, 1, 6, 0, 0x12345678, 0, 0x8000) + b"\0" * 16
    bootp += HOST_MAC + b"\0" * 10 + b"\0" * 192 + bytes([99, 130, 83, 99])
    bootp += bytes([53, 1, 1, 61, 7, 1]) + HOST_MAC + bytes([55, 3, 1, 3, 6, 12, 4]) + b"host" + b"\xff"
    return eth(BCAST, HOST_MAC, 0x0800, udp("0.0.0.0", "255.255.255.255", 68, 67, bootp))


def dhcp_request(server, addr):
    bootp = struct.pack(">BBBBIHH", 1, 1, 6, 0, 0x12345678, 0, 0x8000) + b"\0" * 16
    bootp += HOST_MAC + b"\0" * 10 + b"\0" * 192 + bytes([99, 130, 83, 99])
    bootp += bytes([53, 1, 3, 50, 4]) + ip4(addr) + bytes([54, 4]) + ip4(server) + b"\xff"
    return eth(BCAST, HOST_MAC, 0x0800, udp("0.0.0.0", "255.255.255.255", 68, 67, bootp))


def dns_query(name, qtype=1):
    q = struct.pack(">HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", qtype, 1)


def router_seeds():
    lan = "10.8.0.50"
    seeds = {
        "arp": [record(0, arp_request(lan, "10.8.0.1"))],
        "dhcp": [record(0, dhcp_discover()), record(4, b""), record(0, dhcp_request("10.8.0.1", "10.8.0.2"))],
        "dns": [record(0, eth(ROUTER_MAC, HOST_MAC, 0x0800,
                              udp(lan, "10.8.0.1", 5353, 53, dns_query("example.com"))))],
        "dns-aaaa": [record(0, eth(ROUTER_MAC, HOST_MAC, 0x0800,
                                   udp(lan, "10.8.0.1", 5354, 53, dns_query("oxvpn.test", 28))))],
        "ping-gw": [record(0, eth(ROUTER_MAC, HOST_MAC, 0x0800,
                                  ipv4(lan, "10.8.0.1", 1, icmp_echo(lan, "10.8.0.1", 7, 1))))],
        "ping-out-and-back": [
            record(0, eth(ROUTER_MAC, HOST_MAC, 0x0800, ipv4(lan, "8.8.8.8", 1, icmp_echo(lan, "8.8.8.8", 7, 1)))),
            record(2, ipv4("8.8.8.8", "10.200.0.2", 1, icmp_echo("8.8.8.8", "10.200.0.2", 7, 1, kind=0))),
            record(4, b"\x10\x00"),
        ],
        "tcp-syn": [record(0, eth(ROUTER_MAC, HOST_MAC, 0x0800, tcp_syn(lan, "1.1.1.1", 40000, 443)))],
        "udp-out": [record(0, eth(ROUTER_MAC, HOST_MAC, 0x0800, udp(lan, "9.9.9.9", 40001, 53, dns_query("a.b"))))],
        "tunnel-udp-in": [record(2, udp("9.9.9.9", "10.200.0.2", 53, 40001, b"\x00" * 20))],
    }
    # An ICMP echo in two IPv4 fragments from the tunnel, and a LAN frame bigger than the tunnel MTU.
    payload = icmp_echo("1.2.3.4", "10.200.0.2", 9, 9, data=bytes(range(256)) * 6)
    first, second = payload[:1000], payload[1000:]
    seeds["fragments"] = [
        record(2, ipv4("1.2.3.4", "10.200.0.2", 1, first, ident=0x4242, frag=0x2000)),
        record(2, ipv4("1.2.3.4", "10.200.0.2", 1, second, ident=0x4242, frag=1000 // 8)),
    ]
    big = icmp_echo(lan, "8.8.4.4", 8, 1, data=b"\xaa" * 1460)
    seeds["lan-over-mtu"] = [record(0, eth(ROUTER_MAC, HOST_MAC, 0x0800, ipv4(lan, "8.8.4.4", 1, big)))]
    # router_services: the payloads only; the target wraps them (kinds in its header).
    discover = dhcp_discover()[14 + 28:]
    request = dhcp_request("10.8.0.1", "10.8.0.2")[14 + 28:]
    query = dns_query("example.com")
    answer = bytearray(query)
    answer[2:4] = b"\x81\x80"
    answer[6:8] = b"\x00\x01"
    answer += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x5d\xb8\xd8\x22"
    services = {
        "dhcp": record(0, discover) + record(0, request) + bytes([7, 0, 10]),
        "dns-forward-answer": record(1, query) + record(2, bytes(answer)),
        "dns-timeout": record(1, query) + bytes([7, 40, 0]) * 3,
        "icmp-error-nat": record(6, b"\x9c\x41\x00\x35hello") + record(3, b"\x03\x03"),
        "frag-needed": record(6, b"\x9c\x42\x00\x35" + b"x" * 1300) + record(3, b"\x03\x04\x00\x00\x02\x40"),
        "fragments": record(5, b"\x42\x42\x20\x00\x11" + b"a" * 800) + record(5, b"\x42\x42\x00\x64\x11" + b"b" * 200)
        + record(4, b"\x43\x43\x20\x00\x01" + b"c" * 600) + record(4, b"\x43\x43\x00\x4b\x01" + b"d" * 100),
    }
    for name, data in services.items():
        write("router_services", name, b"\x00" + data)
        write("router_services", name + "-nonat", b"\x01" + data)
    for name, records in seeds.items():
        # First byte: even = NAT on (the target's convention).
        write("router_frame", name, b"\x00" + b"".join(records))
        write("router_frame", name + "-nonat", b"\x01" + b"".join(records))


# --- OpenVPN seeds ---------------------------------------------------------------------------------------

def h(s):
    return bytes.fromhex(s)


def openvpn_seeds(v):
    control = {
        "plain-reset": v["plain_reset"],
        "plain-control-ack": v["plain_control_with_ack_truncated"],
        "plain-ack": v["plain_ack"],
        "tls-auth-sha1-reset": v["tls_auth_sha1_reset"]["packet"],
        "tls-crypt-reset": v["tls_crypt_reset_test_pkt"]["packet"],
        "tls-crypt-client-reset": v["real_tls_crypt"]["client_reset"]["packet"],
        "tls-crypt-server-reset": v["real_tls_crypt"]["server_reset"]["packet"],
        "tls-crypt-client-ack": v["real_tls_crypt"]["client_ack"]["packet"],
        "tls-auth-sha256-reset": v["real_tls_auth_sha256_reset"],
        "v2-reset-v3": v["real_v2"]["reset_v3"],
        "v2-server-reset": v["real_v2"]["server_reset"],
        "v2-wkc-v1-head": v["real_v2"]["wkc_v1_head"],
        "server-reset-plain": v["real_v2"]["server_reset_plain"],
    }
    for name, hexs in control.items():
        write("control_packet", name, h(hexs))
    tcp = h(v["real_tls_crypt"]["client_reset"]["packet"])
    write("control_packet", "tcp-framed-reset", struct.pack(">H", len(tcp)) + tcp)

    # TCP streams: real packets with their 2-byte length prefixes, back to back, then a zero-length frame.
    pkts = [h(v["real_tls_crypt"]["client_reset"]["packet"]), h(v["real_gcm"]["packet"]), h(v["plain_ack"])]
    stream = b"".join(struct.pack(">H", len(p)) + p for p in pkts)
    write("tcp_stream", "three-packets", b"\x07" + stream)
    write("tcp_stream", "zero-length", b"\x00" + stream + b"\x00\x00" + stream)
    write("tcp_stream", "big-frame", b"\x40" + struct.pack(">H", 3000) + bytes(range(256)) * 12)

    data = {
        "c2s-ping": v["real_prf"]["c2s_ping_packet"],
        "aes-gcm": v["real_gcm"]["packet"],
        "chacha": v["real_chacha"]["packet"],
        "aes-cbc": v["real_cbc"]["packet"],
    }
    for name, hexs in data.items():
        write("data_packet", name, h(hexs))

    push = h(v["real_push_reply"])
    write("control_message", "push-reply", push if push.endswith(b"\0") else push + b"\0")
    write("control_message", "km2-client", h(v["real_km2_client"]))
    write("control_message", "km2-server", h(v["real_km2_server"]))
    write("control_message", "early-negotiation", h(v["real_v2"]["server_reset_plain"])[17:])
    write("control_message", "continuation",
          b"PUSH_REPLY,route 10.9.0.0 255.255.255.0,push-continuation 2\0"
          b"PUSH_REPLY,ifconfig 10.8.0.2 255.255.255.0,peer-id 1,cipher AES-256-GCM,push-continuation 1\0")
    write("control_message", "others",
          b"AUTH_FAILED,bad password\0RESTART,[N]restart\0HALT,stop\0EXIT\0INFO_PRE,OPEN_URL:x\0"
          b"AUTH_PENDING,timeout 30\0")

    pem = v["real_v2"]["client_key_pem"]
    write("tls_crypt_v2_key", "client-key-pem", pem.encode())
    import base64
    body = base64.b64decode("".join(l for l in pem.splitlines() if not l.startswith("-----")))
    write("tls_crypt_v2_key", "client-key-body", body)
    write("tls_crypt_v2_key", "wkc-metadata", b"\x11" * 256 + h(v["v2_test_client_key_metadata"]["wkc"]))

    # The server's stateless first exchange: real client packets as they arrive, and for the valid-WKc
    # path (first byte = metadata length, metadata, then a plain packet the target wraps with the WKc).
    for name in ("plain-reset", "tls-auth-sha1-reset", "tls-crypt-client-reset", "tls-crypt-client-ack",
                 "v2-reset-v3", "v2-wkc-v1-head"):
        write("server_handshake", name, h(control[name]))
    stamp = b"\x01" + struct.pack(">Q", 1_700_000_000 - 86400)
    csid = h("a4b7076dcd189cca")
    write("server_handshake", "valid-wkc-reset-v3", b"\x09" + stamp + b"\x50" + csid + b"\x00" + bytes(4))
    write("server_handshake", "valid-wkc-wkc-v1", b"\x09" + stamp + b"\x58" + csid + b"\x01" + bytes(4)
          + h("cf251bd610a8bdc4") + struct.pack(">I", 1) + b"\x16\x03\x01")
    write("server_handshake", "valid-wkc-user-meta", b"\x06\x00alice" + b"\x50" + csid + b"\x00" + bytes(4))

    # The engine after its fixed start (session id 11..11): a plain-TLS server reset that ACKs the client
    # reset (message 0), then an empty P_CONTROL_V1, time passing, an ACK, and garbage data.
    client_sid = b"\x11" * 8
    server_sid = h("cf251bd610a8bdc4")
    reset = bytes([8 << 3]) + server_sid + b"\x01" + struct.pack(">I", 0) + client_sid + struct.pack(">I", 0)
    control = bytes([4 << 3]) + server_sid + b"\x01" + struct.pack(">I", 0) + client_sid + struct.pack(">I", 1)
    control += h("160303002a0200002603030000")  # the start of a TLS ServerHello record
    ack = bytes([5 << 3]) + server_sid + b"\x01" + struct.pack(">I", 1) + client_sid
    time = bytes([5, 2, 0])  # kind 5: 2 s, no payload
    data_pkt = h(v["real_gcm"]["packet"])
    write("engine", "plain-handshake",
          b"\x00" + record(0, reset) + record(0, control) + time + record(0, ack) + record(1, data_pkt))
    write("engine", "plain-timeouts", b"\x00" + record(0, reset) + bytes([5, 60, 0]) * 4)
    write("engine", "tcp-handshake", b"\x03" + record(0, struct.pack(">H", len(reset)) + reset))
    write("engine", "tls-crypt", b"\x01" + record(0, h(v["real_tls_crypt"]["server_reset"]["packet"])))
    write("engine", "v2", b"\x02" + record(0, h(v["real_v2"]["server_reset"])) + record(7, b""))
    write("engine", "send-before-up", b"\x00" + record(6, ipv4("10.8.0.2", "10.8.0.1", 1,
                                                                  icmp_echo("10.8.0.2", "10.8.0.1", 1, 1))))

    # The connected engine: authenticated data (IP, ping, OCC), control messages through TLS, time, replays.
    ip = ipv4("10.8.0.1", "10.8.0.2", 1, icmp_echo("10.8.0.1", "10.8.0.2", 1, 1))
    ping = h("2a187bf3641eb4cb07ed2d0a981fc748")
    occ_exit = h("287f346bd4ef7a812d56b8d3afc5459c") + b"\x06"
    write("engine_connected", "data-ping-occ", record(3, ip) + record(3, ping) + record(7, b"") + record(6, ip)
          + bytes([5, 12, 0]) + record(3, occ_exit))
    write("engine_connected", "push-update",
          record(4, b"PUSH_REPLY,route 10.9.0.0 255.255.255.0,ping 5,ping-restart 20,push-continuation 2")
          + record(4, b"PUSH_REPLY,ifconfig 10.8.0.9 255.255.255.0,peer-id 9,cipher AES-128-GCM")
          + bytes([5, 30, 0]) + record(3, ip))
    for name, msg in [("restart", b"RESTART,[N]server restarting"), ("auth-failed", b"AUTH_FAILED,expired"),
                      ("halt", b"HALT,bye"), ("info", b"INFO,OPEN_URL:https://example.com"),
                      ("exit", b"EXIT"), ("auth-pending", b"AUTH_PENDING,timeout 30")]:
        write("engine_connected", "msg-" + name, record(4, msg) + bytes([5, 2, 0]) + bytes([5, 70, 0]))
    write("engine_connected", "idle-timeout", bytes([5, 61, 0]) + bytes([5, 61, 0]) + record(3, ip))

    # Reliability layer: queue, transmit, deliver, ack in order; then with loss and duplication.
    write("reliable", "in-order", bytes([0, 0, 200, 1, 100, 1, 100, 2, 0, 2, 0, 5, 0, 5, 0]))
    write("reliable", "loss-dup", bytes([0, 0, 250, 1, 50, 1, 50, 1, 50, 4, 0, 3, 0, 2, 0, 8, 40, 1, 50,
                                         2, 0, 2, 0, 6, 0, 7, 0, 5, 0]))
    write("reliable", "hostile", bytes([1, 0, 100, 1, 90, 9, 16, 9, 17, 25, 16, 2, 0, 5, 0]))


def main():
    v = load_vectors()
    openvpn_seeds(v)
    router_seeds()
    n = sum(len(files) for _, _, files in os.walk(SEEDS))
    print(f"fuzz seeds: {n} files in {os.path.relpath(SEEDS, ROOT)}")


if __name__ == "__main__":
    main()

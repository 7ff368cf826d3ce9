#!/usr/bin/env python3
"""Fault-injecting relay between an OpenVPN client and server (test tool, Python 3 standard library only).

UDP: every datagram, in both directions, may be dropped (--loss), duplicated (--dup), held back so later
ones overtake it (--reorder) and is delayed by --delay-ms plus a uniform 0..--jitter-ms. Hostile extras
towards the client: --garbage P sends a random datagram after a forwarded one, --replay P re-sends an
earlier server->client data packet (P_DATA_V1/V2) a little later.
TCP: bytes are relayed as they come; --cut-after S closes both sides of the connection S seconds after
it was accepted (every connection, or only the first with --cut-once).
Every decision comes from random.Random(--seed): the same seed and traffic give the same faults.
On SIGTERM/SIGINT (or --duration) it writes its counters as one line `relay: k=v ...` to stderr and to
--stats FILE.

  relay.py --listen 10.98.0.3:1194 --upstream 10.98.0.1:1194 --seed 1 --loss 0.05 --dup 0.01 \
           --reorder 0.02 --delay-ms 5 --jitter-ms 50 --stats stats.txt
"""
import argparse
import heapq
import random
import select
import signal
import socket
import sys
import time


def addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


class Counters(dict):
    def add(self, key, n=1):
        self[key] = self.get(key, 0) + n

    def line(self):
        return "relay: " + " ".join(f"{k}={v}" for k, v in sorted(self.items()))


class UdpRelay:
    def __init__(self, args, rng, counters):
        self.args, self.rng, self.c = args, rng, counters
        self.down = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # faces the client
        self.down.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.down.bind(args.listen)
        self.up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # faces the server
        self.up.bind((args.listen[0], 0))
        self.client = None
        self.queue = []  # (due, seq, direction, bytes, counter to add once sent or None)
        self.seq = 0
        self.recent_data = []  # server->client data packets, for replays

    def schedule(self, direction, data, extra=0.0, counter=None):
        a = self.args
        delay = (a.delay_ms + self.rng.uniform(0, a.jitter_ms)) / 1000.0 + extra
        self.seq += 1
        heapq.heappush(self.queue, (time.monotonic() + delay, self.seq, direction, data, counter))

    def on_packet(self, direction, data):
        a, rng, c = self.args, self.rng, self.c
        c.add(f"{direction}_in")
        if rng.random() < a.loss:
            c.add(f"{direction}_dropped")
            return
        extra = 0.0
        if rng.random() < a.reorder:
            # Held back long enough for the packets behind it to overtake.
            extra = (a.jitter_ms + 30 + rng.uniform(0, 50)) / 1000.0
            c.add(f"{direction}_reordered")
        self.schedule(direction, data, extra)
        if rng.random() < a.dup:
            c.add(f"{direction}_duplicated")
            self.schedule(direction, data, rng.uniform(0, 0.05))
        if direction == "s2c":
            opcode = data[0] >> 3 if data else 0
            if opcode in (6, 9):
                self.recent_data.append(data)
                del self.recent_data[:-64]
            if self.recent_data and rng.random() < a.replay:
                # Counted when sent: a replay still queued when the client stops never reached it.
                self.schedule(
                    direction, rng.choice(self.recent_data), rng.uniform(0.01, 0.5), "s2c_replayed"
                )
            if rng.random() < a.garbage:
                c.add("s2c_garbage")
                junk = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 1500)))
                self.schedule(direction, junk)

    def flush(self):
        now = time.monotonic()
        while self.queue and self.queue[0][0] <= now:
            _, _, direction, data, counter = heapq.heappop(self.queue)
            try:
                if direction == "c2s":
                    self.up.sendto(data, self.args.upstream)
                elif self.client is not None:
                    self.down.sendto(data, self.client)
                self.c.add(f"{direction}_out")
                if counter:
                    self.c.add(counter)
            except OSError:
                self.c.add(f"{direction}_send_error")  # server down (ICMP unreachable): like a loss

    def step(self, timeout):
        if self.queue:
            timeout = max(0.0, min(timeout, self.queue[0][0] - time.monotonic()))
        readable, _, _ = select.select([self.down, self.up], [], [], timeout)
        for sock in readable:
            try:
                data, peer = sock.recvfrom(65536)
            except OSError:
                continue  # ECONNREFUSED from an earlier send while the server was down
            if sock is self.down:
                self.client = peer
                self.on_packet("c2s", data)
            else:
                self.on_packet("s2c", data)
        self.flush()


class TcpRelay:
    def __init__(self, args, rng, counters):
        self.args, self.rng, self.c = args, rng, counters
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(args.listen)
        self.listener.listen(4)
        self.pair = None  # (client socket, server socket, cut time)
        self.cuts = 0

    def close(self):
        if self.pair:
            for s in self.pair[:2]:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        self.pair = None

    def step(self, timeout):
        socks = [self.listener] + (list(self.pair[:2]) if self.pair else [])
        readable, _, _ = select.select(socks, [], [], timeout)
        for sock in readable:
            if sock is self.listener:
                client, _ = self.listener.accept()
                self.close()
                try:
                    server = socket.create_connection(self.args.upstream, timeout=5)
                except OSError:
                    self.c.add("tcp_upstream_refused")
                    client.close()
                    continue
                cut = None
                if self.args.cut_after and not (self.args.cut_once and self.cuts):
                    cut = time.monotonic() + self.args.cut_after
                self.pair = (client, server, cut)
                self.c.add("tcp_accepted")
                continue
            if not self.pair:
                continue
            client, server, _ = self.pair
            other = server if sock is client else client
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.c.add("tcp_closed_by_peer")
                self.close()
                return
            self.c.add("c2s_bytes" if sock is client else "s2c_bytes", len(data))
            try:
                other.sendall(data)
            except OSError:
                self.close()
                return
        if self.pair and self.pair[2] is not None and time.monotonic() >= self.pair[2]:
            self.c.add("tcp_cut")
            self.cuts += 1
            self.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", type=addr, required=True)
    p.add_argument("--upstream", type=addr, required=True)
    p.add_argument("--tcp", action="store_true", help="relay TCP instead of UDP")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--loss", type=float, default=0.0)
    p.add_argument("--dup", type=float, default=0.0)
    p.add_argument("--reorder", type=float, default=0.0)
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--garbage", type=float, default=0.0)
    p.add_argument("--replay", type=float, default=0.0)
    p.add_argument("--cut-after", type=float, default=0.0)
    p.add_argument("--cut-once", action="store_true")
    p.add_argument("--duration", type=float, default=0.0, help="exit after this many seconds (0: never)")
    p.add_argument("--stats")
    args = p.parse_args()

    rng = random.Random(args.seed)
    counters = Counters()
    relay = (TcpRelay if args.tcp else UdpRelay)(args, rng, counters)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    end = time.monotonic() + args.duration if args.duration else None
    while not stop and (end is None or time.monotonic() < end):
        relay.step(0.05)
    line = counters.line()
    print(line, file=sys.stderr, flush=True)
    if args.stats:
        with open(args.stats, "w") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()

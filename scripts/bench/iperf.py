#!/usr/bin/env python3
"""Summarises one `iperf3 --json` client result for scripts/bench.sh.

Usage: iperf.py tcp FILE            -> Mbit/s the receiver got
       iperf.py udp FILE PAYLOAD    -> received packets/s, loss %, sent packets/s
Prints `-` fields (and exits 1) when the run failed (iperf3 writes an "error" key then).
"""
import json
import sys


def main() -> int:
    mode, path = sys.argv[1], sys.argv[2]
    try:
        with open(path) as f:
            end = json.load(f)["end"]
        if mode == "tcp":
            print(f"{end['sum_received']['bits_per_second'] / 1e6:.1f}")
            return 0
        payload = int(sys.argv[3])
        recv, sent = end["sum_received"], end["sum_sent"]
        received = recv["bytes"] / payload
        secs = recv["seconds"] or 1
        loss = 100.0 * (1 - received / sent["packets"]) if sent["packets"] else 100.0
        print(f"{received / secs:.0f} {max(loss, 0.0):.1f} {sent['packets'] / (sent['seconds'] or 1):.0f}")
        return 0
    except (OSError, ValueError, KeyError, TypeError):
        print("-" if mode == "tcp" else "- - -")
        return 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Wall time and CPU time of one VPN client connect, for `make bench` (scripts/bench.sh).

Usage: connect-cost.py TIMEOUT_S PATTERN LOG CMD...

Starts CMD (e.g. `ip netns exec NS openvpn --config c.ovpn`), reads its merged stdout/stderr until a line
matches the regular expression PATTERN (`Initialization Sequence Completed`, ovpn-ping's `handshake N ms`),
then stops it with SIGTERM and waits for it. Prints `WALL_MS CPU_MS`: the milliseconds from starting CMD to
the matching line, and the user+system CPU the process (and the children it waited for) used in total,
from getrusage(RUSAGE_CHILDREN), so startup (config parsing, key loading) is included. The output of CMD is
written to LOG. Exit status 1 if PATTERN did not appear within TIMEOUT_S seconds.
"""
import os
import re
import resource
import selectors
import signal
import subprocess
import sys
import time


def main() -> int:
    if len(sys.argv) < 5:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    timeout, pattern, log_path, cmd = float(sys.argv[1]), re.compile(sys.argv[2]), sys.argv[3], sys.argv[4:]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    wall_ms = None
    pending = b""
    with open(log_path, "wb") as log:
        while wall_ms is None and time.monotonic() - start < timeout:
            if not sel.select(timeout=0.05):
                if proc.poll() is not None:
                    break
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            log.write(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if pattern.search(line.decode(errors="replace")):
                    wall_ms = (time.monotonic() - start) * 1000
                    break
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rest, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, _ = proc.communicate()
        log.write(rest or b"")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_ms = ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000
    if wall_ms is None:
        return 1
    print(f"{wall_ms:.1f} {cpu_ms:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

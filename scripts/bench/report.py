#!/usr/bin/env python3
"""Renders the results of scripts/bench.sh as one table, prints it and writes it into BENCHMARKS.md.

Usage: report.py RESULTS OUT.md [--criterion DIR] [--ratio FILE]

RESULTS holds `key=value` lines written by bench.sh. The generated part of OUT.md lies between the
`<!-- bench:begin -->` and `<!-- bench:end -->` markers and is replaced on every run; everything outside the
markers (notes, profiles, before/after of changes) is kept. OUT.md is created with just the markers if it
does not exist.
"""
import json
import os
import sys

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
CIPHERS = ["AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305"]


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def ratio(a, b, digits=2):
    a, b = num(a), num(b)
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.{digits}f}"


def mib(v):
    v = num(v)
    return "-" if v is None else f"{v / 1048576:.2f} MiB"


def criterion_estimate(path):
    """The figure criterion prints: the slope estimate when it sampled linearly, else the mean (ns)."""
    try:
        with open(path) as f:
            est = json.load(f)
        return (est.get("slope") or est["mean"])["point_estimate"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def criterion_mean(base, group, func, size):
    return criterion_estimate(os.path.join(base, group, func.replace("/", "_"), str(size), "new", "estimates.json"))


def main() -> int:
    args = sys.argv[1:]
    results_path, out_path = args[0], args[1]
    crit_dir = args[args.index("--criterion") + 1] if "--criterion" in args else None
    ratio_path = args[args.index("--ratio") + 1] if "--ratio" in args else None
    r = {}
    with open(results_path) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            r[key] = value.strip() or "-"
    g = lambda k: r.get(k, "-")  # noqa: E731

    accel = g("machine.accel").upper()
    vm = f"oxvpn (router VM, {accel})"
    lines = [
        f"Measured {g('machine.date')} at commit {g('machine.commit')} by `make bench` "
        f"({g('bench.seconds')} s). Reference: Debian's `{g('machine.openvpn')}` client, native, in a "
        "namespace, same server, same client .ovpn, AES-256-GCM, tls-crypt-v2. Ratio = oxvpn / openvpn "
        "(higher is better for rates, lower for times).",
        "",
        f"| figure | {vm} | openvpn client (native) | ratio |",
        "|---|---:|---:|---:|",
    ]

    def row(name, a, b, digits=2):
        lines.append(f"| {name} | {a} | {b} | {ratio(a, b, digits)} |")

    row("TCP LAN -> server, Mbit/s (iperf3)", g("vm.tcp_up"), g("ref.tcp_up"))
    row("TCP server -> LAN, Mbit/s (iperf3 -R)", g("vm.tcp_down"), g("ref.tcp_down"))
    row("UDP 64 B payloads received, packets/s", g("vm.udp_pps"), g("ref.udp_pps"))
    lines.append(f"| UDP 64 B: loss % (sender offered pkt/s) | {g('vm.udp_loss')} ({g('vm.udp_sent')}) | "
                 f"{g('ref.udp_loss')} ({g('ref.udp_sent')}) | |")
    direct = num(g("direct.rtt"))

    def added(k):
        v = num(g(k))
        return "-" if v is None or direct is None else f"{v - direct:.3f}"

    row("ping RTT through the tunnel to 10.8.0.1, ms", g("vm.rtt"), g("ref.rtt"))
    row("added ping latency vs no tunnel, ms", added("vm.rtt"), added("ref.rtt"))
    lines.append(f"| ping RTT without tunnel, ms | LAN -> VM gateway {g('vm.gw_rtt')} | "
                 f"to the server's public address {g('direct.rtt')} | |")
    row("start -> `Initialization Sequence Completed`, s", g("vm.isc_s"), g("ref.isc_s"))
    lines.append(f"| ... on the guest clock, s | {g('vm.isc_guest')} | | |")
    row("one connect (engine in build/ovpn-ping, native): wall ms", g("engine.connect_ms"), g("ref.connect_ms"))
    row("one connect: client CPU ms (user+sys, incl. startup)", g("engine.connect_cpu_ms"),
        g("ref.connect_cpu_ms"))
    for ver in ("TLS1.3", "TLS1.2"):
        path = os.path.join(crit_dir or "", "handshake_client_cpu", f"{ver}-P256", "new", "estimates.json")
        ns = criterion_estimate(path)
        if ns is not None:
            lines.append(f"| engine's {ver} handshake, client CPU, in-memory server (cargo bench --bench "
                         f"handshake), µs | {ns / 1000:.0f} (native) | | |")
    row("idle host CPU over 10 s, tunnel up, % of a core", g("vm.idle_cpu"), g("ref.idle_cpu"))
    fail = g("vm.min_mem_fail").replace("|", "/")
    why = "" if fail == "-" else f" (one MiB less: `{fail.split('] ', 1)[-1]}`)"
    lines.append(f"| smallest guest memory passing traffic (`-m`) | {g('vm.min_mem')} MiB{why} | | |")
    lines.append(f"| image size: build/oxvpn.elf / stripped | {mib(g('image.elf'))} / "
                 f"{mib(g('image.stripped'))} | /usr/sbin/openvpn {mib(g('ref.binary'))} (+ shared libs) | |")

    dc = []
    if ratio_path and os.path.exists(ratio_path):
        rows = {}
        with open(ratio_path) as f:
            for line in f:
                p = line.split()
                if len(p) == 6 and p[0] == "ratio":
                    rows[(p[1], p[2])] = (p[3], p[4], p[5])
        if rows:
            dc += [
                "",
                "Data channel at 1400 bytes, interleaved (`cargo bench -p openvpn --bench data_channel_ratio`): "
                "ns per packet of `DataChannel` (header, packet id, replay window, in place) and of ring's "
                "`LessSafeKey` seal/open on the same buffers, alternating in one loop, best of many rounds. "
                "Target: engine >= 85% of raw throughput.",
                "",
                "| cipher | op | engine ns | raw AEAD ns | engine / raw throughput |",
                "|---|---|---:|---:|---:|",
            ]
            for (cipher, op), (e, raw, pct) in sorted(rows.items()):
                dc.append(f"| {cipher} | {op} | {e} | {raw} | {pct}% |")
    if crit_dir and os.path.isdir(crit_dir):
        crit = []
        for c in CIPHERS:
            enc = criterion_mean(crit_dir, "data_channel", f"{c}/encrypt", 1400)
            dec = criterion_mean(crit_dir, "data_channel", f"{c}/decrypt", 1400)
            seal = criterion_mean(crit_dir, "raw_ring_aead", f"{c}/seal", 1400)
            opn = criterion_mean(crit_dir, "raw_ring_aead", f"{c}/open", 1400)
            if None in (enc, dec, seal, opn):
                continue
            crit.append(f"| {c} | {enc:.0f} | {seal:.0f} | {100 * seal / enc:.0f}% | {dec:.0f} | {opn:.0f} | "
                        f"{100 * opn / dec:.0f}% |")
        if crit:
            dc += [
                "",
                "Criterion estimates at 1400 bytes (`cargo bench -p openvpn --bench data_channel -- "
                "--measurement-time 2 '/1400$'`; the benches run one after the other, so load from other "
                "processes can skew a ratio; the interleaved table above is the one to trust):",
                "",
                "| cipher | encrypt ns | raw seal ns | ratio | decrypt ns | raw open ns | ratio |",
                "|---|---:|---:|---:|---:|---:|---:|",
            ] + crit

    machine = [
        "",
        f"Machine: {g('machine.nproc')} CPUs ({g('machine.cpu')}), {g('machine.kernel')}, "
        f"{g('machine.qemu')}, accelerator {accel}; load average at start {g('machine.load')} "
        "(the machine is shared; figures are side by side in one run, not absolute).",
        "",
        "Commands (scripts/bench.sh): `iperf3 -c 10.8.0.1 -t N` and `-R` (TCP), `iperf3 -u -l 64 -b 1G` "
        "(UDP), `busybox ping -c 20 -i 0.05` (RTT), run time of all threads from /proc/PID/task/*/schedstat over 10 s (idle CPU), "
        "`scripts/bench/connect-cost.py` (connect wall time and getrusage CPU; openvpn with "
        "`--ifconfig-noexec --route-noexec`), `MEM=<n>M scripts/qemu.sh` bisection (tunnel up + 3 pings), "
        "`strip`.",
    ]
    body = lines + dc + machine
    table = "\n".join(body)
    print(table)

    try:
        with open(out_path) as f:
            old = f.read()
    except OSError:
        old = f"# oxvpn benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN in old and END in old:
        head, _, rest = old.partition(BEGIN)
        _, _, tail = rest.partition(END)
    else:
        head, tail = old.rstrip("\n") + "\n\n", "\n"
    with open(out_path, "w") as f:
        f.write(f"{head}{BEGIN}\n{table}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

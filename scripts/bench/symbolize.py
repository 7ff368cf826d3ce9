#!/usr/bin/env python3
"""Maps the guest profile written by scripts/bench/tcg-profile.c onto the image's functions.

Usage: symbolize.py ELF PROFILE [TOP]

PROFILE lines are `HEX_ADDRESS INSTRUCTIONS EXECUTIONS` per translation block. Each block is charged to the
function containing its start address (from `nm -n -C ELF`; the image is identity-mapped, so guest virtual
addresses are ELF addresses). Prints the TOP (default 30) functions by executed guest instructions, with their
share of the total, and how many translation blocks ran (under TCG every iteration of a `rep movs` is one
block execution, so a function whose blocks run far more often than its instruction share suggests, such as
memcpy, costs more host time than the instruction count shows). SORT=blocks sorts by blocks run.
"""
import bisect
import os
import collections
import subprocess
import sys


def main() -> int:
    elf, profile = sys.argv[1], sys.argv[2]
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    syms = []
    nm = subprocess.run(["nm", "-n", "-C", elf], capture_output=True, text=True, check=True).stdout
    for line in nm.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW":
            syms.append((int(parts[0], 16), parts[2]))
    starts = [a for a, _ in syms]
    insns, execs = collections.Counter(), collections.Counter()
    total = total_execs = 0
    with open(profile) as f:
        for line in f:
            a, n, e = line.split()
            a, n, e = int(a, 16), int(n), int(e)
            i = bisect.bisect_right(starts, a) - 1
            name = syms[i][1] if i >= 0 else f"?{a:#x}"
            # Shorten Rust paths: keep the last three segments, drop the hash.
            if "::h" in name:
                name = name.rsplit("::h", 1)[0]
            insns[name] += n
            execs[name] += e
            total += n
            total_execs += e
    print(f"guest instructions executed: {total}, translation blocks run: {total_execs}")
    # The allocator entry points' first blocks run once per call: heap allocations during the run.
    allocs = sum(execs[n] for n in ("__rustc::__rust_alloc", "__rustc::__rust_alloc_zeroed",
                                   "__rustc::__rust_realloc", "__rust_alloc", "__rust_alloc_zeroed",
                                   "__rust_realloc"))
    print(f"heap allocations (calls of __rust_alloc, _zeroed, __rust_realloc): {allocs}")
    print(f"{'insns':>6} {'instructions':>13} {'blocks':>6} {'blocks run':>12}  function")
    order = execs if os.environ.get("SORT") == "blocks" else insns
    for name, _ in order.most_common(top):
        n, e = insns[name], execs[name]
        print(f"{100 * n / max(total, 1):5.1f}% {n:13d} {100 * e / max(total_execs, 1):5.1f}% {e:12d}  {name[:130]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

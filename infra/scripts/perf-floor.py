#!/usr/bin/env python3
"""Where the authorizer's CPU goes beyond the floor's, from a perf recording
of the floor benchmark (BENCHMARKS.md, "Profiling the authorizer").

    perf record -a -F 1999 -o perf.data -- \\
        infra/scripts/with-dynamodb-local.sh \\
        cargo bench --profile profiling -p authorizer --bench floor -- 6 2000
    perf script -i perf.data -F comm,pid,ip,sym,dso | \\
        infra/scripts/perf-floor.py --calls 14007 --hz 1999

Samples are taken by leaf function (no call stacks: the build keeps no frame
pointers) and summed by crate for the project's processes (`authorizer`)
and the floor's (the benchmark binary re-run; its first process, the
driver, is left out). Prints each group's CPU time per call and the crates
whose share differs most, in microseconds per call.
"""
import argparse
import collections
import re
import sys

LINE = re.compile(r"\s*(\S+)\s+(\d+)\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)$")


def crate(sym, dso):
    if "kallsyms" in dso:
        return "[kernel]"
    if "libc" in dso or "ld-linux" in dso:
        return "[libc]"
    if "vdso" in dso:
        return "[vdso]"
    s = re.sub(r"^(<|&mut |&)+", "", sym)
    m = re.match(r"([A-Za-z_][A-Za-z_0-9]*)::", s)
    return m.group(1) if m else "[other]"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, required=True, help="calls per group (rounds x (warm + 1))")
    ap.add_argument("--hz", type=float, default=1999.0, help="perf's sampling frequency")
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args()

    samples = []
    for line in sys.stdin:
        m = LINE.match(line)
        if not m:
            continue
        comm, pid, sym, dso = m.groups()
        if comm == "authorizer":
            samples.append(("project", int(pid), crate(sym, dso)))
        elif comm.startswith("floor-"):
            samples.append(("floor", int(pid), crate(sym, dso)))
    floor_pids = sorted({pid for g, pid, _ in samples if g == "floor"})
    driver = floor_pids[0] if floor_pids else None
    by = {"project": collections.Counter(), "floor": collections.Counter()}
    for group, pid, c in samples:
        if group == "floor" and pid == driver:
            continue
        by[group][c] += 1

    per_call = 1e6 / args.hz / args.calls  # µs of CPU per sample, per call
    total = {g: sum(c.values()) for g, c in by.items()}
    for g in ("project", "floor"):
        print(f"{g:<8} {total[g]:>7} samples  {total[g] * per_call:8.1f} µs CPU per call")
    diff = total["project"] - total["floor"]
    print(f"{'extra':<8} {diff:>7} samples  {diff * per_call:8.1f} µs per call\n")
    crates = set(by["project"]) | set(by["floor"])
    rows = sorted(crates, key=lambda c: -(by["project"][c] - by["floor"][c]))
    print(f"{'crate (leaf)':<28} {'project':>8} {'floor':>8} {'µs/call':>8}")
    for c in rows[: args.top] + ["..."] + rows[-5:]:
        if c == "...":
            print("...")
            continue
        d = by["project"][c] - by["floor"][c]
        print(f"{c:<28} {by['project'][c]:>8} {by['floor'][c]:>8} {d * per_call:>+8.2f}")


if __name__ == "__main__":
    main()

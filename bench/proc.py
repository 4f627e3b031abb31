"""Process facts for bench/run: `proc.py rss PID` (KiB), `proc.py cpu PID` (user+system s),
`proc.py line` (one run's JSON on stdin → a progress line).

For a server made of several processes (a gunicorn master, its workers and their pools):
`proc.py rss-tree PID` (VmRSS summed over PID and all its descendants, KiB; pages shared
copy-on-write count once per process), `proc.py pss-tree PID` (proportional set size summed,
KiB: each shared page divided among its sharers, so the sum is the tree's real footprint),
`proc.py cpu-tree PID` (user+system s of the live processes plus what they reaped from exited
children) and `proc.py count-tree PID` (processes).

`proc.py stages URL`: Portcullis's per-stage time so far, from its Prometheus `/metrics`
(`portcullis_stage_duration_seconds` sums and counts), as JSON `{stage: [seconds, count]}`; `{}`
when the URL does not answer."""

import json
import os
import sys
import urllib.request


def tree(root: int) -> list[int]:
    """`root` and its live descendants, parents first."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
        children.setdefault(ppid, []).append(int(entry))
    out = [root]
    i = 0
    while i < len(out):
        out.extend(sorted(children.get(out[i], [])))
        i += 1
    return out


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0])


def pss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return int(f.read().split("\nPss:")[1].split()[0])


def cpu_s(pid: int, reaped: bool) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if reaped:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime: waited-for children
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_sum(root: int, fact) -> float:
    total = 0
    for pid in tree(root):
        try:
            total += fact(pid)
        except (OSError, IndexError, ValueError):
            if pid == root:
                raise
    return total


def stages(url: str) -> dict[str, list[float]]:
    """Sum (s) and count of each `portcullis_stage_duration_seconds{stage=...}` histogram."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out: dict[str, list[float]] = {}
    for line in text.splitlines():
        for suffix, slot in (("_sum{", 0), ("_count{", 1)):
            head = "portcullis_stage_duration_seconds" + suffix
            if line.startswith(head) and 'stage="' in line:
                stage = line.split('stage="', 1)[1].split('"', 1)[0]
                out.setdefault(stage, [0.0, 0.0])[slot] = float(line.rsplit(" ", 1)[1])
    return out


def main() -> None:
    what = sys.argv[1]
    if what == "stages":
        print(json.dumps(stages(sys.argv[2])))
        return
    if what == "line":
        r = json.load(sys.stdin)
        rps = r["requests"] / (r["duration_us"] / 1e6)
        print(f"{rps:.0f} req/s, p50 {r['p50_us']} us, p99 {r['p99_us']} us, upstream/call {r['upstream_requests'] / max(r['requests'], 1):.2f}")
        return
    pid = int(sys.argv[2])
    if what == "rss":
        print(rss_kib(pid))
    elif what == "cpu":
        print(cpu_s(pid, reaped=False))
    elif what == "rss-tree":
        print(int(tree_sum(pid, rss_kib)))
    elif what == "pss-tree":
        print(int(tree_sum(pid, pss_kib)))
    elif what == "cpu-tree":
        print(tree_sum(pid, lambda p: cpu_s(p, reaped=True)))
    elif what == "count-tree":
        print(len(tree(pid)))
    else:
        raise SystemExit(f"unknown {what}")


if __name__ == "__main__":
    main()

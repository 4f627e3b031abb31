"""Process facts for bench/run: `proc.py rss PID` (KiB), `proc.py cpu PID` (user+system s),
`proc.py line` (one run's JSON on stdin → a progress line)."""

import json
import os
import sys


def main() -> None:
    what = sys.argv[1]
    if what == "line":
        r = json.load(sys.stdin)
        rps = r["requests"] / (r["duration_us"] / 1e6)
        print(f"{rps:.0f} req/s, p50 {r['p50_us']} us, p99 {r['p99_us']} us, upstream/call {r['upstream_requests'] / max(r['requests'], 1):.2f}")
        return
    pid = sys.argv[2]
    if what == "rss":
        with open(f"/proc/{pid}/status") as f:
            print(f.read().split("VmRSS:")[1].split()[0])
    elif what == "cpu":
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        print(ticks / os.sysconf("SC_CLK_TCK"))
    else:
        raise SystemExit(f"unknown {what}")


if __name__ == "__main__":
    main()

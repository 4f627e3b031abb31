"""Medians of bench/run's wrk runs → latest.json, latest.md and latency.svg.

`report.py RUNS.jsonl IDLE.jsonl OUTDIR DURATION RUNS`"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
from pathlib import Path

ORDER = ["direct", "minimal", "full", "full-postgres"]
LABELS = {
    "direct": "upstream directly",
    "minimal": "Portcullis, minimal (API key, 1 policy, audit)",
    "full": "Portcullis, full pipeline (API key, 100 policies, schema + rules, redaction, encrypted audit)",
    "full-postgres": "Portcullis, full pipeline on PostgreSQL",
}


def median(rows: list[dict], key) -> float:
    return statistics.median(key(r) for r in rows)


def summarize(runs: list[dict], idle: dict[str, int]) -> list[dict]:
    out = []
    for scenario in ORDER:
        for conc in (1, 32):
            rows = [r for r in runs if r["scenario"] == scenario and r["concurrency"] == conc]
            if not rows:
                continue
            rps = median(rows, lambda r: r["requests"] / (r["duration_us"] / 1e6))
            out.append(
                {
                    "scenario": scenario,
                    "concurrency": conc,
                    "runs": len(rows),
                    "requests_per_s": round(rps, 1),
                    "p50_ms": round(median(rows, lambda r: r["p50_us"]) / 1000, 3),
                    "p99_ms": round(median(rows, lambda r: r["p99_us"]) / 1000, 3),
                    "p999_ms": round(median(rows, lambda r: r["p999_us"]) / 1000, 3),
                    "errors": sum(r["socket_errors"] + r["non2xx"] for r in rows),
                    "upstream_requests_per_call": round(
                        median(rows, lambda r: r["upstream_requests"] / max(r["requests"], 1)), 3
                    ),
                    "cpu_us_per_request": round(median(rows, lambda r: r["cpu_seconds"] / max(r["requests"], 1) * 1e6), 1),
                    "rss_mib": round(median(rows, lambda r: r["rss_kib"]) / 1024, 1),
                    "idle_rss_mib": round(idle[scenario] / 1024, 1) if scenario in idle else None,
                }
            )
    direct = {s["concurrency"]: s for s in out if s["scenario"] == "direct"}
    for s in out:
        d = direct.get(s["concurrency"])
        if d and s["scenario"] != "direct":
            s["added_p50_ms"] = round(s["p50_ms"] - d["p50_ms"], 3)
            s["added_p99_ms"] = round(s["p99_ms"] - d["p99_ms"], 3)
            s["throughput_vs_direct"] = round(s["requests_per_s"] / d["requests_per_s"], 3)
    return out


def markdown(summary: list[dict], meta: dict) -> str:
    lines = [
        f"# Benchmark results ({meta['date']})",
        "",
        f"Machine: {meta['machine']}. Command: `{meta['command']}` "
        f"({meta['runs']} runs of {meta['duration_s']} s per cell, medians; load generator, gateway and "
        "upstream share the cores). Stateless 2026-07-28 `tools/call` of an echo tool over "
        "Streamable HTTP, keep-alive, no session.",
        "",
        "| scenario | conc | req/s | vs direct | p50 ms | p99 ms | p99.9 ms | added p50 | added p99 | upstream req/call | CPU µs/req | RSS MiB (idle) | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summary:
        lines.append(
            f"| {LABELS[s['scenario']]} | {s['concurrency']} | {s['requests_per_s']:.0f} | "
            f"{s.get('throughput_vs_direct', 1.0):.2f} | {s['p50_ms']:.3f} | {s['p99_ms']:.3f} | {s['p999_ms']:.3f} | "
            f"{s.get('added_p50_ms', 0):.3f} | {s.get('added_p99_ms', 0):.3f} | {s['upstream_requests_per_call']:.2f} | "
            f"{s['cpu_us_per_request']:.0f} | {s['rss_mib']:.1f} ({s['idle_rss_mib'] if s['idle_rss_mib'] is not None else '–'}) | {s['errors']} |"
        )
    lines += ["", "![latency](latency.svg)", ""]
    return "\n".join(lines)


def svg(summary: list[dict]) -> str:
    """Grouped bars: p50 and p99 at concurrency 1, per scenario (ms, linear)."""
    rows = [s for s in summary if s["concurrency"] == 1]
    width, height, left, bottom = 720, 320, 60, 60
    top = max([s["p99_ms"] for s in rows] + [0.001]) * 1.15
    plot_w, plot_h = width - left - 20, height - bottom - 30
    group = plot_w / max(len(rows), 1)
    bar = group / 3
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">Latency at concurrency 1 (ms): p50 (dark), p99 (light)</text>',
        f'<line x1="{left}" y1="{30 + plot_h}" x2="{left + plot_w}" y2="{30 + plot_h}" stroke="#333"/>',
    ]
    for i in range(5):
        v = top * i / 4
        y = 30 + plot_h - plot_h * i / 4
        parts.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{v:.2f}</text>')
        parts.append(f'<line x1="{left}" y1="{y}" x2="{left + plot_w}" y2="{y}" stroke="#ddd"/>')
    for i, s in enumerate(rows):
        x = left + i * group + bar / 2
        for j, (key, color) in enumerate((("p50_ms", "#1f4e79"), ("p99_ms", "#8fb3d9"))):
            h = plot_h * s[key] / top
            parts.append(
                f'<rect x="{x + j * bar:.1f}" y="{30 + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{color}">'
                f"<title>{s['scenario']} {key} {s[key]}</title></rect>"
            )
        parts.append(f'<text x="{x + bar:.1f}" y="{30 + plot_h + 16}" text-anchor="middle">{s["scenario"]}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def main() -> None:
    runs_path, idle_path, outdir, duration, runs = sys.argv[1:6]
    runs_rows = [json.loads(line) for line in Path(runs_path).read_text().splitlines() if line.strip()]
    idle = {}
    if Path(idle_path).exists():
        for line in Path(idle_path).read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                idle[r["scenario"]] = r["idle_rss_kib"]
    summary = summarize(runs_rows, idle)
    cpu = ""
    try:
        cpu = next(
            line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    meta = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu})",
        "command": "bench/run",
        "duration_s": int(duration),
        "runs": int(runs),
    }
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps({"meta": meta, "summary": summary, "runs": runs_rows}, indent=2) + "\n")
    (out / "latest.md").write_text(markdown(summary, meta))
    (out / "latency.svg").write_text(svg(summary))
    print(markdown(summary, meta))


if __name__ == "__main__":
    main()

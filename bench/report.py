"""Medians of bench/run's wrk runs → latest.json, latest.md and latency.svg.

`report.py RUNS.jsonl IDLE.jsonl OUTDIR DURATION RUNS`"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import statistics
import sys
from pathlib import Path

ORDER = ["direct", "proxy", "proxy-commit", "proxy-flush", "minimal", "full", "full-postgres", "contextforge"]
LABELS = {
    "direct": "upstream directly",
    "proxy": "floor: bare hyper proxy (bench-proxy)",
    "proxy-commit": "floor: bare proxy + a row committed to SQLite per call (sqlx, no flush)",
    "proxy-flush": "floor: bare proxy + a row committed and flushed per call (sqlx)",
    "minimal": "Portcullis, minimal (API key, 1 policy, audit committed without flush)",
    "full": "Portcullis, full pipeline (API key, 100 policies, schema + rules, redaction, encrypted audit)",
    "full-postgres": "Portcullis, full pipeline on PostgreSQL",
    "contextforge": "ContextForge",  # bench/run's idle line names its version and workers
}


def median(rows: list[dict], key) -> float:
    return statistics.median(key(r) for r in rows)


def summarize(runs: list[dict], idle: dict[str, dict]) -> list[dict]:
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
                    "idle_rss_mib": (
                        round(idle[scenario]["idle_rss_kib"] / 1024, 1)
                        if "idle_rss_kib" in idle.get(scenario, {})
                        else None
                    ),
                    "label": idle.get(scenario, {}).get("label", LABELS[scenario]),
                }
            )
            stage_rows = [r["stage_us"] for r in rows if "stage_us" in r]
            if stage_rows:
                names = sorted({k for st in stage_rows for k in st})
                out[-1]["stage_us"] = {
                    k: round(statistics.median(st[k] for st in stage_rows if k in st), 1) for k in names
                }
            # A server of several processes: the proportional set size summed over them too.
            if all("pss_kib" in r for r in rows):
                out[-1]["pss_mib"] = round(median(rows, lambda r: r["pss_kib"]) / 1024, 1)
            facts = idle.get(scenario, {})
            if facts.get("probe_calls"):
                out[-1]["upstream_requests_per_sequential_call"] = round(
                    facts["probe_upstream_requests"] / facts["probe_calls"], 3
                )
            for key in ("idle_pss_kib", "processes", "workers", "version"):
                if key in idle.get(scenario, {}):
                    value = idle[scenario][key]
                    out[-1][key.replace("_kib", "_mib")] = round(value / 1024, 1) if key.endswith("_kib") else value
    direct = {s["concurrency"]: s for s in out if s["scenario"] == "direct"}
    for s in out:
        d = direct.get(s["concurrency"])
        if d and s["scenario"] != "direct":
            s["added_p50_ms"] = round(s["p50_ms"] - d["p50_ms"], 3)
            s["added_p99_ms"] = round(s["p99_ms"] - d["p99_ms"], 3)
            share = s["requests_per_s"] / d["requests_per_s"]
            s["throughput_vs_direct"] = round(share, 3) if share >= 0.01 else float(f"{share:.2g}")
    return out


def comparisons(summary: list[dict]) -> dict:
    """Portcullis ÷ ContextForge throughput (how many times as many calls per second)."""
    rps = {(s["scenario"], s["concurrency"]): s["requests_per_s"] for s in summary}
    out = {}
    for scenario in ("minimal", "full", "full-postgres"):
        for conc in (1, 32):
            cf = rps.get(("contextforge", conc))
            mine = rps.get((scenario, conc))
            if cf and mine:
                out[f"{scenario}_vs_contextforge_c{conc}"] = round(mine / cf, 1)
    return out


def number(v: float) -> str:
    """Calls per second: whole numbers, but a decimal where they are few."""
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def ratio(v: float) -> str:
    """A share of direct throughput, with enough digits to stay non-zero."""
    return f"{v:.2f}" if v >= 0.01 or v == 0 else f"{v:.4f}"


def markdown(summary: list[dict], meta: dict, ratios: dict | None = None) -> str:
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
            f"| {s['label']} | {s['concurrency']} | {number(s['requests_per_s'])} | "
            f"{ratio(s.get('throughput_vs_direct', 1.0))} | {s['p50_ms']:.3f} | {s['p99_ms']:.3f} | {s['p999_ms']:.3f} | "
            f"{s.get('added_p50_ms', 0):.3f} | {s.get('added_p99_ms', 0):.3f} | {s['upstream_requests_per_call']:.2f} | "
            f"{s['cpu_us_per_request']:.0f} | {s['rss_mib']:.1f} ({s['idle_rss_mib'] if s['idle_rss_mib'] is not None else '–'}) | {s['errors']} |"
        )
    lines += [""]
    ratios = ratios or {}
    if "full_vs_contextforge_c32" in ratios:
        cf = next(s for s in summary if s["scenario"] == "contextforge" and s["concurrency"] == 32)
        full = next(s for s in summary if s["scenario"] == "full" and s["concurrency"] == 32)
        lines.append(
            f"**Portcullis full ÷ ContextForge throughput at c=32: {ratios['full_vs_contextforge_c32']:,.1f}×** "
            f"({full['requests_per_s']:,.0f} vs {cf['requests_per_s']:,.1f} calls/s"
            + (
                f"; at c=1: {ratios['full_vs_contextforge_c1']:,.1f}×"
                if "full_vs_contextforge_c1" in ratios
                else ""
            )
            + (
                f"; minimal at c=32: {ratios['minimal_vs_contextforge_c32']:,.1f}×"
                if "minimal_vs_contextforge_c32" in ratios
                else ""
            )
            + ")."
        )
        lines.append("")
    probes = [s for s in summary if s["concurrency"] == 1 and "upstream_requests_per_sequential_call" in s]
    if probes:
        lines.append(
            "Upstream requests per call, counted over 10 sequential calls before the timed runs: "
            + ", ".join(f"{s['scenario']} {s['upstream_requests_per_sequential_call']:.2f}" for s in probes)
            + ". (The table's figure comes from the timed runs; for a slow gateway at c=32 it is a "
            "little high, because wrk stops with up to 32 calls in flight whose upstream requests "
            "are counted but which wrk does not count as completed.)"
        )
        lines.append("")
    for s in summary:
        if s["scenario"] == "contextforge" and s["concurrency"] == 32 and "processes" in s:
            idle_pss = s.get("idle_pss_mib")
            lines.append(
                f"ContextForge runs as {s['processes']} processes (a gunicorn master, {s.get('workers', '?')} "
                "uvicorn workers and their sandbox pools); its RSS is VmRSS summed over all of them, which "
                "counts the pages they share copy-on-write once per process. Their proportional set size "
                f"(shared pages divided among the sharers) sums to {idle_pss if idle_pss is not None else '–'} MiB "
                f"idle and {s.get('pss_mib', '–')} MiB after the c=32 runs; its CPU per request is summed "
                "over all of them too."
            )
            lines.append("")
    lines += stage_table(summary)
    lines += ["![latency](latency.svg)", ""]
    return "\n".join(lines)


STAGES = ["authn", "authz", "validate", "upstream", "audit"]


def stage_table(summary: list[dict]) -> list[str]:
    """Where a call's time goes inside Portcullis: the mean per call of each stage its /metrics
    times, beside the added p50. `upstream` holds the upstream's own time and the hop to it,
    about the direct p50; `audit` is the record committed before the reply."""
    rows = [s for s in summary if "stage_us" in s]
    if not rows:
        return []
    direct = {s["concurrency"]: s for s in summary if s["scenario"] == "direct"}
    lines = [
        "Inside Portcullis: mean µs per call in each stage (its `portcullis_stage_duration_seconds`, "
        "medians of the runs). `upstream` includes the upstream's own time and the hop to it (the "
        "direct p50 is shown beside it); `audit` is the record committed before the reply; the rest "
        "of the gateway's time (HTTP, parsing, rendering, task wake-ups) is what the stages leave "
        "of the p50.",
        "",
        "| scenario | conc | p50 µs | direct p50 µs | " + " | ".join(STAGES) + " | p50 − stages |",
        "|---|---:|---:|---:|" + "---:|" * len(STAGES) + "---:|",
    ]
    for s in rows:
        st = s["stage_us"]
        d = direct.get(s["concurrency"])
        p50 = s["p50_ms"] * 1000
        rest = p50 - sum(st.get(k, 0.0) for k in STAGES)
        lines.append(
            f"| {s['scenario']} | {s['concurrency']} | {p50:.0f} | {d['p50_ms'] * 1000 if d else 0:.0f} | "
            + " | ".join(f"{st[k]:.0f}" if k in st else "–" for k in STAGES)
            + f" | {rest:.0f} |"
        )
    return lines + [""]


def svg(summary: list[dict]) -> str:
    """Grouped bars: p50 and p99 at concurrency 1, per scenario (ms, log scale: the gateways
    differ by orders of magnitude)."""
    rows = [s for s in summary if s["concurrency"] == 1]
    width, height, left, bottom = 760, 340, 60, 60
    values = [s[k] for s in rows for k in ("p50_ms", "p99_ms") if s[k] > 0] or [0.01, 1.0]
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values) * 1.05))
    if hi <= lo:
        hi = lo * 10
    plot_w, plot_h = width - left - 20, height - bottom - 30

    def bar_h(v: float) -> float:
        return plot_h * (math.log10(max(v, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    group = plot_w / max(len(rows), 1)
    bar = group / 3
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">Latency at concurrency 1 (ms, log scale): p50 (dark), p99 (light)</text>',
        f'<line x1="{left}" y1="{30 + plot_h}" x2="{left + plot_w}" y2="{30 + plot_h}" stroke="#333"/>',
    ]
    decade = lo
    while decade <= hi * 1.0001:
        y = 30 + plot_h - bar_h(decade)
        parts.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{decade:g}</text>')
        parts.append(f'<line x1="{left}" y1="{y}" x2="{left + plot_w}" y2="{y}" stroke="#ddd"/>')
        decade *= 10
    for i, s in enumerate(rows):
        x = left + i * group + bar / 2
        for j, (key, color) in enumerate((("p50_ms", "#1f4e79"), ("p99_ms", "#8fb3d9"))):
            h = bar_h(s[key])
            parts.append(
                f'<rect x="{x + j * bar:.1f}" y="{30 + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{color}">'
                f"<title>{s['scenario']} {key} {s[key]}</title></rect>"
            )
            parts.append(
                f'<text x="{x + j * bar + bar / 2:.1f}" y="{30 + plot_h - h - 3:.1f}" text-anchor="middle" font-size="9">{s[key]:g}</text>'
            )
        parts.append(f'<text x="{x + bar:.1f}" y="{30 + plot_h + 16}" text-anchor="middle">{s["scenario"]}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def main() -> None:
    runs_path, idle_path, outdir, duration, runs = sys.argv[1:6]
    runs_rows = [json.loads(line) for line in Path(runs_path).read_text().splitlines() if line.strip()]
    idle: dict[str, dict] = {}
    if Path(idle_path).exists():
        for line in Path(idle_path).read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                idle.setdefault(r["scenario"], {}).update(r)
    summary = summarize(runs_rows, idle)
    ratios = comparisons(summary)
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
    (out / "latest.json").write_text(
        json.dumps({"meta": meta, "summary": summary, "comparisons": ratios, "runs": runs_rows}, indent=2) + "\n"
    )
    (out / "latest.md").write_text(markdown(summary, meta, ratios))
    (out / "latency.svg").write_text(svg(summary))
    print(markdown(summary, meta, ratios))


if __name__ == "__main__":
    main()

"""Helpers for bench/scale (stdlib only).

  scale.py list URL KEY N [WARM]       tools/list through the gateway (2026-07-28), following
                                       nextCursor; cold (first) and warm (median of WARM) latency;
                                       fails unless exactly N tools are listed
  scale.py sessions URL KEY N PID      opens N 2025-11-25 sessions (initialize + initialized, kept
                                       open), measures the gateway's RSS, calls on the last one
  scale.py hwm PID                     the process's peak RSS (VmHWM, KiB)
  scale.py wrk FIGURE K=V... < BENCH   one wrk summary (call.lua's `BENCH {...}` line) → a JSONL
                                       record with the given fields added
  scale.py callgrind FILE CALLS CONFIG < BENCH
                                       instructions per call from a callgrind dump taken over
                                       CALLS calls (wrk's summary on stdin): total, by crate, by
                                       stage → a JSONL record
  scale.py report RUNS.jsonl OUTDIR RESULTS.md DURATION RUNS COMMAND
                                       scaling.json, scaling.md and the "Scaling" section of
                                       RESULTS.md (RESULTS.md only when every figure is present)

Every record is one JSON object per line with a "figure" field: policies, tools, results,
results_huge, sessions, instructions, idle.
"""

import asyncio
import collections
import json
import os
import platform
import re
import statistics
import sys
import time
import urllib.parse

MODERN = "2026-07-28"
LEGACY = "2025-11-25"
META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}


def status_kib(pid: int | str, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(f.read().split(field + ":")[1].split()[0])


# --- a minimal HTTP/1.1 keep-alive client (asyncio streams) -----------------------------------


class Conn:
    def __init__(self, url: str) -> None:
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = u.hostname, u.port or 80, u.path or "/"
        self.r: asyncio.StreamReader | None = None
        self.w: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.w is not None:
            self.w.close()
            try:
                await self.w.wait_closed()
            except OSError:
                pass
        self.r = self.w = None

    async def request(self, method: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        if self.w is None:
            self.r, self.w = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        assert self.r is not None
        head = [f"{method} {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.w.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await self.w.drain()
        line = await self.r.readline()
        if not line:
            await self.close()
            raise ConnectionError("connection closed before a response")
        status = int(line.split()[1])
        hdrs: dict[str, str] = {}
        while True:
            line = await self.r.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, v = line.decode("latin-1").split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
        if "content-length" in hdrs:
            data = await self.r.readexactly(int(hdrs["content-length"]))
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.r.readline()).split(b";")[0].strip(), 16)
                if size == 0:
                    while (await self.r.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(await self.r.readexactly(size))
                await self.r.readexactly(2)
            data = b"".join(parts)
        elif status in (202, 204, 304) or method == "HEAD":
            data = b""
        else:
            data = await self.r.read()
            await self.close()
        if hdrs.get("connection", "").lower() == "close":
            await self.close()
        return status, hdrs, data


def jsonrpc_reply(hdrs: dict[str, str], body: bytes) -> dict:
    """The JSON-RPC response in a JSON or SSE body."""
    if hdrs.get("content-type", "").startswith("text/event-stream"):
        for line in body.decode().splitlines():
            if line.startswith("data:"):
                try:
                    msg = json.loads(line[5:].strip())
                except ValueError:
                    continue
                if isinstance(msg, dict) and ("result" in msg or "error" in msg) and "id" in msg:
                    return msg
        raise ValueError(f"no JSON-RPC response in the event stream: {body[:300]!r}")
    return json.loads(body)


# --- tools/list ---------------------------------------------------------------------------


async def list_all(conn: Conn, key: str) -> tuple[int, int, int]:
    """(tools, pages, bytes) of a full tools/list, following nextCursor."""
    count = pages = size = 0
    cursor = None
    while True:
        params: dict = {"_meta": META}
        if cursor is not None:
            params["cursor"] = cursor
        body = json.dumps({"jsonrpc": "2.0", "id": pages + 1, "method": "tools/list", "params": params}).encode()
        status, hdrs, data = await conn.request("POST", {
            "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/list", "X-API-Key": key,
        }, body)
        msg = jsonrpc_reply(hdrs, data)
        if status != 200 or "result" not in msg:
            raise SystemExit(f"scale.py list: HTTP {status}: {data[:500]!r}")
        pages += 1
        size += len(data)
        count += len(msg["result"].get("tools", []))
        cursor = msg["result"].get("nextCursor")
        if not cursor:
            return count, pages, size
        if pages > 100_000:
            raise SystemExit("scale.py list: more than 100000 pages")


async def cmd_list(url: str, key: str, n: int, warm: int) -> dict:
    conn = Conn(url)
    t0 = time.perf_counter()
    count, pages, size = await list_all(conn, key)
    cold = time.perf_counter() - t0
    if count != n:
        raise SystemExit(f"scale.py list: {count} tools listed, expected {n}")
    times = []
    for _ in range(warm):
        t0 = time.perf_counter()
        c, _, _ = await list_all(conn, key)
        times.append(time.perf_counter() - t0)
        if c != n:
            raise SystemExit(f"scale.py list: {c} tools listed (warm), expected {n}")
    await conn.close()
    out = {"tools_listed": count, "pages": pages, "list_bytes": size, "cold_ms": cold * 1e3, "warm_lists": warm}
    if times:
        out.update(warm_ms=statistics.median(times) * 1e3, warm_min_ms=min(times) * 1e3, warm_max_ms=max(times) * 1e3)
    return out


# --- 2025-11-25 sessions ------------------------------------------------------------------

INIT = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}}).encode()
INITIALIZED = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode()


async def open_session(conn: Conn, key: str) -> str:
    status, hdrs, data = await conn.request("POST", {
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream", "X-API-Key": key,
    }, INIT)
    sid = hdrs.get("mcp-session-id")
    if status != 200 or not sid or "result" not in jsonrpc_reply(hdrs, data):
        raise RuntimeError(f"initialize: HTTP {status}: {data[:300]!r}")
    status, _, data = await conn.request("POST", {
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream", "X-API-Key": key,
        "Mcp-Session-Id": sid, "MCP-Protocol-Version": LEGACY,
    }, INITIALIZED)
    if status not in (200, 202):
        raise RuntimeError(f"notifications/initialized: HTTP {status}: {data[:300]!r}")
    return sid


async def open_many(url: str, key: str, n: int, conc: int) -> tuple[list[str], list[str]]:
    ids: list[str] = []
    errors: list[str] = []
    todo = iter(range(n))

    async def worker() -> None:
        conn = Conn(url)
        for _ in todo:
            try:
                ids.append(await open_session(conn, key))
            except (RuntimeError, OSError, ValueError, asyncio.IncompleteReadError) as e:
                errors.append(str(e)[:200])
                await conn.close()
        await conn.close()

    await asyncio.gather(*(worker() for _ in range(min(conc, max(n, 1)))))
    return ids, errors


async def call_on(url: str, key: str, sid: str) -> tuple[bool, str]:
    conn = Conn(url)
    body = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "bench__echo", "arguments": {"message": "hello from the benchmark"}}}).encode()
    status, hdrs, data = await conn.request("POST", {
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream", "X-API-Key": key,
        "Mcp-Session-Id": sid, "MCP-Protocol-Version": LEGACY,
    }, body)
    await conn.close()
    try:
        msg = jsonrpc_reply(hdrs, data)
    except ValueError:
        return False, f"HTTP {status}: {data[:200]!r}"
    text = json.dumps(msg.get("result", {}))
    ok = status == 200 and "hello from the benchmark" in text and not msg.get("result", {}).get("isError")
    return ok, f"HTTP {status}: {json.dumps(msg)[:200]}"


async def cmd_sessions(url: str, key: str, n: int, pid: int, conc: int = 32) -> dict:
    idle = status_kib(pid, "VmRSS")
    # Warm-up: the same number of connections and code paths, sessions then ended with DELETE,
    # so the baseline holds the allocator's and the connections' one-time growth.
    warm_ids, warm_err = await open_many(url, key, conc * 2, conc)
    if warm_err:
        raise SystemExit(f"scale.py sessions: warm-up failed: {warm_err[:3]}")
    conn = Conn(url)
    for sid in warm_ids:
        status, _, _ = await conn.request("DELETE", {"X-API-Key": key, "Mcp-Session-Id": sid, "MCP-Protocol-Version": LEGACY})
        if status not in (200, 202, 204):
            raise SystemExit(f"scale.py sessions: DELETE answered {status}")
    await conn.close()
    await asyncio.sleep(1.0)
    baseline = status_kib(pid, "VmRSS")
    t0 = time.perf_counter()
    ids, errors = await open_many(url, key, n, conc)
    elapsed = time.perf_counter() - t0
    await asyncio.sleep(1.0)  # connections closed; let the gateway drop them
    rss = status_kib(pid, "VmRSS")
    ok, detail = await call_on(url, key, ids[-1]) if ids else (False, "no session opened")
    return {"sessions": n, "opened": len(ids), "errors": len(errors), "first_errors": errors[:3],
            "open_seconds": elapsed, "sessions_per_s": len(ids) / elapsed if elapsed else 0.0,
            "idle_rss_kib": idle, "baseline_rss_kib": baseline, "rss_kib": rss,
            "per_session_kib": (rss - baseline) / max(len(ids), 1),
            "hwm_kib": status_kib(pid, "VmHWM"), "last_call_ok": ok, "last_call": detail,
            "concurrency": conc}


# --- wrk record -----------------------------------------------------------------------------


def cmd_wrk(figure: str, pairs: list[str]) -> None:
    line = next((l for l in sys.stdin if l.startswith("BENCH ")), None)
    if line is None:
        raise SystemExit("scale.py wrk: no BENCH line in wrk's output")
    r = json.loads(line[6:])
    r["figure"] = figure
    for p in pairs:
        k, v = p.split("=", 1)
        try:
            r[k] = json.loads(v)
        except ValueError:
            r[k] = v
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["errors"] = r.get("socket_errors", 0) + r.get("non2xx", 0)
    if "upstream_before" in r and "upstream_after" in r:
        r["upstream_per_call"] = (r["upstream_after"] - r["upstream_before"]) / max(r["requests"], 1)
    print(json.dumps(r))


# --- callgrind --------------------------------------------------------------------------------

# Stages: (label, the function whose inclusive cost is the stage's). Where several callgrind
# entries match (closures, recursion), the largest is taken: they nest.
STAGES = [
    ("JSON-RPC parses", "portcullis_mcp::jsonrpc::parse"),
    ("authentication", "portcullis_gateway::authn::authenticate"),
    ("authorization", "portcullis_gateway::authorize::Policy::authorize"),
    ("upstream call", "as portcullis_transport::upstream::Upstream>::call_streaming"),
    ("result screening", "portcullis_gateway::relay::clear"),
    ("audit: fields sealed", "portcullis_audit::draft::FieldPolicy::seal"),
    ("audit: chain hash", "portcullis_audit::chain::record_hash"),
    ("audit: SQLite", "sqlite3_step"),
]

# Crate groups for the self cost: the first matching prefix wins.
GROUPS = [
    ("SHA-256 (software under valgrind)", ("sha2::",)),
    ("allocation (mimalloc; Vec, String, Box)", ("mi_", "_mi_", "alloc::", "__rust_alloc", "__rust_dealloc", "__rdl_")),
    ("memcpy/memmove/memset", ("__mem",)),
    ("SQLite + sqlx", ("sqlite3", "wal", "pager", "btree", "vdbe", "sqlx")),
    ("serde / serde_json", ("serde",)),
    ("HTTP (hyper, http, httparse, axum, tower)", ("hyper", "http::", "httparse", "axum", "tower")),
    ("tokio + futures", ("tokio", "futures", "flume")),
    ("Cedar", ("cedar",)),
    ("regex / aho-corasick", ("regex", "aho_corasick")),
    ("portcullis crates", ("portcullis_",)),
]


def callgrind_costs(path: str) -> tuple[collections.Counter, collections.Counter, int]:
    """Self cost per function, and call-edge inclusive costs, from a callgrind file (names
    compressed as "(id) name" on first use)."""
    names: dict[str, str] = {}
    fn = cfn = ""
    in_call = False
    selfc: collections.Counter = collections.Counter()
    edges: collections.Counter = collections.Counter()
    total = 0

    def name(tok: str) -> str:
        m = re.match(r"\((\d+)\)(?: (.*))?", tok)
        if not m:
            return tok
        if m.group(2):
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), "?")

    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("fn="):
                fn = name(line[3:])
            elif line.startswith("cfn="):
                cfn = name(line[4:])
            elif line.startswith("calls="):
                in_call = True
            elif line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
            elif line and (line[0].isdigit() or line[0] in "+-*"):
                parts = line.split()
                if len(parts) < 2:
                    continue
                cost = int(parts[1])
                if in_call:
                    edges[(fn, cfn)] += cost
                    in_call = False
                else:
                    selfc[fn] += cost
    return selfc, edges, total


def group_of(fn: str) -> str:
    bare = fn.lstrip("<&*").removeprefix("mut ").removeprefix("dyn ")
    for label, prefixes in GROUPS:
        if bare.startswith(prefixes):
            return label
    return "other (std, core, kernel-facing libc, …)"


def cmd_callgrind(path: str, calls: int, config: str) -> None:
    if calls <= 0:
        raise SystemExit("scale.py callgrind: no calls were counted")
    line = next((l for l in sys.stdin if l.startswith("BENCH ")), None)
    wrk = json.loads(line[6:]) if line else {}
    selfc, edges, total = callgrind_costs(path)
    total = total or sum(selfc.values())
    inclusive: collections.Counter = collections.Counter(selfc)
    for (caller, callee), cost in edges.items():
        if caller != callee:
            inclusive[caller] += cost
    stages = {}
    for label, needle in STAGES:
        matches = [c for f, c in inclusive.items() if needle in f]
        stages[label] = round(max(matches) / calls) if matches else None
    groups: collections.Counter = collections.Counter()
    for f, c in selfc.items():
        groups[group_of(f)] += c
    print(json.dumps({
        "figure": "instructions", "config": config, "calls": calls,
        "errors": wrk.get("socket_errors", 0) + wrk.get("non2xx", 0),
        "instructions_per_call": round(total / calls),
        "stages": stages,
        "groups": {k: round(v / calls) for k, v in groups.most_common()},
    }))


# --- report ---------------------------------------------------------------------------------


def med(rows: list[dict], key: str) -> float:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else float("nan")


def size_label(n: int) -> str:
    for unit, div in (("MB", 1_000_000), ("KB", 1_000)):
        if n >= div and n % div == 0:
            return f"{n // div} {unit}"
    return f"{n} B"


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def machine() -> str:
    model = ""
    try:
        model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}" + (f", {model}" if model else "")


def build_report(rows: list[dict], duration: str, runs: str, command: str) -> tuple[dict, str, bool]:
    by = lambda fig: [r for r in rows if r.get("figure") == fig]  # noqa: E731
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out: dict = {"date": date, "machine": machine(), "command": command, "duration_s": int(duration),
                 "runs": int(runs), "figures": {}}
    meta = next(iter(by("meta")), {})
    out["loadavg_start"] = meta.get("loadavg_start")
    out["commit"] = meta.get("commit")
    out["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    md = [f"Run: {date}, {out['machine']}, tree `{out['commit']}`, `{command}` ({runs} run(s) × {duration} s per wrk cell, medians; "
          "wrk, the gateway and bench-upstream share the machine; load average "
          f"{out['loadavg_start']} at the start, {out['loadavg_end']} at the end). Gateway config: the \"full\" pipeline of "
          "`bench/run` (API key, Cedar policies, pins and poisoning scan, `inputSchema` + a pattern rule, "
          "redaction, encrypted durable audit on SQLite) unless stated.", ""]

    pol = by("policies")
    if pol:
        table = []
        md += ["### Cedar policies", "",
               "| policies | req/s c=32 | p50 ms c=1 | p99 ms c=1 | p99 ms c=32 | upstream req/call | errors |",
               "|---:|---:|---:|---:|---:|---:|---:|"]
        for n in sorted({r["policies"] for r in pol}):
            c32 = [r for r in pol if r["policies"] == n and r["concurrency"] == 32]
            c1 = [r for r in pol if r["policies"] == n and r["concurrency"] == 1]
            row = {"policies": n, "rps_c32": med(c32, "rps"), "p50_ms_c1": med(c1, "p50_us") / 1e3,
                   "p99_ms_c1": med(c1, "p99_us") / 1e3, "p99_ms_c32": med(c32, "p99_us") / 1e3,
                   "upstream_per_call": med(c1 + c32, "upstream_per_call"),
                   "errors": sum(r["errors"] for r in c1 + c32)}
            table.append(row)
            md.append(f"| {n} | {row['rps_c32']:.0f} | {row['p50_ms_c1']:.3f} | {row['p99_ms_c1']:.3f} | "
                      f"{row['p99_ms_c32']:.3f} | {row['upstream_per_call']:.2f} | {row['errors']} |")
        out["figures"]["policies"] = table
        md.append("")

    tools = by("tools")
    if tools:
        table = []
        md += ["### Upstream tools", "",
               "`tools/list` (2026-07-28, following `nextCursor`; the count is checked to equal N). First list = "
               "the first after start on a new store (the gateway fetches the upstream's catalog, pins every "
               "definition, scans and compiles them); after restart = the first list after a restart on the same "
               "store (pins exist); warm = median of the next 5 lists. \"minimal\" = bench/run's minimal config "
               "(1 permit-all policy, pins and scan off).", "",
               "| config | upstream tools | listed | pages | list KB | first list ms | first list after restart ms | warm list ms | RSS after lists MiB | idle RSS MiB |",
               "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        calls = ["`tools/call` of `echo` at c=1 after the lists; the catalog is kept 30 s, so the first call after "
                 "30 s idle fetches and verifies the whole catalog again (full config only).", "",
                 "| config | upstream tools | call p50 ms | call p99 ms | first call after 30 s ms | next call ms | RSS after calls MiB | errors |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|"]
        num = lambda v, f: "–" if v is None else format(v, f)  # noqa: E731
        tcalls = by("tools_call")
        for r in sorted(tools, key=lambda r: (r["config"] != "full", r["tools"])):
            mine = [c for c in tcalls if c["config"] == r["config"] and c["tools"] == r["tools"]]
            r = dict(r, p50_us=med(mine, "p50_us"), p99_us=med(mine, "p99_us"), rps=med(mine, "rps"),
                     errors=sum(c["errors"] for c in mine), upstream_per_call=med(mine, "upstream_per_call"))
            row = {k: r.get(k) for k in ("config", "tools", "tools_listed", "pages", "list_bytes", "cold_ms",
                                         "restart_list_ms", "warm_ms", "warm_min_ms", "warm_max_ms", "warm_lists",
                                         "rss_after_list_kib", "hwm_after_list_kib", "rss_after_calls_kib",
                                         "idle_rss_kib", "stale_call_ms", "next_call_ms", "upstream_per_call")}
            row.update(call_p50_ms=r["p50_us"] / 1e3, call_p99_ms=r["p99_us"] / 1e3, call_rps=r["rps"],
                       errors=r["errors"])
            table.append(row)
            md.append(f"| {r['config']} | {r['tools']:,} | {r['tools_listed']:,} | {r['pages']} | {r['list_bytes'] / 1000:.0f} | "
                      f"{r['cold_ms']:.1f} | {num(r.get('restart_list_ms'), '.1f')} | {r['warm_ms']:.1f} | "
                      f"{mib(r['rss_after_list_kib'])} | {mib(r['idle_rss_kib'])} |")
            calls.append(f"| {r['config']} | {r['tools']:,} | {row['call_p50_ms']:.3f} | {row['call_p99_ms']:.3f} | "
                         f"{num(r.get('stale_call_ms'), '.1f')} | {num(r.get('next_call_ms'), '.1f')} | "
                         f"{mib(r['rss_after_calls_kib'])} | {row['errors']} |")
        out["figures"]["tools"] = table
        md += ["", *calls, ""]

    res = by("results")
    huge = by("results_huge")
    if res:
        table = []
        md += ["### Result size", "",
               "`tools/call` of `echo` returning a text of the given size, c=1 (10 MB also c=8). \"minimal\" = bench/run's minimal "
               "config with `redact_results = false` (results still pass the sanitizer, and audit records are "
               "still redacted); \"full\" redacts results. `limits.max_response_bytes` raised to 2 × size + 1 MiB "
               "(at least 10 MiB). \"streamed\" = minimal with `stream_results_above = \"256KiB\"` and "
               "`max_response_bytes = \"1MiB\"`: results pass through as they arrive (1 MB and up). Peak RSS = the gateway's VmHWM after the runs (a fresh gateway per cell); RSS after "
               "= VmRSS after the last run; MB/s = result bytes × calls/s. 100 MB: 3 sequential calls with curl (medians).", "",
               "| result | config | conc | direct p50 ms (c=1) | gateway p50 ms | p99 ms | calls/s | MB/s | peak RSS MiB | RSS after MiB | idle RSS MiB | errors |",
               "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        direct = by("results_direct")
        cell = lambda r: (r["result_bytes"], r["concurrency"], r["config"])  # noqa: E731
        order = {"minimal": 0, "streamed": 1}
        cells = sorted({cell(r) for r in res}, key=lambda c: (c[0], c[1], order.get(c[2], 2)))
        for size, conc, cfg in cells:
            runs_ = sorted((r for r in res if cell(r) == (size, conc, cfg)), key=lambda r: r.get("run", 0))
            d = [r for r in direct if r["result_bytes"] == size]
            rps = med(runs_, "rps")
            row = {"result_bytes": size, "config": cfg, "concurrency": conc, "p50_ms": med(runs_, "p50_us") / 1e3,
                   "p99_ms": med(runs_, "p99_us") / 1e3, "calls_per_s": rps, "mb_per_s": rps * size / 1e6,
                   "peak_rss_kib": max(r["hwm_after_kib"] for r in runs_), "rss_after_kib": runs_[-1]["rss_after_kib"],
                   "idle_rss_kib": runs_[0]["idle_rss_kib"], "direct_p50_ms": med(d, "p50_us") / 1e3 if d else None,
                   "errors": sum(r["errors"] for r in runs_), "upstream_per_call": med(runs_, "upstream_per_call")}
            table.append(row)
            dp = f"{row['direct_p50_ms']:.3f}" if d and conc == 1 else "–"
            md.append(f"| {size_label(size)} | {cfg} | {conc} | {dp} | {row['p50_ms']:.3f} | {row['p99_ms']:.3f} | "
                      f"{row['calls_per_s']:.1f} | {row['mb_per_s']:.1f} | {mib(row['peak_rss_kib'])} | "
                      f"{mib(row['rss_after_kib'])} | {mib(row['idle_rss_kib'])} | {row['errors']} |")
        for h in huge:
            row = dict(h)
            row.pop("figure", None)
            out["figures"].setdefault("results_huge", []).append(row)
            ok = "ok" if h["ok"] else f"failed: {h.get('detail', '')}"
            md.append(f"| {size_label(h['result_bytes'])} | {h['config']} (curl, {h['calls']} calls) | 1 | "
                      f"{h['direct_median_ms']:.0f} | "
                      f"{h['median_ms']:.0f} (median) | – | – | {h['mb_per_s']:.1f} | {mib(h['hwm_kib'])} | "
                      f"{mib(h['rss_after_kib'])} | {mib(h['idle_rss_kib'])} | {ok} |")
        out["figures"]["results"] = table
        md.append("")

    ses = by("sessions")
    if ses:
        table = []
        md += ["### Legacy (2025-11-25) sessions", "",
               "N sessions opened (`initialize` + `notifications/initialized`, 32 at a time over keep-alive "
               "connections, then the connections closed) and left open. Baseline = RSS after a warm-up that "
               "opened and deleted 64 sessions over the same connections; per session = (RSS − baseline) / N.", "",
               "| sessions | opened | open time s | sessions/s | idle RSS MiB | baseline MiB | RSS MiB | per session KiB | peak RSS MiB | call on last session | errors |",
               "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
        for r in sorted(ses, key=lambda r: r["sessions"]):
            row = dict(r)
            row.pop("figure", None)
            table.append(row)
            md.append(f"| {r['sessions']:,} | {r['opened']:,} | {r['open_seconds']:.2f} | {r['sessions_per_s']:.0f} | "
                      f"{mib(r['idle_rss_kib'])} | {mib(r['baseline_rss_kib'])} | {mib(r['rss_kib'])} | "
                      f"{r['per_session_kib']:.2f} | {mib(r['hwm_kib'])} | {'ok' if r['last_call_ok'] else 'FAILED'} | {r['errors']} |")
        out["figures"]["sessions"] = table
        md.append("")

    ins = by("instructions")
    if ins:
        md += ["### Instructions per call", "",
               "User-space instructions per `tools/call` (valgrind's callgrind over every call of a "
               "wrk run at c=4, all of the gateway's threads; the kernel's share of the work, "
               "loopback TCP and scheduling, is not counted). Counts, not time: they compare "
               "across machines and runs. Under valgrind the CPU has no SHA extensions, so "
               "SHA-256 runs in software and counts far more than it costs natively.", "",
               "| config | calls | instructions/call | " + " | ".join(l for l, _ in STAGES) + " | errors |",
               "|---|---:|---:|" + "---:|" * len(STAGES) + "---:|"]
        for r in ins:
            st = [r["stages"].get(l) for l, _ in STAGES]
            md.append(f"| {r['config']} | {r['calls']:,} | {r['instructions_per_call']:,} | "
                      + " | ".join("–" if v is None else f"{v:,}" for v in st) + f" | {r['errors']} |")
        md += ["", "By where the instructions are spent (self cost):", "",
               "| group | " + " | ".join(r["config"] for r in ins) + " |",
               "|---|" + "---:|" * len(ins)]
        labels = list(dict.fromkeys(k for r in ins for k in r["groups"]))
        for label in labels:
            md.append(f"| {label} | " + " | ".join(f"{r['groups'].get(label, 0):,}" for r in ins) + " |")
        out["figures"]["instructions"] = [{k: v for k, v in r.items() if k != "figure"} for r in ins]
        md.append("")

    complete = all(k in out["figures"] for k in ("policies", "tools", "results", "sessions"))
    return out, "\n".join(md), complete


def replace_section(text: str, title: str, body: str) -> str:
    lines = text.rstrip("\n").split("\n")
    start = next((i for i, l in enumerate(lines) if l.strip() == title), None)
    if start is None:
        return "\n".join(lines) + f"\n\n{title}\n\n{body.rstrip()}\n"
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[:start] + [title, "", body.rstrip(), ""] + lines[end:]).rstrip("\n") + "\n"


def cmd_report(runs_path: str, outdir: str, results_md: str, duration: str, runs: str, command: str) -> None:
    rows = [json.loads(l) for l in open(runs_path) if l.strip()]
    data, md, complete = build_report(rows, duration, runs, command)
    data["raw"] = rows
    os.makedirs(outdir, exist_ok=True)
    if complete:
        with open(os.path.join(outdir, "scaling.json"), "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        with open(os.path.join(outdir, "scaling.md"), "w") as f:
            f.write("# Scaling\n\n" + md + "\n")
        with open(results_md) as f:
            text = f.read()
        with open(results_md, "w") as f:
            f.write(replace_section(text, "## Scaling", md))
        print(f"bench/scale: wrote {outdir}/scaling.json, {outdir}/scaling.md and the Scaling section of {results_md}",
              file=sys.stderr)
    else:
        print("bench/scale: not every figure ran; bench/results and RESULTS.md left unchanged", file=sys.stderr)
    print(md)


def main() -> None:
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "list":
        print(json.dumps(asyncio.run(cmd_list(args[0], args[1], int(args[2]), int(args[3]) if len(args) > 3 else 5))))
    elif cmd == "sessions":
        print(json.dumps(asyncio.run(cmd_sessions(args[0], args[1], int(args[2]), int(args[3])))))
    elif cmd == "hwm":
        print(status_kib(args[0], "VmHWM"))
    elif cmd == "wrk":
        cmd_wrk(args[0], args[1:])
    elif cmd == "callgrind":
        cmd_callgrind(args[0], int(args[1]), args[2])
    elif cmd == "report":
        cmd_report(*args[:6])
    else:
        raise SystemExit(f"scale.py: unknown command {cmd}")


if __name__ == "__main__":
    main()

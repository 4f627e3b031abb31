"""Principals and what they leave behind: API keys made with the CLI (``portcullis keys create``),
SDK sessions that authenticate with them, and the audit rows the gateway stores for them.

- :func:`cli`: any ``portcullis`` command against a running gateway's config.
- :func:`create_key`: a key for a principal with roles (``--kind user|service``).
- :func:`session`: ``async with session(url, key, era) as client`` — the official SDK client
  sending ``X-API-Key``.
- :func:`audit_rows`: the ``audit_records`` table of the gateway's SQLite store (read-only).
- :func:`audit_export`: the records as ``portcullis audit export`` prints them (JSON Lines).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from .gateway import Gateway


def cli(gw: Gateway, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``portcullis ARGS --config <the gateway's config>`` in its directory."""
    proc = subprocess.run(
        [str(gw.binary), *args, "--config", str(gw.config_path)],
        cwd=gw.workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert proc.returncode == 0, (
            f"portcullis {' '.join(args)}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def create_key(gw: Gateway, principal: str, roles: Sequence[str] = (), kind: str = "user") -> str:
    """A new API key (``pk_…``) for ``principal`` with ``roles``."""
    args = ["keys", "create", "--principal", principal, "--kind", kind, "--expires", "2h"]
    for role in roles:
        args += ["--role", role]
    lines = cli(gw, *args).stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("id: ") and lines[1].startswith("key: pk_"), lines
    return lines[1].removeprefix("key: ")


@asynccontextmanager
async def session(url: str, key: str, era: str, **kwargs: Any) -> AsyncIterator[Client]:
    """An SDK client for ``era`` authenticating with ``key``; the response cache is off."""
    async with httpx2.AsyncClient(headers={"x-api-key": key}, timeout=httpx2.Timeout(30, read=60)) as http:
        transport = streamable_http_client(url, http_client=http)
        kwargs.setdefault("read_timeout_seconds", 60)
        async with Client(transport, mode=era, cache=None, **kwargs) as client:
            yield client


def audit_rows(gw: Gateway, after_seq: int = 0) -> list[dict[str, Any]]:
    """Rows of ``audit_records`` with ``seq > after_seq``, oldest first; ``policy_ids`` decoded."""
    db = gw.workdir / "portcullis.db"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM audit_records WHERE seq > ? ORDER BY seq", (after_seq,)).fetchall()
    finally:
        conn.close()
    out = []
    for row in rows:
        record = dict(row)
        record["policy_ids"] = json.loads(record["policy_ids"]) if record.get("policy_ids") else []
        out.append(record)
    return out


def audit_export(gw: Gateway) -> list[dict[str, Any]]:
    """Every record, as ``portcullis audit export --format jsonl`` prints it."""
    out = cli(gw, "audit", "export", "--format", "jsonl").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def last_seq(gw: Gateway) -> int:
    """The newest record's ``seq`` (0 when there is none)."""
    conn = sqlite3.connect(f"file:{gw.workdir / 'portcullis.db'}?mode=ro", uri=True, timeout=10)
    try:
        (seq,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM audit_records").fetchone()
    finally:
        conn.close()
    return int(seq)


def store_bytes(gw: Gateway) -> bytes:
    """The SQLite store with its WAL and shared-memory files."""
    return b"".join(p.read_bytes() for p in sorted(gw.workdir.glob("portcullis.db*")))


def gateway_logs(gw: Gateway) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted((gw.workdir / "logs").glob("portcullis.*.log")))

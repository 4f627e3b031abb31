"""The audit trail through the running gateway: one durable record per request, allowed or
refused; crash safety under ``kill -9``; live sinks (syslog over TCP, JSON Lines) that catch up
after an outage; no secret in the store, the log or the sinks."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.access import audit_export, cli, store_bytes
from harness.gateway import Gateway, render_config
from harness.procs import free_port
from harness.rawhttp import BASE_HEADERS, jsonrpc_reply, modern_envelope, modern_headers, post
from harness.upstreams import everything_stdio

# Secrets that pass through a call (as arguments and, echoed, in the result). The redaction rules
# must keep every one of them out of the store, the log and the sinks.
AWS_KEY = "AKIAQWERTYUIOPASDFGH"
GITHUB_TOKEN = "ghp_0123456789abcdefghijABCDEFGHIJ012345"
SECRETS = [AWS_KEY, GITHUB_TOKEN]

DENY_ECHO_POLICY = """@id("e2e-allow-all")
permit(principal, action, resource);

@id("no-long-running")
@reason("long-running operations are off in this test")
forbid(principal, action == Portcullis::Action::"call_tool", resource)
when { resource.name == "everything__trigger-long-running-operation" };
"""


def digest(value: Any) -> str:
    """SHA-256 of RFC 8785 canonical JSON (exact for the ASCII-only objects used here)."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def call(gw: Gateway, name: str, arguments: dict[str, Any], *, id: int = 1, timeout: float = 30) -> dict[str, Any]:
    body = modern_envelope("tools/call", {"name": name, "arguments": arguments}, id=id)
    resp = post(gw.mcp_url, content=json.dumps(body).encode(), headers=modern_headers(body), timeout=timeout)
    reply = jsonrpc_reply(resp, id)
    assert reply is not None, f"no JSON-RPC reply (HTTP {resp.status_code}): {resp.text[:300]!r}"
    return reply


@pytest.fixture
def gateway_factory(portcullis_bin: Path, tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """Starts gateways that the test may kill; every one is stopped at the end."""
    started: list[Gateway] = []

    def start(workdir: Path, extra: str = "", policy: str | None = None, port: int | None = None) -> Gateway:
        port = port or free_port()
        gw = Gateway(portcullis_bin, workdir, render_config(port, [everything_stdio()], extra=extra), port)
        if policy is not None:
            (workdir / "policies" / "allow-all.cedar").write_text(policy)
        started.append(gw)
        gw.wait_healthy()
        assert gw.wait_ready(), f"upstream never became ready\n{gw.logs()}"
        return gw

    yield start
    for gw in started:
        gw.stop()


def test_every_request_leaves_one_record_and_the_chain_verifies(
    gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    # The policy file is replaced before the first request (hot reload picks it up).
    gw = gateway_factory(tmp_path / "gw")
    (gw.workdir / "policies" / "allow-all.cedar").write_text(DENY_ECHO_POLICY)
    time.sleep(1.0)

    ok = call(gw, "everything__echo", {"message": "hello"}, id=1)
    assert "result" in ok, ok
    denied = call(gw, "everything__trigger-long-running-operation", {"duration": 1, "steps": 1}, id=2)
    assert denied["error"]["code"] == -31006, denied
    invalid = call(gw, "everything__echo", {"message": 5}, id=3)
    assert invalid["error"]["code"] == -32602, invalid
    listed = jsonrpc_reply(
        post(
            gw.mcp_url,
            content=json.dumps(modern_envelope("tools/list", id=4)).encode(),
            headers=modern_headers(modern_envelope("tools/list", id=4)),
        ),
        4,
    )
    assert listed is not None and "result" in listed
    malformed = httpx.post(gw.mcp_url, content=b"{not json", headers=BASE_HEADERS, timeout=10)
    assert malformed.status_code == 400

    records = audit_export(gw)
    # Exactly one record per request: 5 requests, 5 records, in request order.
    assert len(records) == 5, [(r["method"], r.get("name"), r["decision"]) for r in records]
    assert [r["seq"] for r in records] == sorted(r["seq"] for r in records)
    allowed, refused, bad_args, listing, unreadable = records
    assert (allowed["method"], allowed.get("name")) == ("tools/call", "everything__echo")
    assert allowed["decision"] == "allow" and allowed["upstream"] == "everything"
    assert allowed["principal"] == "anonymous" and allowed["auth_method"] == "anonymous"
    assert allowed["args_digest"] == digest({"message": "hello"})
    assert allowed["result_digest"], allowed
    assert refused.get("name") == "everything__trigger-long-running-operation"
    assert refused["decision"] == "deny"
    assert refused["policy_ids"] == ["no-long-running"], refused
    assert "long-running operations are off" in refused["reason"]
    assert bad_args.get("name") == "everything__echo" and bad_args["decision"] == "deny"
    assert "invalid arguments" in bad_args["reason"]
    assert listing["method"] == "tools/list" and listing["decision"] == "allow"
    assert unreadable["method"] == "(unreadable)" and unreadable["decision"] == "deny"
    assert unreadable["client_ip"] == "127.0.0.1"

    # The metrics count the same requests as the trail, by decision and principal class.
    metrics = httpx.get(f"{gw.base_url}/metrics", timeout=10).text
    for line in (
        'portcullis_requests_total{method="tools/call",decision="allow",upstream="everything",principal_class="anonymous"} 1',
        'portcullis_requests_total{method="tools/call",decision="deny",upstream="everything",principal_class="anonymous"} 2',
        'portcullis_requests_total{method="tools/list",decision="allow",upstream="",principal_class="anonymous"} 1',
        'portcullis_requests_total{method="other",decision="deny",upstream="",principal_class="unauthenticated"} 1',
        'portcullis_stage_duration_seconds_count{stage="authz"} 3',
        'portcullis_stage_duration_seconds_count{stage="validate"} 2',
        'portcullis_stage_duration_seconds_count{stage="audit"} 5',
        "portcullis_audit_queue_depth 0",
    ):
        assert line in metrics, f"missing {line!r} in\n{metrics}"

    gw.stop_and_check()
    verified = cli(gw, "audit", "verify", check=False)
    assert verified.returncode == 0, f"{verified.stdout}\n{verified.stderr}"


def test_kill_9_under_load_loses_no_record_of_an_answered_call(
    gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    workdir = tmp_path / "gw"
    gw = gateway_factory(workdir)
    answered: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker: int) -> None:
        i = 0
        while not stop.is_set():
            message = f"w{worker}-{i}"
            i += 1
            try:
                reply = call(gw, "everything__echo", {"message": message}, id=i, timeout=10)
            except (httpx.HTTPError, AssertionError, OSError):
                return  # the gateway is gone
            if "result" in reply:
                with lock:
                    answered.append(message)

    threads = [threading.Thread(target=load, args=(w,), daemon=True) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with lock:
            if len(answered) >= 150:
                break
        time.sleep(0.05)
    gw.proc.send_signal(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(timeout=15)
    gw.proc.stop(signal.SIGKILL, timeout=5)
    with lock:
        got = list(answered)
    assert len(got) >= 50, f"too little load before the kill ({len(got)} answered)\n{gw.logs()}"

    # After the crash: every answered call has its record, and the chain is intact.
    restarted = gateway_factory(workdir, port=gw.port)
    records = audit_export(restarted)
    digests = {r["args_digest"] for r in records if r["method"] == "tools/call"}
    missing = [m for m in got if digest({"message": m}) not in digests]
    assert not missing, f"{len(missing)} answered call(s) have no audit record: {missing[:5]}"
    restarted.stop_and_check()
    verified = cli(restarted, "audit", "verify", check=False)
    assert verified.returncode == 0, f"chain does not verify after kill -9:\n{verified.stdout}\n{verified.stderr}"


class SyslogTcpReceiver:
    """RFC 6587 octet-counted syslog over TCP, collecting every message."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[str] = []
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self._server.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while b" " in buf:
                    length, _, rest = buf.partition(b" ")
                    n = int(length)
                    if len(rest) < n:
                        break
                    with self._lock:
                        self.messages.append(rest[:n].decode())
                    buf = rest[n:]

    def seqs(self) -> set[int]:
        with self._lock:
            found = set()
            for m in self.messages:
                start = m.find('seq="')
                if start >= 0:
                    found.add(int(m[start + 5 : m.index('"', start + 5)]))
            return found

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.messages)

    def close(self) -> None:
        self._stop.set()
        self._server.close()


def test_sinks_get_every_record_and_catch_up_after_30s_down(
    gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    syslog_port = free_port()
    jsonl = tmp_path / "sink" / "audit.jsonl"
    extra = f"""
[[audit.sink]]
kind = "syslog"
address = "127.0.0.1:{syslog_port}"
transport = "tcp"

[[audit.sink]]
kind = "jsonl"
path = {json.dumps(str(jsonl))}
"""
    gw = gateway_factory(tmp_path / "gw", extra=extra)
    # The syslog receiver is down for the first 30 s: records keep coming meanwhile.
    down_since = time.monotonic()
    for i in range(20):
        reply = call(gw, "everything__echo", {"message": f"{AWS_KEY} {GITHUB_TOKEN} #{i}"}, id=i + 1)
        assert "result" in reply, reply
    time.sleep(max(0.0, 30 - (time.monotonic() - down_since)))
    receiver = SyslogTcpReceiver(syslog_port)
    try:
        for i in range(20, 25):
            assert "result" in call(gw, "everything__echo", {"message": f"after #{i}"}, id=i + 1)
        want = {r["seq"] for r in audit_export(gw)}
        assert len(want) == 25

        def jsonl_seqs() -> set[int]:
            text = jsonl.read_text() if jsonl.exists() else ""
            complete = text[: text.rfind("\n") + 1]  # a line being written is not read yet
            return {json.loads(line)["seq"] for line in complete.splitlines() if line.strip()}

        # Sinks deliver after the commit, each at its own pace: wait for both.
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not (want <= receiver.seqs() and want <= jsonl_seqs()):
            time.sleep(0.25)
        assert want <= receiver.seqs(), f"syslog missed seq {sorted(want - receiver.seqs())[:10]}"
        assert want <= jsonl_seqs(), f"the JSON Lines sink missed seq {sorted(want - jsonl_seqs())[:10]}"
        metrics = httpx.get(f"{gw.base_url}/metrics", timeout=10).text
        failures = [
            line for line in metrics.splitlines() if line.startswith("portcullis_audit_sink_failures{") and "syslog" in line
        ]
        assert failures and int(failures[0].rsplit(" ", 1)[1]) > 0, f"the outage is not in the metrics:\n{metrics}"
        gw.stop_and_check()
        # No secret anywhere: store, gateway log, sink outputs.
        haystacks = {
            "store": store_bytes(gw).decode(errors="replace"),
            "log": gw.logs(),
            "syslog": receiver.text(),
            "jsonl": jsonl.read_text(),
        }
        for where, text in haystacks.items():
            for secret in SECRETS:
                assert secret not in text, f"{secret[:6]}… found in the {where}"
    finally:
        receiver.close()


def test_log_lines_are_redacted(gateway_factory: Callable[..., Gateway], tmp_path: Path) -> None:
    """An upstream's error text quoting a secret reaches the operator's log masked."""
    gw = gateway_factory(tmp_path / "gw")
    uri = f"everything__demo://resource/static/document/{AWS_KEY}-{GITHUB_TOKEN}.md"
    body = modern_envelope("resources/read", {"uri": uri}, id=7)
    resp = post(gw.mcp_url, content=json.dumps(body).encode(), headers=modern_headers(body))
    reply = jsonrpc_reply(resp, 7)
    assert reply is not None and "error" in reply, reply
    gw.stop_and_check()
    logs = gw.logs()
    assert "upstream returned an error" in logs, logs[-3000:]
    assert "[REDACTED:" in logs
    for secret in SECRETS:
        assert secret not in logs, f"{secret[:6]}… in the gateway log"

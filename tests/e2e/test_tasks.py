"""The tasks extension (``io.modelcontextprotocol/tasks``, 2026-07-28) through the gateway.

The upstream is the conformant fixture (``shared/tools/conformance``), whose ``slow_compute``
tool runs as a task when the client declares the extension. The official suite checks the wire
(test_conformance.py); this checks what the gateway adds: a task belongs to the principal whose
call created it (another principal's ``tasks/get``, ``tasks/update`` and ``tasks/cancel`` get
the same -32602 as for an unknown id and never reach the upstream), the extension is required
of the client (-32021), the completed result comes back through ``tasks/get``, and every one of
these requests has its audit record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from harness.access import audit_rows, create_key, last_seq
from harness.gateway import Gateway
from harness.rawhttp import jsonrpc_reply, modern_envelope, modern_headers
from harness.upstreams import UpstreamSpec

TASKS = "io.modelcontextprotocol/tasks"
WITH_TASKS = {"io.modelcontextprotocol/clientCapabilities": {"extensions": {TASKS: {}}}}


def call(gw: Gateway, key: str, method: str, params: dict[str, Any], *, tasks: bool = True) -> dict[str, Any]:
    params = {**params, "_meta": WITH_TASKS} if tasks else params
    body = modern_envelope(method, params)
    headers = modern_headers(body)
    resp = httpx.post(gw.mcp_url, content=json.dumps(body).encode(), headers={**headers, "x-api-key": key}, timeout=30)
    reply = jsonrpc_reply(resp, 1)
    assert reply is not None, f"{method}: HTTP {resp.status_code}: {resp.text[:300]}"
    return reply


def test_a_task_is_polled_to_its_result_by_its_creator_only(
    start_gateway: Callable[..., Gateway], conformance_fixture_url: str
) -> None:
    gw = start_gateway(
        [UpstreamSpec(name="conf", url=conformance_fixture_url)],
        allow_anonymous=False,
        auth={"api_keys": True},
    )
    alice = create_key(gw, "alice")
    mallory = create_key(gw, "mallory")

    discovered = call(gw, alice, "server/discover", {})
    assert TASKS in discovered["result"]["capabilities"].get("extensions", {}), discovered

    created = call(gw, alice, "tools/call", {"name": "conf__slow_compute", "arguments": {"seconds": 0.3}})
    handle = created["result"]
    assert handle["resultType"] == "task", created
    task_id = handle["taskId"]

    # Without the extension declared, tasks/* is refused by the gateway (-32021).
    missing = call(gw, alice, "tasks/get", {"taskId": task_id}, tasks=False)
    assert missing["error"]["code"] == -32021, missing
    assert TASKS in json.dumps(missing["error"].get("data")), missing

    # Another principal cannot see, answer or cancel it: the reply is the unknown-id one.
    before = last_seq(gw)
    for method, extra in (("tasks/get", {}), ("tasks/update", {"inputResponses": {}}), ("tasks/cancel", {})):
        stolen = call(gw, mallory, method, {"taskId": task_id, **extra})
        unknown = call(gw, mallory, method, {"taskId": "task-does-not-exist", **extra})
        assert stolen["error"]["code"] == -32602, stolen
        assert stolen["error"]["message"].replace(task_id, "X") == unknown["error"]["message"].replace(
            "task-does-not-exist", "X"
        )
    denied = [r for r in audit_rows(gw, before) if r["principal"] == "mallory"]
    assert len(denied) == 6 and all(r["decision"] == "deny" for r in denied), denied

    # The creator polls it to completion and gets the tool's result.
    deadline = time.monotonic() + 15
    while True:
        got = call(gw, alice, "tasks/get", {"taskId": task_id})["result"]
        if got["status"] in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert got["status"] == "completed", got
    assert got["taskId"] == task_id
    assert got["result"]["content"], got

    # Its task is still alice's: cancelling a completed task is acknowledged (idempotent).
    ack = call(gw, alice, "tasks/cancel", {"taskId": task_id})
    assert "error" not in ack and ack["result"]["resultType"] == "complete", ack
    rows = [r for r in audit_rows(gw, before) if r["principal"] == "alice" and r["method"].startswith("tasks/")]
    assert rows and all(r["decision"] == "allow" and r["upstream"] == "conf" for r in rows), rows


def test_a_task_is_followed_up_through_another_replica(
    start_gateway: Callable[..., Gateway], conformance_fixture_url: str, tmp_path: Path
) -> None:
    """Two replicas on one store, as behind a load balancer: a stateless client's poll may reach
    a replica other than the one that relayed its call. (One SQLite file here; replicas on
    PostgreSQL share the same table.)"""
    shared = f"sqlite://{tmp_path / 'shared' / 'portcullis.db'}"
    upstreams = [UpstreamSpec(name="conf", url=conformance_fixture_url)]
    first = start_gateway(upstreams, allow_anonymous=False, auth={"api_keys": True}, storage_url=shared)
    second = start_gateway(upstreams, allow_anonymous=False, auth={"api_keys": True}, storage_url=shared)
    alice = create_key(first, "alice")
    mallory = create_key(first, "mallory")

    created = call(first, alice, "tools/call", {"name": "conf__slow_compute", "arguments": {"seconds": 0.3}})
    assert created["result"]["resultType"] == "task", created
    task_id = created["result"]["taskId"]

    # The other replica knows whose task it is.
    stolen = call(second, mallory, "tasks/get", {"taskId": task_id})
    assert stolen["error"]["code"] == -32602, stolen
    deadline = time.monotonic() + 15
    while True:
        got = call(second, alice, "tasks/get", {"taskId": task_id})
        assert "result" in got, got
        if got["result"]["status"] in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert got["result"]["status"] == "completed", got
    assert got["result"]["result"]["content"], got


def test_without_the_extension_a_call_is_answered_inline(
    start_gateway: Callable[..., Gateway], conformance_fixture_url: str
) -> None:
    gw = start_gateway([UpstreamSpec(name="conf", url=conformance_fixture_url)], allow_anonymous=False, auth={"api_keys": True})
    key = create_key(gw, "alice")
    reply = call(gw, key, "tools/call", {"name": "conf__slow_compute", "arguments": {"seconds": 0}}, tasks=False)
    assert reply["result"].get("resultType", "complete") == "complete", reply
    assert reply["result"]["content"], reply

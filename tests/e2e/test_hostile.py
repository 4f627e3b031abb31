"""Hostile and malformed input to ``POST /mcp``, and the operational endpoints.

One gateway serves the whole module, so each row also proves that the gateway keeps serving after
the previous ones: after every row a well-formed 2026-07-28 ``tools/call`` must still succeed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from harness.gateway import TEST_ORIGIN, Gateway, running_gateway
from harness.paths import portcullis_binary
from harness.rawhttp import (
    BASE_HEADERS,
    LEGACY_VERSION,
    MODERN_VERSION,
    RawResponse,
    chunked,
    jsonrpc_reply,
    modern_call,
    modern_envelope,
    modern_headers,
    raw_exchange,
    request_head,
)
from harness.upstreams import EverythingHttp, everything_stdio

TEN_MB = 10 * 1024 * 1024
DEPTH = 10_000


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    binary = portcullis_binary()
    if not binary.is_file():
        pytest.fail(f"gateway binary not found: {binary}")
    workdir = tmp_path_factory.mktemp("hostile")
    with EverythingHttp(workdir / "logs") as http_upstream:
        with running_gateway(binary, workdir / "gateway", [everything_stdio(), http_upstream.spec()]) as gw:
            yield gw


def assert_still_serving(gw: Gateway) -> None:
    reply = modern_call(
        gw.mcp_url, "tools/call", {"name": "everything__echo", "arguments": {"message": "still here"}}, id=99
    )
    assert "result" in reply, f"gateway stopped serving: {reply}"
    texts = [c.get("text") for c in reply["result"].get("content", [])]
    assert "Echo: still here" in texts, reply
    # server-everything speaks 2025-11-25 and sends no resultType; a 2026-07-28 client gets one.
    assert reply["result"].get("resultType") == "complete", reply


def _json(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _modern(
    method: str,
    params: dict[str, Any] | None = None,
    *,
    version: str = MODERN_VERSION,
    edit: Callable[[dict[str, Any]], Any] | None = None,
    headers: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
) -> tuple[bytes, dict[str, str]]:
    """A well-formed 2026-07-28 request and its matching headers, then one defect applied:
    ``edit`` changes the body, ``headers`` overrides headers, ``drop`` removes headers."""
    body = modern_envelope(method, params, version=version)
    h = modern_headers(body)
    h.update(headers or {})
    for name in drop:
        h.pop(name, None)
    return _json(edit(body) if edit else body), h


def _nested_arrays(depth: int) -> bytes:
    inner = "[" * depth + "]" * depth
    return (
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"everything__echo","arguments":{"message":'
        + inner
        + "}}}"
    ).encode()


def _nested_objects(depth: int) -> bytes:
    inner = '{"a":' * depth + "1" + "}" * depth
    return ('{"jsonrpc":"2.0","id":1,"method":"tools/list","params":' + inner + "}").encode()


def _huge_echo() -> bytes:
    body = modern_envelope("tools/call", {"name": "everything__echo", "arguments": {"message": "x" * TEN_MB}})
    return _json(body)


@dataclass
class Case:
    id: str
    body: bytes
    headers: dict[str, str]
    status: set[int]
    codes: set[int] | None = None  # accepted JSON-RPC error codes; None: not checked
    check: Callable[[dict[str, Any]], None] | None = None
    raw: str | None = None  # "length" or "chunked": sent over a plain socket


def _null_id(reply: dict[str, Any]) -> None:
    assert reply.get("id", "absent") is None, f"a parse error must answer with id null: {reply}"


def _supported(reply: dict[str, Any]) -> None:
    data = reply["error"].get("data") or {}
    assert MODERN_VERSION in data.get("supported", []), f"data.supported must list {MODERN_VERSION}: {reply}"


_ECHO = {"name": "everything__echo", "arguments": {"message": "m"}}

CASES = [
    Case(
        "invalid-json",
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"',
        dict(BASE_HEADERS),
        {400},
        {-32700},
        _null_id,
    ),
    Case("not-json", b"hello, gateway", dict(BASE_HEADERS), {400}, {-32700}, _null_id),
    Case(
        "invalid-utf8",
        b'{"jsonrpc":"2.0","id":1,"method":"tools/\xff\xfe"}',
        dict(BASE_HEADERS),
        {400},
        {-32700},
        _null_id,
    ),
    Case("jsonrpc-1.0", *_modern("tools/list", edit=lambda b: {**b, "jsonrpc": "1.0"}), {400}, {-32600}),
    Case(
        "jsonrpc-missing",
        *_modern("tools/list", edit=lambda b: {k: v for k, v in b.items() if k != "jsonrpc"}),
        {400},
        {-32600},
    ),
    Case("batch", *_modern("tools/list", edit=lambda b: [b]), {400}, {-32600}),
    Case("empty-batch", b"[]", dict(BASE_HEADERS), {400}, {-32600}),
    Case("method-not-string", _json({"jsonrpc": "2.0", "id": 1, "method": 5}), dict(BASE_HEADERS), {400}, {-32600}),
    Case("id-is-object", *_modern("tools/list", edit=lambda b: {**b, "id": {"x": 1}}), {400}, {-32600}),
    Case("10MB-content-length", b"", {}, {413}, raw="length"),
    Case("10MB-chunked", b"", {}, {413}, raw="chunked"),
    Case("deep-arrays", _nested_arrays(DEPTH), dict(BASE_HEADERS), {400}, {-32600, -32700}),
    Case("deep-objects", _nested_objects(DEPTH), dict(BASE_HEADERS), {400}, {-32600, -32700}),
    Case(
        "unknown-session",
        _json({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        {
            **BASE_HEADERS,
            "mcp-protocol-version": LEGACY_VERSION,
            "mcp-session-id": "00000000-dead-beef-0000-000000000000",
        },
        {404},
    ),
    Case("mcp-method-mismatch", *_modern("tools/list", headers={"mcp-method": "prompts/list"}), {400}, {-32020}),
    Case("mcp-method-missing", *_modern("tools/list", drop=("mcp-method",)), {400}, {-32020}),
    Case(
        "mcp-name-mismatch", *_modern("tools/call", _ECHO, headers={"mcp-name": "everything__get-sum"}), {400}, {-32020}
    ),
    Case("unsupported-version", *_modern("tools/list", version="1900-01-01"), {400}, {-32022}, _supported),
    Case("evil-origin", *_modern("tools/list", headers={"origin": "http://evil.example"}), {403}),
    Case("allowed-origin", *_modern("tools/list", headers={"origin": TEST_ORIGIN}), {200}),
]


def _send(gw: Gateway, case: Case) -> tuple[int | None, dict[str, Any] | None, str]:
    if case.raw is None:
        resp = httpx.post(gw.mcp_url, content=case.body, headers=case.headers, timeout=30)
        try:
            reply = jsonrpc_reply(resp)
        except (ValueError, json.JSONDecodeError):
            reply = None
        return resp.status_code, reply, resp.text[:500]
    body = _huge_echo()
    headers = {"content-type": "application/json", "accept": BASE_HEADERS["accept"]}
    if case.raw == "length":
        headers["content-length"] = str(len(body))
        chunks: Any = (body[i : i + 65536] for i in range(0, len(body), 65536))
    else:
        headers["transfer-encoding"] = "chunked"
        chunks = chunked(body)
    got: RawResponse = raw_exchange(gw.port, request_head("POST", "/mcp", gw.port, headers), chunks)
    return got.status, None, f"{got.note}: {got.body[:300]!r}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_request(gateway: Gateway, case: Case) -> None:
    status, reply, text = _send(gateway, case)
    assert status in case.status, f"{case.id}: expected HTTP {sorted(case.status)}, got {status}: {text}"
    if case.codes is not None:
        assert reply is not None and "error" in reply, f"{case.id}: expected a JSON-RPC error body, got {text}"
        assert reply["error"]["code"] in case.codes, f"{case.id}: expected code {sorted(case.codes)}, got {reply}"
        message = str(reply["error"].get("message", ""))
        for leak in ("panicked", ".rs:", "backtrace"):
            assert leak not in message, f"{case.id}: error message shows internals: {message!r}"
    if case.check is not None:
        assert reply is not None, f"{case.id}: no JSON-RPC body: {text}"
        case.check(reply)
    if 200 in case.status:
        assert reply is not None and "result" in reply, f"{case.id}: expected a result: {text}"
    assert_still_serving(gateway)


def test_get_without_session_is_refused(gateway: Gateway) -> None:
    """2026-07-28 has no standalone GET stream: 405 (or 400), and no stream is opened."""
    headers = {"accept": "text/event-stream", "mcp-protocol-version": MODERN_VERSION}
    with httpx.stream("GET", gateway.mcp_url, headers=headers, timeout=10) as resp:
        assert resp.status_code in (405, 400), f"GET /mcp: HTTP {resp.status_code}"
    assert_still_serving(gateway)


def test_healthz(gateway: Gateway) -> None:
    resp = httpx.get(f"{gateway.base_url}/healthz", timeout=10)
    assert resp.status_code == 200


def test_readyz_when_upstreams_are_up(gateway: Gateway) -> None:
    assert gateway.wait_ready(timeout=30), "/readyz never answered 200 with every upstream running"


def test_metrics(gateway: Gateway) -> None:
    assert_still_serving(gateway)
    resp = httpx.get(f"{gateway.base_url}/metrics", timeout=10)
    assert resp.status_code == 200
    assert resp.headers.get("content-type", "").startswith(("text/plain", "application/openmetrics-text"))
    assert "portcullis_requests_total" in resp.text, resp.text[:2000]

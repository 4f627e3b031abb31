"""Hand-made HTTP requests to the gateway, for inputs no SDK would send.

``httpx`` for ordinary requests; :func:`raw_exchange` (a plain socket) for bodies the server is
expected to refuse before reading them, where an HTTP client library would lose the answer while
it is still writing.
"""

from __future__ import annotations

import json
import selectors
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

MODERN_VERSION = "2026-07-28"
LEGACY_VERSION = "2025-11-25"
ACCEPT = "application/json, text/event-stream"
BASE_HEADERS = {"content-type": "application/json", "accept": ACCEPT}
CLIENT_INFO = {"name": "portcullis-e2e-raw", "version": "0"}

# Methods whose target is mirrored in the Mcp-Name header (2026-07-28), and the params key.
NAME_KEYS = {
    "tools/call": "name",
    "prompts/get": "name",
    "resources/read": "uri",
    "tasks/get": "taskId",
    "tasks/update": "taskId",
    "tasks/cancel": "taskId",
}


def modern_envelope(
    method: str, params: dict[str, Any] | None = None, *, id: int | str = 1, version: str = MODERN_VERSION
) -> dict[str, Any]:
    """A 2026-07-28 request: the per-request envelope lives in ``params._meta``."""
    params = dict(params or {})
    params["_meta"] = {
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
        **params.get("_meta", {}),
    }
    return {"jsonrpc": "2.0", "id": id, "method": method, "params": params}


def modern_headers(body: dict[str, Any], *, version: str | None = None) -> dict[str, str]:
    """The routing headers that match ``body`` (override afterwards to make them disagree)."""
    method = body["method"]
    if version is None:
        version = body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"]
    headers = {**BASE_HEADERS, "mcp-protocol-version": version, "mcp-method": method}
    key = NAME_KEYS.get(method)
    if key is not None:
        headers["mcp-name"] = body["params"][key]
    return headers


def post(url: str, *, content: bytes, headers: dict[str, str], timeout: float = 30) -> httpx.Response:
    return httpx.post(url, content=content, headers=headers, timeout=timeout)


def jsonrpc_messages(resp: httpx.Response) -> list[dict[str, Any]]:
    """The JSON-RPC messages in a response: a JSON body, or the ``data:`` events of an SSE body."""
    ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "text/event-stream":
        messages: list[dict[str, Any]] = []
        data: list[str] = []
        for line in resp.text.splitlines() + [""]:
            if line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
            elif line == "" and data:
                payload = "\n".join(data)
                data = []
                if payload.strip():
                    messages.append(json.loads(payload))
        return messages
    if not resp.content:
        return []
    parsed = json.loads(resp.content)
    return parsed if isinstance(parsed, list) else [parsed]


def jsonrpc_reply(resp: httpx.Response, id: Any = None) -> dict[str, Any] | None:
    """The response (``result`` or ``error``) in ``resp``: the one for ``id``, else the last one."""
    replies = [m for m in jsonrpc_messages(resp) if isinstance(m, dict) and ("result" in m or "error" in m)]
    for m in replies:
        if id is not None and m.get("id") == id:
            return m
    return replies[-1] if replies else None


def modern_call(url: str, method: str, params: dict[str, Any] | None = None, *, id: int = 1) -> dict[str, Any]:
    """Sends one well-formed 2026-07-28 request; returns its JSON-RPC reply (asserts HTTP 200)."""
    body = modern_envelope(method, params, id=id)
    resp = post(url, content=json.dumps(body).encode(), headers=modern_headers(body))
    assert resp.status_code == 200, f"{method}: HTTP {resp.status_code}: {resp.text[:500]}"
    reply = jsonrpc_reply(resp, id)
    assert reply is not None, f"{method}: no JSON-RPC reply in {resp.text[:500]!r}"
    return reply


@dataclass
class RawResponse:
    status: int | None
    headers: dict[str, str]
    body: bytes
    note: str

    def json(self) -> Any:
        return json.loads(self.body)


def raw_exchange(
    port: int,
    head: str,
    body_chunks: Iterable[bytes],
    *,
    host: str = "127.0.0.1",
    timeout: float = 30,
) -> RawResponse:
    """Writes ``head`` then the body while reading; stops writing as soon as an answer arrives.

    A server may answer 413 and close without reading the body: the answer is kept even if the
    write fails (EPIPE/ECONNRESET) or the server resets the connection afterwards.
    """
    deadline = time.monotonic() + timeout
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    chunks = iter([head.encode("latin-1"), *body_chunks])
    pending = b""
    sending = True
    received = b""
    note = "closed by server"
    try:
        while time.monotonic() < deadline:
            events = sel.select(timeout=0.5)
            for _, mask in events:
                if mask & selectors.EVENT_READ:
                    try:
                        data = sock.recv(65536)
                    except BlockingIOError:
                        data = None
                    except ConnectionResetError:
                        note = "reset by server"
                        return _parse(received, note)
                    if data == b"":
                        return _parse(received, note)
                    if data:
                        received += data
                        if sending and b"\r\n\r\n" in received:
                            sending = False  # the server has answered: stop writing
                            sel.modify(sock, selectors.EVENT_READ)
                        if _complete(received):
                            return _parse(received, "complete response")
                if sending and mask & selectors.EVENT_WRITE:
                    if not pending:
                        pending = next(chunks, b"")
                        if not pending:
                            sending = False
                            sel.modify(sock, selectors.EVENT_READ)
                            continue
                    try:
                        sent = sock.send(pending)
                        pending = pending[sent:]
                    except BlockingIOError:
                        pass
                    except (BrokenPipeError, ConnectionResetError):
                        sending = False
                        note = "server stopped reading the body"
                        sel.modify(sock, selectors.EVENT_READ)
        return _parse(received, "timed out")
    finally:
        sel.close()
        sock.close()


def _split(received: bytes) -> tuple[int | None, dict[str, str], bytes] | None:
    if b"\r\n\r\n" not in received:
        return None
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def _complete(received: bytes) -> bool:
    split = _split(received)
    if split is None:
        return False
    _, headers, body = split
    if "content-length" in headers:
        return len(body) >= int(headers["content-length"])
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return body.endswith(b"0\r\n\r\n")
    return False


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            return out
        if size == 0:
            return out
        out += rest[:size]
        body = rest[size + 2 :]
    return out


def _parse(received: bytes, note: str) -> RawResponse:
    split = _split(received)
    if split is None:
        return RawResponse(None, {}, received, note)
    status, headers, body = split
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return RawResponse(status, headers, body, note)


def request_head(method: str, path: str, port: int, headers: dict[str, str]) -> str:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in headers.items())]
    return "\r\n".join(lines) + "\r\n\r\n"


def chunked(data: bytes, size: int = 256 * 1024) -> Iterable[bytes]:
    """``data`` in HTTP/1.1 chunked transfer coding."""
    for i in range(0, len(data), size):
        piece = data[i : i + size]
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"

"""A recording reverse proxy: what the gateway actually sends to an HTTP upstream.

:class:`HeaderRecorder` listens on 127.0.0.1, keeps every request's method, path, headers and
body, and forwards it unchanged to ``target`` (an upstream's base URL), streaming the answer back
(SSE included). Put it between the gateway and a real upstream to prove what does and does not
leave the gateway.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

# Hop-by-hop headers (RFC 9110 §7.6.1) and the ones httpx sets itself.
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length"}


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


class HeaderRecorder:
    """A reverse proxy to ``target`` (e.g. ``http://127.0.0.1:PORT``) that records requests."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=httpx.Timeout(30, read=None))
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0 answers: the body ends when the connection closes, so a streamed (SSE)
            # answer needs no re-chunking.
            protocol_version = "HTTP/1.0"

            def _proxy(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = [(k, v) for k, v in self.headers.items()]
                with recorder._lock:
                    recorder.requests.append(Recorded(self.command, self.path, headers, body))
                forward = [(k, v) for k, v in headers if k.lower() not in _HOP]
                try:
                    with recorder._client.stream(
                        self.command, recorder.target + self.path, headers=forward, content=body
                    ) as resp:
                        self.send_response(resp.status_code)
                        for k, v in resp.headers.multi_items():
                            # iter_raw() yields the body as sent, so its length still holds.
                            if k.lower() not in _HOP or k.lower() == "content-length":
                                self.send_header(k, v)
                        self.end_headers()
                        for chunk in resp.iter_raw():
                            self.wfile.write(chunk)
                            self.wfile.flush()
                except (httpx.HTTPError, BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_DELETE = _proxy  # noqa: N815 (http.server's names)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def snapshot(self) -> list[Recorded]:
        with self._lock:
            return list(self.requests)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._client.close()

    def __enter__(self) -> HeaderRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

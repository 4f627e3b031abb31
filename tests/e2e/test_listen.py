"""``subscriptions/listen`` (2026-07-28) fed by a stdio upstream of the same era.

A 2026-07-28 server sends list changes only on a listen stream it was asked for, so the gateway
keeps one open toward each such upstream, over stdio as over HTTP. The upstream is the conformant
fixture (``shared/tools/conformance``) run as a stdio child; its ``test_trigger_tool_change``
tool publishes a tools list change, which must reach a client's listen stream on the gateway.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import httpx

from conftest import CONFORMANCE_FIXTURE
from harness import paths
from harness.gateway import Gateway
from harness.rawhttp import modern_call, modern_envelope, modern_headers
from harness.upstreams import UpstreamSpec


def test_a_stdio_upstream_list_change_reaches_a_listen_stream(start_gateway: Callable[..., Gateway]) -> None:
    python = paths.E2E_DIR / ".venv" / "bin" / "python"
    gw = start_gateway([UpstreamSpec(name="conf", command=[str(python), str(CONFORMANCE_FIXTURE), "stdio"])])
    # The upstream is up and speaks 2026-07-28 before the stream opens.
    listed = modern_call(gw.mcp_url, "tools/list")
    assert any(t["name"] == "conf__test_trigger_tool_change" for t in listed["result"]["tools"]), listed

    heard = threading.Event()

    def trigger() -> None:
        # The gateway's own stream toward the upstream opens in the background: keep announcing
        # until the client hears one (or give up, and the assertion below fails).
        for _ in range(20):
            if heard.wait(0.5):
                return
            modern_call(gw.mcp_url, "tools/call", {"name": "conf__test_trigger_tool_change", "arguments": {}})

    body = modern_envelope("subscriptions/listen", {"notifications": {"toolsListChanged": True}})
    seen: list[str] = []
    started = time.monotonic()
    with httpx.stream(
        "POST", gw.mcp_url, content=json.dumps(body).encode(), headers=modern_headers(body), timeout=30
    ) as resp:
        assert resp.status_code == 200, resp.read()[:500]
        thread = threading.Thread(target=trigger, daemon=True)
        thread.start()
        for line in resp.iter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            seen.append(message.get("method", ""))
            if message.get("method") == "notifications/tools/list_changed":
                heard.set()
                break
            assert time.monotonic() - started < 20, seen
    thread.join(timeout=15)
    assert heard.is_set(), f"no tools/list_changed on the listen stream; saw {seen}"

"""Long results pass through the gateway as they arrive (``limits.stream_results_above``).

The bundled demo server (``portcullis demo-upstream --http``) reads a 900 KiB file for the
official SDK client (``read_file``, and ``resources/read`` whose link gets the upstream's
prefix on the way), in both eras, through a gateway that holds at most 256 KiB of a result
(``limits.max_response_bytes``): only a result that is not held can get through. Hidden
characters are still removed on the way, and the audit record carries the size and SHA-256 of
the text the client got. server-everything (npm) answers on an SSE stream, whose one event
passes through the same way. Without ``stream_results_above`` the same read is refused as too large,
and so is a read whose results the guard redacts (redaction needs the whole result).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPError

from harness.access import audit_export
from harness.clients import all_resources, connect, text_of
from harness.gateway import Gateway, UpstreamSpec
from harness import upstreams
from harness.upstreams import EverythingHttp

pytestmark = pytest.mark.anyio

# 900 KiB of lines, with hidden characters the gateway removes: a zero-width space and a
# right-to-left override in every 1000th line.
LINES = [f"line {i:06d} " + ("\u200b\u202e" if i % 1000 == 0 else "") + "x" * 40 for i in range(17_000)]
FILE_TEXT = "\n".join(LINES) + "\n"
CLEAN_TEXT = FILE_TEXT.replace("\u200b", "").replace("\u202e", "")
HIDDEN = FILE_TEXT.count("\u200b") + FILE_TEXT.count("\u202e")

STREAMING = {"max_response_bytes": "256KiB", "stream_results_above": "64KiB"}
# Redacting results (the default) needs them whole.
NO_REDACTION = "[guard]\nredact_results = false\n"


@pytest.fixture
def demo_http(portcullis_bin: Path, tmp_path: Path) -> Iterator[UpstreamSpec]:
    """``portcullis demo-upstream --http`` serving a directory that holds ``big.txt``."""
    root = tmp_path / "demo-root"
    root.mkdir()
    (root / "big.txt").write_text(FILE_TEXT, encoding="utf-8")
    assert 800 * 1024 < len(FILE_TEXT.encode()) < 1024 * 1024
    with upstreams.demo_http(portcullis_bin, root, tmp_path / "logs") as base_url:
        yield UpstreamSpec(name="demo", url=f"{base_url}/mcp")


def _call_records(gw: Gateway) -> list[dict]:
    return [r for r in audit_export(gw) if r["method"] == "tools/call"]


async def test_a_long_result_passes_through_to_an_sdk_client(
    start_gateway: Callable[..., Gateway], demo_http: UpstreamSpec, era: str
) -> None:
    gw = start_gateway([demo_http], limits=STREAMING, extra=NO_REDACTION)
    async with connect(gw.mcp_url, era) as client:
        result = await client.call_tool("demo__read_file", {"path": "big.txt"})
        # A short result on the same gateway is held and cleaned as always.
        short = await client.call_tool("demo__echo", {"message": "still \u200bhere"})
    assert not result.is_error, text_of(result)
    text = text_of(result)
    assert len(text) == len(CLEAN_TEXT)
    assert text == CLEAN_TEXT
    assert text_of(short) == "still here"

    records = _call_records(gw)
    assert [r["name"] for r in records] == ["demo__read_file", "demo__echo"], records
    passed = records[0]["result"]["value"]["passedThrough"]
    assert records[0]["decision"] == "allow"
    assert passed["hiddenRemoved"] == HIDDEN
    # The digest is over the result object's text as sent: parse-independent, so check what
    # can be checked from here, its size against the clean text it carried.
    assert passed["bytes"] > len(CLEAN_TEXT.encode())
    assert len(passed["sha256"]) == 64 and passed["sha256"] != hashlib.sha256(b"").hexdigest()
    assert "passedThrough" not in json.dumps(records[1]["result"])


async def test_a_long_resource_passes_through_with_its_link_prefixed(
    start_gateway: Callable[..., Gateway], demo_http: UpstreamSpec, era: str
) -> None:
    """``resources/read`` too: the contents' ``uri`` gets the upstream's prefix on the way."""
    gw = start_gateway([demo_http], limits=STREAMING, extra=NO_REDACTION)
    async with connect(gw.mcp_url, era) as client:
        [uri] = [r.uri for r in await all_resources(client) if str(r.uri).endswith("/big.txt")]
        assert str(uri).startswith("demo__file://"), uri
        read = await client.read_resource(uri)
    assert len(read.contents) == 1
    assert read.contents[0].uri == uri
    assert getattr(read.contents[0], "text", None) == CLEAN_TEXT
    records = [r for r in audit_export(gw) if r["method"] == "resources/read"]
    assert len(records) == 1 and records[0]["decision"] == "allow", records
    assert records[0]["result"]["value"]["passedThrough"]["hiddenRemoved"] == HIDDEN


@pytest.mark.parametrize(
    "setting",
    [
        pytest.param({"max_response_bytes": "256KiB", "redact": False}, id="no-streaming"),
        pytest.param({**STREAMING, "redact": True}, id="redacted-results"),
    ],
)
async def test_a_result_that_must_be_held_is_refused_past_the_limit(
    start_gateway: Callable[..., Gateway], demo_http: UpstreamSpec, setting: dict
) -> None:
    limits = {k: v for k, v in setting.items() if k != "redact"}
    extra = "" if setting["redact"] else NO_REDACTION
    gw = start_gateway([demo_http], limits=limits, extra=extra)
    async with connect(gw.mcp_url, "2026-07-28") as client:
        with pytest.raises(MCPError, match="too large"):
            await client.call_tool("demo__read_file", {"path": "big.txt"})
    records = _call_records(gw)
    assert len(records) == 1 and records[0]["decision"] == "error", records
    assert "262144 bytes" in records[0]["reason"], records[0]


async def test_a_long_result_on_an_sse_stream_passes_through(
    start_gateway: Callable[..., Gateway], everything_http: EverythingHttp, era: str
) -> None:
    """server-everything (the npm reference server, over Streamable HTTP) answers on an SSE
    stream: the long result is that stream's one event, passed through as its data arrives."""
    gw = start_gateway([everything_http.spec()], limits=STREAMING, extra=NO_REDACTION)
    message = "".join(f"{i:07d} \u200bwords " for i in range(24_000))  # ≈ 400 KiB, hidden chars
    async with connect(gw.mcp_url, era) as client:
        result = await client.call_tool("everything_http__echo", {"message": message})
    assert not result.is_error, text_of(result)[:200]
    assert text_of(result) == "Echo: " + message.replace("\u200b", "")
    records = _call_records(gw)
    assert len(records) == 1 and records[0]["decision"] == "allow", records
    assert records[0]["result"]["value"]["passedThrough"]["hiddenRemoved"] == 24_000

"""The reference servers themselves, without the gateway.

These pin down what the other tests rely on (entry files, the HTTP mode's port variable, tool
names, callback wiring), so a failure elsewhere points at the gateway, not at a peer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.client.stdio import StdioServerParameters

from harness import paths
from harness.clients import LEGACY, ElicitationStub, ProgressRecorder, SamplingStub, all_tools, connect, text_of
from harness.upstreams import FS_FILES, EverythingHttp

pytestmark = pytest.mark.anyio

EVERYTHING_TOOLS = {"echo", "get-sum", "trigger-long-running-operation"}
EVERYTHING_CONDITIONAL_TOOLS = {"trigger-sampling-request", "trigger-elicitation-request"}
FS_TOOLS = {"read_text_file", "read_file", "write_file", "list_directory", "list_allowed_directories"}


@pytest.fixture(params=["stdio", "http"])
def everything_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "stdio":
        yield StdioServerParameters(command=paths.node_binary(), args=[str(paths.EVERYTHING_ENTRY), "stdio"])
    else:
        with EverythingHttp(tmp_path / "logs") as server:
            yield server.url


async def test_everything_tools_and_relays(everything_target: Any) -> None:
    sampling = SamplingStub("PEER-SAMPLED-7f3a")
    elicitation = ElicitationStub({"name": "Ada Lovelace"})
    async with connect(everything_target, LEGACY, sampling_callback=sampling, elicitation_callback=elicitation) as c:
        names = {t.name for t in await all_tools(c)}
        assert EVERYTHING_TOOLS | EVERYTHING_CONDITIONAL_TOOLS <= names

        assert text_of(await c.call_tool("echo", {"message": "hi"})) == "Echo: hi"

        result = await c.call_tool("trigger-sampling-request", {"prompt": "say something"})
        assert "PEER-SAMPLED-7f3a" in text_of(result)
        assert len(sampling.calls) == 1

        result = await c.call_tool("trigger-elicitation-request", {})
        assert "- Name: Ada Lovelace" in text_of(result)
        assert len(elicitation.calls) == 1

        progress = ProgressRecorder()
        result = await c.call_tool(
            "trigger-long-running-operation", {"duration": 1, "steps": 4}, progress_callback=progress
        )
        assert "completed" in text_of(result)
        assert [p for p, _, _ in progress.events] == [1, 2, 3, 4]


async def test_everything_without_capabilities_hides_relay_tools() -> None:
    """Sampling/elicitation tools exist only for a client that declared those capabilities: the
    gateway must declare them upstream for the relay tests to find the tools."""
    target = StdioServerParameters(command=paths.node_binary(), args=[str(paths.EVERYTHING_ENTRY), "stdio"])
    async with connect(target, LEGACY) as c:
        names = {t.name for t in await all_tools(c)}
        assert EVERYTHING_TOOLS <= names
        assert not (EVERYTHING_CONDITIONAL_TOOLS & names)


async def test_filesystem(fs_root: Path) -> None:
    target = StdioServerParameters(command=paths.node_binary(), args=[str(paths.FILESYSTEM_ENTRY), str(fs_root)])
    async with connect(target, LEGACY) as c:
        names = {t.name for t in await all_tools(c)}
        assert FS_TOOLS <= names
        result = await c.call_tool("read_text_file", {"path": str(fs_root / "hello.txt")})
        assert text_of(result) == FS_FILES["hello.txt"]
        result = await c.call_tool("read_text_file", {"path": "/etc/hostname"})
        assert result.is_error

"""Messages that flow back from an upstream during a call: sampling, elicitation, progress.

server-everything's ``trigger-sampling-request`` and ``trigger-elicitation-request`` send a
request back to the client in the middle of ``tools/call``; ``trigger-long-running-operation``
sends ``notifications/progress`` for the call's progress token. Both everything upstreams (stdio
and Streamable HTTP) are exercised, through the same federated gateway.

The 2026-07-28 era has no server-to-client requests on the wire: a server asks for input with an
``input_required`` result and the client retries with the answers. server-everything speaks only
the 2025 era, so for a 2026-07-28 client the gateway has to turn the upstream's request into such a
result and the retry back into the upstream's reply. Every test here runs in both eras (the
``era`` fixture); mark with ``pytest.mark.xfail(strict=True, reason=...)`` only what the gateway
cannot do yet.
"""

from __future__ import annotations

import pytest
from mcp.shared.exceptions import MCPError

from harness.clients import LEGACY, ElicitationStub, ProgressRecorder, SamplingStub, connect, text_of
from harness.gateway import Gateway

pytestmark = pytest.mark.anyio

RELAY_UPSTREAMS = ("everything", "everything_http")


@pytest.mark.parametrize("upstream", RELAY_UPSTREAMS)
async def test_sampling_round_trip(federation: Gateway, era: str, upstream: str) -> None:
    answer = f"SAMPLED-{upstream}-b7c1"
    sampling = SamplingStub(answer)
    async with connect(federation.mcp_url, era, sampling_callback=sampling) as c:
        result = await c.call_tool(
            f"{upstream}__trigger-sampling-request",
            {"prompt": "Name a colour.", "maxTokens": 20},
            read_timeout_seconds=30,
        )
    assert not result.is_error, text_of(result)
    assert answer in text_of(result), text_of(result)
    assert len(sampling.calls) == 1
    request = sampling.calls[0]
    assert request.max_tokens == 20
    assert "Name a colour." in getattr(request.messages[0].content, "text", "")


@pytest.mark.parametrize("upstream", RELAY_UPSTREAMS)
async def test_elicitation_round_trip(federation: Gateway, era: str, upstream: str) -> None:
    elicitation = ElicitationStub({"name": f"Grace Hopper via {upstream}", "check": True, "integer": 7})
    async with connect(federation.mcp_url, era, elicitation_callback=elicitation) as c:
        result = await c.call_tool(f"{upstream}__trigger-elicitation-request", {}, read_timeout_seconds=30)
    assert not result.is_error, text_of(result)
    text = text_of(result)
    assert f"- Name: Grace Hopper via {upstream}" in text, text
    assert "- Agreed to terms: true" in text
    assert "- Favorite Integer: 7" in text
    assert len(elicitation.calls) == 1
    assert elicitation.calls[0].message == "Please provide inputs for the following fields:"


@pytest.mark.parametrize("upstream", RELAY_UPSTREAMS)
async def test_progress_notifications(federation: Gateway, era: str, upstream: str) -> None:
    progress = ProgressRecorder()
    async with connect(federation.mcp_url, era) as c:
        result = await c.call_tool(
            f"{upstream}__trigger-long-running-operation",
            {"duration": 2, "steps": 4},
            progress_callback=progress,
            read_timeout_seconds=30,
        )
    assert not result.is_error, text_of(result)
    assert "Long running operation completed" in text_of(result)
    values = [p for p, _, _ in progress.events]
    assert len(values) >= 3, f"expected several progress notifications, got {progress.events}"
    assert values == sorted(set(values)), f"progress must increase: {values}"
    assert values[-1] == 4
    assert all(total == 4 for _, total, _ in progress.events)


@pytest.mark.parametrize("upstream", RELAY_UPSTREAMS)
async def test_sampling_refused_when_client_lacks_capability(federation: Gateway, upstream: str) -> None:
    """A client that declared no sampling capability is never sent a sampling request: the call
    ends promptly as an error instead of hanging (the tool may also be absent from its list)."""
    async with connect(federation.mcp_url, LEGACY) as c:
        try:
            result = await c.call_tool(
                f"{upstream}__trigger-sampling-request", {"prompt": "x"}, read_timeout_seconds=30
            )
        except MCPError:
            return
    assert result.is_error, text_of(result)

"""The official Python SDK client (``mcp`` 2.3.0) in both protocol eras.

- ``Client(url, mode="legacy")``: the 2025-era ``initialize`` handshake and an ``Mcp-Session-Id``.
- ``Client(url, mode="2026-07-28")``: the stateless 2026-07-28 era; every request carries the
  envelope in ``params._meta`` and the ``MCP-Protocol-Version`` / ``Mcp-Method`` / ``Mcp-Name``
  headers; no handshake, no probe.

Server-to-client requests reach callbacks given to ``Client(...)``: ``sampling_callback(ctx,
params)``, ``elicitation_callback(ctx, params)``. Progress reaches the ``progress_callback(progress,
total, message)`` of one ``call_tool``. In the 2026-07-28 era sampling and elicitation arrive as an
``input_required`` result that ``Client.call_tool`` answers with the same callbacks and retries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
from mcp import Client
from mcp.client.session import ClientRequestContext

LEGACY = "legacy"
MODERN = "2026-07-28"
ERAS = (LEGACY, MODERN)
LEGACY_VERSION = "2025-11-25"

# Upper bound on pages when walking a paginated list: a cursor loop must not hang a test.
MAX_PAGES = 100


def connect(url: str, era: str, **kwargs: Any) -> Client:
    """A client for ``era`` (``"legacy"`` or ``"2026-07-28"``); use it as ``async with``.

    The response cache is off so every list call reaches the gateway.
    """
    kwargs.setdefault("read_timeout_seconds", 60)
    return Client(url, mode=era, cache=None, **kwargs)


def text_of(result: types.CallToolResult | types.GetPromptResult) -> str:
    """All text content of a tool result or prompt, joined by newlines."""
    if isinstance(result, types.GetPromptResult):
        blocks = [m.content for m in result.messages]
    else:
        blocks = list(result.content)
    return "\n".join(b.text for b in blocks if isinstance(b, types.TextContent))


async def all_pages(fetch: Callable[[str | None], Awaitable[Any]], items: str) -> tuple[list[Any], int]:
    """Follows ``nextCursor`` until the end; returns (all items, number of pages)."""
    out: list[Any] = []
    cursor: str | None = None
    for page_no in range(1, MAX_PAGES + 1):
        page = await fetch(cursor)
        out.extend(getattr(page, items))
        cursor = page.next_cursor
        if not cursor:
            return out, page_no
    raise AssertionError(f"{items}: still a nextCursor after {MAX_PAGES} pages")


async def all_tools(client: Client) -> list[types.Tool]:
    return (await all_pages(lambda c: client.list_tools(cursor=c), "tools"))[0]


async def all_resources(client: Client) -> list[types.Resource]:
    return (await all_pages(lambda c: client.list_resources(cursor=c), "resources"))[0]


async def all_resource_templates(client: Client) -> list[types.ResourceTemplate]:
    return (await all_pages(lambda c: client.list_resource_templates(cursor=c), "resource_templates"))[0]


async def all_prompts(client: Client) -> list[types.Prompt]:
    return (await all_pages(lambda c: client.list_prompts(cursor=c), "prompts"))[0]


@dataclass
class Outcome:
    """What the gateway answered: a result, or a JSON-RPC error (code, message)."""

    result: Any = None
    code: int | None = None
    message: str = ""

    def describe(self) -> str:
        return f"error {self.code}: {self.message}" if self.code is not None else f"result {self.result!r:.300}"


@dataclass
class SamplingStub:
    """A sampling callback that answers every request with ``answer`` and records the requests."""

    answer: str
    calls: list[types.CreateMessageRequestParams] = field(default_factory=list)

    async def __call__(
        self, context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        self.calls.append(params)
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=self.answer),
            model="portcullis-e2e-model",
            stop_reason="endTurn",
        )


@dataclass
class ElicitationStub:
    """An elicitation callback that accepts with ``content`` and records the requests."""

    content: dict[str, Any]
    calls: list[types.ElicitRequestParams] = field(default_factory=list)

    async def __call__(self, context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.calls.append(params)
        return types.ElicitResult(action="accept", content=self.content)


@dataclass
class ProgressRecorder:
    """A progress callback that records ``(progress, total, message)``."""

    events: list[tuple[float, float | None, str | None]] = field(default_factory=list)

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.events.append((progress, total, message))

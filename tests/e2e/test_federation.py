"""One gateway in front of three upstreams, in both protocol eras.

Upstreams: ``everything`` (server-everything, stdio), ``everything_http`` (server-everything,
Streamable HTTP) and ``fs`` (server-filesystem, stdio). The gateway exposes each item as
``<upstream>__<name>``; resource URIs become ``<upstream>__<uri>``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPError

from harness.clients import (
    all_pages,
    all_prompts,
    all_resource_templates,
    all_resources,
    all_tools,
    connect,
    text_of,
)
from harness.gateway import Gateway
from harness.upstreams import FS_FILES

pytestmark = pytest.mark.anyio

UPSTREAMS = ("everything", "everything_http", "fs")
PREFIXES = tuple(f"{u}__" for u in UPSTREAMS)
EVERYTHING_TOOLS = ("echo", "get-sum", "trigger-long-running-operation")
FS_TOOLS = ("read_text_file", "write_file", "list_directory", "list_allowed_directories")
STATIC_DOC = "demo://resource/static/document/architecture.md"


async def test_tools_are_namespaced(federation: Gateway, era: str) -> None:
    async with connect(federation.mcp_url, era) as c:
        names = [t.name for t in await all_tools(c)]
    expected = {f"{u}__{t}" for u in ("everything", "everything_http") for t in EVERYTHING_TOOLS}
    expected |= {f"fs__{t}" for t in FS_TOOLS}
    assert expected <= set(names), f"missing: {sorted(expected - set(names))}"
    unprefixed = [n for n in names if not n.startswith(PREFIXES)]
    assert not unprefixed, f"tools without an upstream prefix: {unprefixed}"


async def test_echo_on_both_everything_upstreams(federation: Gateway, era: str) -> None:
    async with connect(federation.mcp_url, era) as c:
        for upstream in ("everything", "everything_http"):
            message = f"hello via {upstream} ({era})"
            result = await c.call_tool(f"{upstream}__echo", {"message": message})
            assert not result.is_error, text_of(result)
            assert text_of(result) == f"Echo: {message}"
        result = await c.call_tool("everything__get-sum", {"a": 2, "b": 40})
        assert "42" in text_of(result)


async def test_read_file_via_fs(federation: Gateway, fs_root: Path, era: str) -> None:
    async with connect(federation.mcp_url, era) as c:
        result = await c.call_tool("fs__read_text_file", {"path": str(fs_root / "hello.txt")})
        assert not result.is_error, text_of(result)
        assert text_of(result) == FS_FILES["hello.txt"]

        listing = await c.call_tool("fs__list_directory", {"path": str(fs_root)})
        assert "hello.txt" in text_of(listing)
        assert "notes" in text_of(listing)


async def test_resources_are_namespaced(federation: Gateway, era: str) -> None:
    async with connect(federation.mcp_url, era) as c:
        resources = await all_resources(c)
        uris = [r.uri for r in resources]
        for upstream in ("everything", "everything_http"):
            assert f"{upstream}__{STATIC_DOC}" in uris, uris
        unprefixed = [u for u in uris if not u.startswith(PREFIXES)]
        assert not unprefixed, f"resource URIs without an upstream prefix: {unprefixed}"

        for upstream in ("everything", "everything_http"):
            uri = f"{upstream}__{STATIC_DOC}"
            read = await c.read_resource(uri)
            assert len(read.contents) == 1
            content = read.contents[0]
            assert content.uri == uri
            assert "Architecture" in getattr(content, "text", "")


async def test_resource_templates_are_namespaced(federation: Gateway, era: str) -> None:
    async with connect(federation.mcp_url, era) as c:
        templates = [t.uri_template for t in await all_resource_templates(c)]
        assert "everything__demo://resource/dynamic/text/{resourceId}" in templates, templates
        assert all(t.startswith(PREFIXES) for t in templates), templates

        uri = "everything_http__demo://resource/dynamic/text/7"
        read = await c.read_resource(uri)
        assert read.contents[0].uri == uri
        assert "Resource 7" in getattr(read.contents[0], "text", "")


async def test_prompts_are_namespaced(federation: Gateway, era: str) -> None:
    async with connect(federation.mcp_url, era) as c:
        prompts = {p.name: p for p in await all_prompts(c)}
        for upstream in ("everything", "everything_http"):
            assert f"{upstream}__simple-prompt" in prompts, sorted(prompts)
            assert f"{upstream}__args-prompt" in prompts, sorted(prompts)
        assert all(n.startswith(PREFIXES) for n in prompts), sorted(prompts)
        assert {a.name for a in prompts["everything__args-prompt"].arguments or []} == {"city", "state"}

        simple = await c.get_prompt("everything__simple-prompt")
        assert text_of(simple) == "This is a simple prompt without arguments."
        args = await c.get_prompt("everything_http__args-prompt", {"city": "Lisbon", "state": "Lisboa"})
        assert text_of(args) == "What's weather in Lisbon, Lisboa?"


async def test_pagination_has_no_duplicates(federation: Gateway, era: str) -> None:
    async with connect(federation.mcp_url, era) as c:
        tools, _ = await all_pages(lambda cur: c.list_tools(cursor=cur), "tools")
        resources, _ = await all_pages(lambda cur: c.list_resources(cursor=cur), "resources")
        prompts, _ = await all_pages(lambda cur: c.list_prompts(cursor=cur), "prompts")
    for kind, keys in (
        ("tools", [t.name for t in tools]),
        ("resources", [r.uri for r in resources]),
        ("prompts", [p.name for p in prompts]),
    ):
        dupes = [k for k, n in Counter(keys).items() if n > 1]
        assert not dupes, f"{kind} listed more than once across pages: {dupes}"
    # Every upstream contributes to the tool list, whatever the page size.
    for prefix in PREFIXES:
        assert any(t.name.startswith(prefix) for t in tools), f"no tools from {prefix}"


async def test_unrouted_tool_names_are_errors(federation: Gateway, era: str) -> None:
    """A name that is not ``<upstream>__<tool>`` of a listed tool never reaches an upstream."""
    async with connect(federation.mcp_url, era) as c:
        for name in ("echo", "nosuch__echo", "everything__nosuch", "everything___echo", "__echo", "EVERYTHING__echo"):
            try:
                result = await c.call_tool(name, {"message": "x"})
            except MCPError:
                continue
            assert result.is_error, f"{name!r} was routed: {text_of(result)!r}"
            assert "Echo: x" not in text_of(result), f"{name!r} reached an upstream"

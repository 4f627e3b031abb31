"""A stdio MCP server whose tools are whatever a JSON file says, read again on every request.

``python scripted_server.py TOOLS.json [CALLS.jsonl]``. The file holds a JSON array of tool definitions as MCP
sends them (``name``, ``description``, ``inputSchema``, ``annotations``, …); an optional
``"reply"`` string per tool is what a call returns (default: the call's name and arguments as
JSON text). Because the file is read on every ``tools/list`` and ``tools/call``, a test changes a
tool's definition under a running gateway by rewriting the file (a "rug pull"), or starts the
server with a poisoned description. With ``CALLS.jsonl`` every call that reaches the server is
appended there (``{"tool", "arguments"}`` per line): what the gateway let through.

Built on the official SDK's low-level ``Server`` (``mcp`` 2.3.0), so both protocol eras work.
Used by ``test_guard.py`` (pinning, poisoning) and ``test_authz.py`` (corpus tools no npm server
offers). :func:`spec` makes it a gateway upstream.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


def read_tools(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text())


def write_tools(path: Path, tools: list[dict[str, Any]]) -> None:
    """Replaces the definitions atomically (a reader never sees half a file)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(tools, indent=1))
    tmp.replace(path)


def tool(
    name: str,
    description: str,
    properties: dict[str, Any] | None = None,
    *,
    annotations: dict[str, Any] | None = None,
    reply: str | None = None,
) -> dict[str, Any]:
    """One definition: an object schema over ``properties`` (no argument required)."""
    out: dict[str, Any] = {
        "name": name,
        "description": description,
        "inputSchema": {"type": "object", "properties": properties or {}},
    }
    if annotations is not None:
        out["annotations"] = annotations
    if reply is not None:
        out["reply"] = reply
    return out


def spec(name: str, tools_file: Path, calls_log: Path | None = None) -> Any:
    """This server as a stdio upstream named ``name`` serving ``tools_file`` (and recording calls
    in ``calls_log``), sandboxed to read only the interpreter, this file and those two."""
    from .upstreams import UpstreamSpec

    reads = {str(Path(sys.prefix)), str(Path(sys.base_prefix)), str(HERE.parent), str(tools_file.parent)}
    command = [sys.executable, "-I", str(HERE), str(tools_file)]
    sandbox: dict[str, Any] = {"memory": "1GiB"}
    if calls_log is not None:
        command.append(str(calls_log))
        reads.add(str(calls_log.parent))
        sandbox["fs_write"] = [str(calls_log.parent)]
    sandbox["fs_read"] = sorted(reads)
    return UpstreamSpec(name=name, command=command, sandbox=sandbox)


def recorded_calls(calls_log: Path) -> list[dict[str, Any]]:
    """The calls the server received (empty when none)."""
    if not calls_log.is_file():
        return []
    return [json.loads(line) for line in calls_log.read_text().splitlines() if line.strip()]


def main() -> None:
    import anyio
    import mcp_types as types
    from mcp.server.lowlevel.server import Server
    from mcp.server.stdio import stdio_server

    tools_file = Path(sys.argv[1])
    calls_log = Path(sys.argv[2]) if len(sys.argv) > 2 else None

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        defs = [{k: v for k, v in t.items() if k != "reply"} for t in read_tools(tools_file)]
        return types.ListToolsResult(tools=[types.Tool.model_validate(d) for d in defs])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        defs = {t["name"]: t for t in read_tools(tools_file)}
        args = params.arguments or {}
        if calls_log is not None:
            with open(calls_log, "a") as f:
                f.write(json.dumps({"tool": params.name, "arguments": args}) + "\n")
        if params.name not in defs:
            return types.CallToolResult(content=[types.TextContent(text=f"no tool {params.name}")], is_error=True)
        text = defs[params.name].get("reply") or json.dumps({"tool": params.name, "arguments": args}, sort_keys=True)
        return types.CallToolResult(content=[types.TextContent(text=text)])

    server: Server[Any] = Server("scripted", version="1.0.0", on_list_tools=list_tools, on_call_tool=call_tool)

    async def run() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(run)


if __name__ == "__main__":
    main()

"""The reference MCP servers from npm, as gateway upstreams.

- ``@modelcontextprotocol/server-everything``: ``node dist/index.js stdio`` or
  ``node dist/index.js streamableHttp`` (port from the ``PORT`` variable, endpoint ``/mcp``,
  listening on every interface). Its sampling and elicitation tools exist only for a client that
  declared those capabilities at ``initialize``.
- ``@modelcontextprotocol/server-filesystem``: ``node dist/index.js DIR...`` over stdio; it has
  tools only (no resources, no prompts). If its client declares ``roots`` it replaces the allowed
  directories with the client's roots.

Both are run with ``node`` on the installed file, never ``npx``, so no test touches the network.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator
from typing import Any

from . import paths
from .procs import Process, free_port, wait_http


@dataclass(frozen=True)
class UpstreamSpec:
    """One ``[[upstream]]`` table of the gateway config."""

    name: str
    command: list[str] | None = None
    url: str | None = None
    sandbox: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # ``[[upstream.tool]]`` tables (operator rules per tool: ``name``, ``read_only``, ``args``, …).
    tools: list[dict[str, Any]] = field(default_factory=list)


# Node's V8 reserves far more address space than it uses: under a 1 GiB RLIMIT_AS, Node 20 dies
# of "JavaScript heap out of memory" at ~30 MB of heap (checked on this machine; 2 GiB works).
NODE_MEMORY = "4GiB"


def everything_stdio(name: str = "everything") -> UpstreamSpec:
    """server-everything, started by the gateway as a stdio child."""
    return UpstreamSpec(
        name=name,
        command=[paths.node_binary(), str(paths.EVERYTHING_ENTRY), "stdio"],
        # The interpreter's runtime is always readable; the package tree is named here.
        sandbox={"fs_read": [str(paths.NODE_MODULES)], "memory": NODE_MEMORY},
    )


def filesystem_stdio(root: Path, name: str = "fs") -> UpstreamSpec:
    """server-filesystem confined to ``root``, started by the gateway as a stdio child."""
    root = root.resolve()
    return UpstreamSpec(
        name=name,
        command=[paths.node_binary(), str(paths.FILESYSTEM_ENTRY), str(root)],
        sandbox={"fs_read": [str(paths.NODE_MODULES), str(root)], "fs_write": [str(root)], "memory": NODE_MEMORY},
    )


# Files every filesystem upstream starts with: relative path -> content.
FS_FILES: dict[str, str] = {
    "hello.txt": "Hello from the Portcullis end-to-end suite.\n",
    "notes/todo.md": "# To do\n\n- write tests\n- make them pass\n",
    "data.json": '{"answer": 42}\n',
}


def populate_fs_root(root: Path) -> Path:
    """Creates ``root`` with :data:`FS_FILES`; returns its resolved path."""
    for rel, content in FS_FILES.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    return root.resolve()


class EverythingHttp:
    """server-everything in Streamable HTTP mode, on a port chosen at run time."""

    def __init__(self, logdir: Path, label: str = "everything-http") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        env = {**os.environ, "PORT": str(self.port)}
        self.proc = Process(
            label, [paths.node_binary(), str(paths.EVERYTHING_ENTRY), "streamableHttp"], logdir, env=env
        )
        # A GET without a session is answered 400: any HTTP answer means it is listening.
        wait_http(self.url, proc=self.proc, timeout=30, ok=None)

    def spec(self, name: str = "everything_http") -> UpstreamSpec:
        return UpstreamSpec(name=name, url=self.url)

    def stop(self) -> None:
        # The server closes its sessions on SIGINT; SIGTERM would do too (no handler: exit 143).
        self.proc.stop(signal.SIGINT, timeout=5)

    def __enter__(self) -> EverythingHttp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def demo_stdio(binary: Path, root: Path, name: str = "demo") -> UpstreamSpec:
    """The bundled example server (``portcullis demo-upstream --root DIR``, crates/demo-upstream)
    as a stdio upstream: tools echo, add, list_files, read_file, write_file, fetch_url, slow,
    ask_name; prompt summarize; the files under ``root`` as resources. ``root`` is created."""
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    return UpstreamSpec(
        name=name,
        command=[str(binary), "demo-upstream", "--root", str(root)],
        sandbox={"fs_read": [str(root)], "fs_write": [str(root)]},
    )


@contextlib.contextmanager
def demo_http(binary: Path, root: Path, logs: Path) -> Iterator[str]:
    """``portcullis demo-upstream --http`` serving ``root`` (created) on a free port, until the
    block ends; yields its base URL (the MCP endpoint is ``/mcp``)."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = Process("demo-upstream-http", [binary, "demo-upstream", "--http", f"127.0.0.1:{port}", "--root", root], logs)
    try:
        wait_http(f"http://127.0.0.1:{port}/mcp", proc=proc, timeout=30, ok=None)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()

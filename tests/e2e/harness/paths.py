"""Where things are: the repository, the npm reference servers, the gateway binary."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

E2E_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = E2E_DIR.parent.parent
NODE_MODULES = E2E_DIR / "node_modules"
ARTIFACTS_DIR = E2E_DIR / ".artifacts"

EVERYTHING_ENTRY = NODE_MODULES / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
FILESYSTEM_ENTRY = NODE_MODULES / "@modelcontextprotocol" / "server-filesystem" / "dist" / "index.js"


def portcullis_binary() -> Path:
    """The gateway binary: ``$PORTCULLIS_BIN``, else ``<target>/debug/portcullis``.

    ``<target>`` honours ``CARGO_TARGET_DIR`` (relative values are relative to the repository).
    """
    override = os.environ.get("PORTCULLIS_BIN")
    if override:
        return Path(override).resolve()
    target = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
    if not target.is_absolute():
        target = REPO_ROOT / target
    return target / "debug" / "portcullis"


def node_binary() -> str:
    """Absolute path of ``node``: upstream commands are spawned by the gateway with a clean env."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH; the reference MCP servers need Node.js")
    return node

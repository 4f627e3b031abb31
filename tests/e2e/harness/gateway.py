"""The gateway under test: config file (DESIGN §3.3) and the ``portcullis run`` process."""

from __future__ import annotations

import json
import re
import signal
import time
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from .procs import Process, free_port, wait_http
from .upstreams import UpstreamSpec

# Authentication arrives later: every test listener lets credential-less requests in.
# Authorization is on (no policy = every call denied), so the tests ship one permissive policy.
ALLOW_ALL_POLICY = '@id("e2e-allow-all")\npermit(principal, action, resource);\n'

# Allowed browser origin on test listeners; any other Origin must get 403.
TEST_ORIGIN = "http://localhost:3000"

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_value(value: Any) -> str:
    """A TOML literal for a str, bool, int, float, list or (inline) dict."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        # JSON string escapes (\" \\ \n \uXXXX) are valid TOML basic-string escapes.
        return json.dumps(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def render_config(
    port: int,
    upstreams: Sequence[UpstreamSpec],
    *,
    allowed_origins: Sequence[str] = (TEST_ORIGIN,),
    storage_url: str = "sqlite://portcullis.db",
    limits: dict[str, Any] | None = None,
    allow_anonymous: bool = True,
    auth: dict[str, Any] | None = None,
    policies: Sequence[str | Path] = ("policies/*.cedar",),
    extra: str = "",
) -> str:
    """The text of a gateway config for a test (every key is from DESIGN §3.3).

    ``allow_anonymous=False`` leaves out ``dangerous_allow_anonymous``; ``auth`` adds keys to the
    ``[auth]`` table (its sub-tables, ``[[auth.jwt]]`` and the like, go in ``extra``).
    ``policies``: ``[authz] policies`` (default: the permissive policy the harness writes beside
    the config; a test with its own policy set names its files here instead)."""
    limits = {
        "max_request_bytes": "1MiB",
        "max_response_bytes": "10MiB",
        "max_json_depth": 64,
        "call_timeout": "30s",
        **(limits or {}),
    }
    lines = [
        "# Written by tests/e2e/harness/gateway.py for one test.",
        "[listen]",
        f"addr = {toml_value(f'127.0.0.1:{port}')}",
        f"allowed_origins = {toml_value(list(allowed_origins))}",
        "",
        "[storage]",
        f"url = {toml_value(storage_url)}",
        "",
        "[limits]",
        *(f"{k} = {toml_value(v)}" for k, v in limits.items()),
        "",
        "[auth]",
        *(["dangerous_allow_anonymous = true"] if allow_anonymous else []),
        *(f"{toml_key(k)} = {toml_value(v)}" for k, v in (auth or {}).items()),
        "",
        "[authz]",
        f"policies = {toml_value([str(p) for p in policies])}",
    ]
    for up in upstreams:
        lines += ["", "[[upstream]]", f"name = {toml_value(up.name)}"]
        if up.command is not None:
            lines.append(f"command = {toml_value(up.command)}")
        if up.url is not None:
            lines.append(f"url = {toml_value(up.url)}")
        lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in up.extra.items()]
        if up.sandbox:
            lines += ["[upstream.sandbox]", *(f"{toml_key(k)} = {toml_value(v)}" for k, v in up.sandbox.items())]
        for rule in up.tools:
            lines += ["[[upstream.tool]]", *(f"{toml_key(k)} = {toml_value(v)}" for k, v in rule.items())]
    text = "\n".join(lines) + "\n" + (extra.strip() + "\n" if extra.strip() else "")
    tomllib.loads(text)  # the harness never hands the gateway a file that is not TOML
    return text


def write_config(workdir: Path, text: str, name: str = "portcullis.toml") -> Path:
    """Writes the config and the permissive policy beside it; returns the config's path."""
    workdir.mkdir(parents=True, exist_ok=True)
    policies = workdir / "policies"
    policies.mkdir(exist_ok=True)
    (policies / "allow-all.cedar").write_text(ALLOW_ALL_POLICY)
    path = workdir / name
    path.write_text(text)
    return path


class Gateway:
    """``portcullis run --config FILE --log-format json`` in ``workdir``."""

    def __init__(self, binary: Path, workdir: Path, config_text: str, port: int) -> None:
        if not binary.is_file():
            raise AssertionError(
                f"gateway binary not found: {binary}\n"
                "build it with `cargo build --workspace --bins` or set PORTCULLIS_BIN"
            )
        self.binary = binary
        self.workdir = workdir
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.mcp_url = f"{self.base_url}/mcp"
        self.config_path = write_config(workdir, config_text)
        self.proc = Process(
            "portcullis",
            [binary, "run", "--config", self.config_path, "--log-format", "json"],
            workdir / "logs",
            cwd=workdir,
        )
        self.exit_code: int | None = None

    def wait_healthy(self, timeout: float = 60) -> None:
        wait_http(f"{self.base_url}/healthz", proc=self.proc, timeout=timeout)

    def wait_ready(self, timeout: float = 30) -> bool:
        """Waits for ``/readyz`` 200 (upstreams connected); False if it never comes (not fatal here)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.alive():
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        return False

    def logs(self) -> str:
        return self.proc.logs()

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM, then the exit code (None: still running after ``timeout`` and killed)."""
        if self.exit_code is None:
            self.exit_code = self.proc.stop(signal.SIGTERM, timeout=timeout)
        return self.exit_code

    def stop_and_check(self, timeout: float = 10) -> None:
        code = self.stop(timeout)
        assert code == 0, f"gateway did not exit 0 within {timeout:.0f}s of SIGTERM (got {code})\n{self.logs()}"


@contextmanager
def running_gateway(
    binary: Path,
    workdir: Path,
    upstreams: Sequence[UpstreamSpec],
    *,
    wait_ready: bool = True,
    port: int | None = None,
    **config: Any,
) -> Iterator[Gateway]:
    """Starts a gateway, waits for ``/healthz`` (and ``/readyz`` if upstreams are configured),
    yields it, then stops it with SIGTERM and asserts a clean exit 0 within 10 s.

    ``port``: listen there (a test that must name its URL in the config picks it first with
    :func:`free_port`); default a free port chosen here."""
    if port is None:
        port = free_port()
    gw = Gateway(binary, workdir, render_config(port, upstreams, **config), port)
    try:
        gw.wait_healthy()
        if wait_ready and upstreams:
            gw.wait_ready()
    except BaseException:
        gw.stop()
        raise
    try:
        yield gw
    except BaseException:
        gw.stop()  # the body already failed; its error is the one to report
        raise
    gw.stop_and_check()

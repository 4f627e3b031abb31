"""Fixtures for the Portcullis end-to-end suite.

Every test gets its own temp directory (``tmp_path``) and ports chosen at run time. The gateway
is the real binary (``target/debug/portcullis`` or ``$PORTCULLIS_BIN``) in front of real MCP
servers from npm, driven by the official Python SDK client or by raw HTTP.

Fixtures:
- ``portcullis_bin``: path of the gateway binary.
- ``fs_root``: a temp directory with a few files (``harness.upstreams.FS_FILES``).
- ``everything_http``: server-everything over Streamable HTTP (``.url``, ``.spec()``).
- ``start_gateway``: factory ``start_gateway(upstreams, **config) -> Gateway``; each is stopped
  with SIGTERM at teardown and must exit 0 within 10 s.
- ``federation``: one gateway fronting ``everything`` (stdio), ``everything_http`` (Streamable
  HTTP) and ``fs`` (stdio, on ``fs_root``).
- ``era``: ``"legacy"`` and ``"2026-07-28"`` (parametrized).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from harness import paths, procs
from harness.clients import ERAS
from harness.gateway import Gateway, running_gateway
from harness.upstreams import EverythingHttp, UpstreamSpec, everything_stdio, filesystem_stdio, populate_fs_root


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def portcullis_bin() -> Path:
    binary = paths.portcullis_binary()
    if not binary.is_file():
        pytest.fail(f"gateway binary not found: {binary} (run `cargo build --workspace --bins` or set PORTCULLIS_BIN)")
    return binary


@pytest.fixture(scope="session", autouse=True)
def _peers_installed() -> None:
    for entry in (paths.EVERYTHING_ENTRY, paths.FILESYSTEM_ENTRY):
        if not entry.is_file():
            pytest.fail(f"{entry} is missing: run scripts/setup-test-deps")


@pytest.fixture(params=ERAS)
def era(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def fs_root(tmp_path: Path) -> Path:
    return populate_fs_root(tmp_path / "fs-root")


@pytest.fixture
def everything_http(tmp_path: Path) -> Iterator[EverythingHttp]:
    with EverythingHttp(tmp_path / "logs") as server:
        yield server


@pytest.fixture
def start_gateway(portcullis_bin: Path, tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """Factory: ``start_gateway(upstreams, **config)``; config keywords go to ``render_config``."""
    with ExitStack() as stack:
        count = 0

        def start(upstreams: list[UpstreamSpec], **config: Any) -> Gateway:
            nonlocal count
            count += 1
            workdir = tmp_path / ("gateway" if count == 1 else f"gateway-{count}")
            return stack.enter_context(running_gateway(portcullis_bin, workdir, upstreams, **config))

        yield start


@pytest.fixture
def federation(start_gateway: Callable[..., Gateway], fs_root: Path, everything_http: EverythingHttp) -> Gateway:
    return start_gateway([everything_stdio(), everything_http.spec(), filesystem_stdio(fs_root)])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On failure, attach the logs of every process the harness still runs (gateway, upstreams)
    to the report, and keep a copy under tests/e2e/.artifacts/ for CI."""
    report = yield
    if report.failed and procs.ACTIVE:
        text = "\n\n".join(p.logs() for p in procs.ACTIVE)
        report.sections.append((f"harness processes ({report.when})", text))
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in item.nodeid)[-150:]
        try:
            paths.ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
            (paths.ARTIFACTS_DIR / f"{safe}.{report.when}.log").write_text(text)
        except OSError:
            pass
    return report


def pytest_sessionstart(session: pytest.Session) -> None:
    # Fresh artifacts per run; the directory is git-ignored.
    if paths.ARTIFACTS_DIR.is_dir() and not os.environ.get("PORTCULLIS_E2E_KEEP_ARTIFACTS"):
        for child in paths.ARTIFACTS_DIR.glob("*.log"):
            child.unlink(missing_ok=True)


CONFORMANCE_FIXTURE = paths.REPO_ROOT.parent / "shared" / "tools" / "conformance" / "conformance_fixture.py"


@pytest.fixture(scope="module")
def conformance_fixture_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The conformant fixture upstream of ``shared/tools/conformance`` (Python ``mcp`` SDK,
    Streamable HTTP, both revisions, the tasks extension) on a free port."""
    if not CONFORMANCE_FIXTURE.exists():
        pytest.fail(f"{CONFORMANCE_FIXTURE} is missing: keep ../shared beside the clone")
    port = procs.free_port()
    logs = tmp_path_factory.mktemp("conformance-fixture")
    python = paths.E2E_DIR / ".venv" / "bin" / "python"
    proc = procs.Process("conformance-fixture", [python, CONFORMANCE_FIXTURE, "http", "--port", str(port)], logs)
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        procs.wait_http(url, proc=proc, timeout=60, ok=None)
        yield url
    finally:
        proc.stop()

"""Child processes: start, wait for an HTTP endpoint, stop; free ports; log tails."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

# Every process a fixture starts registers here while it runs, so a failing test can show
# their logs (see conftest.pytest_runtest_makereport).
ACTIVE: list[Process] = []


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, max_bytes: int = 20_000) -> str:
    """The last ``max_bytes`` of a log file (decoded leniently), or a note that it is missing."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return f"<{path} does not exist>"
    if len(data) > max_bytes:
        data = b"...[truncated]...\n" + data[-max_bytes:]
    return data.decode("utf-8", errors="replace")


class Process:
    """A child process whose stdout and stderr go to files in ``logdir``.

    Files instead of pipes: a chatty child can never block on a full pipe, and the logs survive
    for the failure report. Each child leads its own process group so leftovers can be reaped.
    """

    def __init__(
        self,
        label: str,
        argv: Sequence[str],
        logdir: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.label = label
        self.argv = [str(a) for a in argv]
        logdir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = logdir / f"{label}.stdout.log"
        self.stderr_path = logdir / f"{label}.stderr.log"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        ACTIVE.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def logs(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\n"
            f"--- {self.label} stderr ---\n{tail(self.stderr_path)}\n"
            f"--- {self.label} stdout ---\n{tail(self.stdout_path)}"
        )

    def send_signal(self, sig: int) -> None:
        if self.alive():
            self.popen.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Sends ``sig`` and waits; returns the exit code, or None when it had to be killed."""
        code: int | None
        try:
            self.send_signal(sig)
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            self.reap_group()
            if self in ACTIVE:
                ACTIVE.remove(self)
        return code

    def reap_group(self) -> None:
        """Kills whatever is left in this child's process group (itself included)."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def wait_http(
    url: str,
    *,
    proc: Process | None,
    timeout: float,
    ok: Sequence[int] | None = (200,),
) -> httpx.Response:
    """Polls ``GET url`` until it answers with a status in ``ok`` (any status when ``ok`` is None).

    Fails at once, with the process's logs, if ``proc`` exits first.
    """
    deadline = time.monotonic() + timeout
    last: str = "no answer yet"
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise AssertionError(
                f"{proc.label} exited with {proc.popen.returncode} before {url} was ready\n{proc.logs()}"
            )
        try:
            resp = httpx.get(url, timeout=2.0)
            if ok is None or resp.status_code in ok:
                return resp
            last = f"HTTP {resp.status_code}: {resp.text[:200]}"
        except httpx.HTTPError as e:
            last = f"{type(e).__name__}: {e}"
        time.sleep(0.1)
    logs = proc.logs() if proc is not None else ""
    raise AssertionError(f"{url} not ready within {timeout:.0f}s (last: {last})\n{logs}")

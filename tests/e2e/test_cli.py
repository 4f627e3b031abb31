"""The ``portcullis`` command line: ``check``, ``run`` exit codes, signals, log format."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.gateway import Gateway, render_config, write_config
from harness.procs import free_port
from harness.upstreams import EverythingHttp, everything_stdio, filesystem_stdio


def run_cli(binary: Path, *args: str | Path, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), *map(str, args)],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def good_config(workdir: Path, fs_root: Path) -> Path:
    text = render_config(free_port(), [everything_stdio(), filesystem_stdio(fs_root)])
    return write_config(workdir, text)


def test_check_good_config_exits_0(portcullis_bin: Path, tmp_path: Path, fs_root: Path) -> None:
    config = good_config(tmp_path / "good", fs_root)
    done = run_cli(portcullis_bin, "check", "--config", config, cwd=tmp_path)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"


def test_global_config_flag_before_subcommand(portcullis_bin: Path, tmp_path: Path, fs_root: Path) -> None:
    config = good_config(tmp_path / "good", fs_root)
    done = run_cli(portcullis_bin, "--config", config, "check", cwd=tmp_path)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"


# Defect -> the key its error must name.
BAD_CONFIGS = {
    "unknown-top-level-table": "bogus_section",
    "unknown-key-in-listen": "bogus_listen_key",
    "bad-size": "max_request_bytes",
    "bad-duration": "call_timeout",
}


def bad_config_text(*defects: str) -> str:
    """A good config with the given defects (see ``BAD_CONFIGS``)."""
    text = render_config(free_port(), [everything_stdio()])
    for defect in defects:
        before = text
        if defect == "unknown-top-level-table":
            text += "[bogus_section]\nenabled = true\n"
        elif defect == "unknown-key-in-listen":
            text = text.replace("[listen]\n", "[listen]\nbogus_listen_key = 1\n", 1)
        elif defect == "bad-size":
            text = text.replace('max_request_bytes = "1MiB"', 'max_request_bytes = "lots"', 1)
        elif defect == "bad-duration":
            text = text.replace('call_timeout = "30s"', 'call_timeout = "soon"', 1)
        assert text != before, f"defect {defect!r} did not apply"
    return text


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_check_bad_config_exits_2_and_names_the_key(portcullis_bin: Path, tmp_path: Path, case: str) -> None:
    config = write_config(tmp_path / "bad", bad_config_text(case), name="bad.toml")
    done = run_cli(portcullis_bin, "check", "--config", config, cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 2, f"exit {done.returncode}\n{output}"
    key = BAD_CONFIGS[case]
    assert key in output, f"the error must name {key!r}:\n{output}"
    assert "bad.toml" in output, f"the error must name the file:\n{output}"


@pytest.mark.parametrize(
    "defects",
    [
        pytest.param(("bad-size", "bad-duration"), id="two-bad-values"),
        pytest.param(("bad-size", "unknown-key-in-listen"), id="unknown-key-and-bad-value"),
    ],
)
def test_check_prints_every_error(portcullis_bin: Path, tmp_path: Path, defects: tuple[str, ...]) -> None:
    """DESIGN §3.1: ``check`` prints every error, not just the first."""
    text = bad_config_text(*defects)
    config = write_config(tmp_path / "bad", text, name="bad.toml")
    done = run_cli(portcullis_bin, "check", "--config", config, cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    for defect in defects:
        assert BAD_CONFIGS[defect] in output, f"{BAD_CONFIGS[defect]!r} not reported:\n{output}"


def test_check_missing_file_exits_2(portcullis_bin: Path, tmp_path: Path) -> None:
    done = run_cli(portcullis_bin, "check", "--config", tmp_path / "absent.toml", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "absent.toml" in done.stdout + done.stderr


def test_check_loads_tls_files_and_audit_keys(portcullis_bin: Path, tmp_path: Path) -> None:
    """Files that exist but cannot be used (a PEM without a certificate, a short key) are
    configuration errors too, reported by `check` before `run` would fail."""
    (tmp_path / "cert.pem").write_text("not a certificate\n")
    (tmp_path / "key.pem").write_text("not a key\n")
    (tmp_path / "portcullis.toml").write_text(
        '[listen]\naddr = "127.0.0.1:9"\n[listen.tls]\ncert = "cert.pem"\nkey = "key.pem"\n'
        '[audit]\nencryption_key = "file:short.key"\n'
    )
    (tmp_path / "short.key").write_text("abcd\n")
    done = run_cli(portcullis_bin, "check", "--config", tmp_path / "portcullis.toml", cwd=tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "listen.tls" in out and "no certificate" in out, out
    assert "audit.encryption_key" in out and "need exactly 32" in out, out


def test_run_bad_config_exits_2(portcullis_bin: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "bad", bad_config_text("unknown-key-in-listen"), name="bad.toml")
    done = run_cli(portcullis_bin, "run", "--config", config, "--log-format", "json", cwd=tmp_path, timeout=30)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "bogus_listen_key" in done.stdout + done.stderr


def _processes_mentioning(needle: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline:
            pids.append(int(entry.name))
    return pids


def test_sigterm_exits_0_and_stops_upstreams(
    start_gateway: Callable[..., Gateway], fs_root: Path, everything_http: EverythingHttp
) -> None:
    gw = start_gateway([everything_stdio(), everything_http.spec(), filesystem_stdio(fs_root)])
    deadline = time.monotonic() + 15
    while not _processes_mentioning(str(fs_root)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_mentioning(str(fs_root)), "the fs upstream should be running while the gateway is"
    gw.stop_and_check(timeout=10)
    deadline = time.monotonic() + 5
    while _processes_mentioning(str(fs_root)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _processes_mentioning(str(fs_root)), "stdio upstreams must be gone after the gateway exits"


def test_log_format_json(start_gateway: Callable[..., Gateway], everything_http: EverythingHttp) -> None:
    """With ``--log-format json`` every line the gateway writes is one JSON object."""
    gw = start_gateway([everything_http.spec()])
    gw.stop_and_check()
    lines = [
        line
        for path in (gw.proc.stdout_path, gw.proc.stderr_path)
        for line in path.read_text(errors="replace").splitlines()
        if line.strip()
    ]
    assert lines, "the gateway logged nothing at all"
    for line in lines:
        try:
            assert isinstance(json.loads(line), dict)
        except (json.JSONDecodeError, AssertionError):
            pytest.fail(f"not a JSON object log line: {line!r}\n{gw.logs()}")


def test_workers_flag_sets_the_runtime_threads(portcullis_bin: Path, tmp_path: Path, fs_root: Path) -> None:
    """``--workers N`` (or ``PORTCULLIS_WORKERS``) runs the gateway on N worker threads; the
    startup line says how many; 0 is refused before anything starts."""
    config = good_config(tmp_path / "good", fs_root)
    refused = run_cli(portcullis_bin, "--workers", "0", "check", "--config", config, cwd=tmp_path)
    assert refused.returncode == 2, refused
    assert "--workers" in refused.stderr, refused.stderr
    for args, env, expected in [
        # Neither is the default (one less than the cores) on a machine of 6 or 8 cores.
        (["--workers", "5"], {}, 5),
        ([], {"PORTCULLIS_WORKERS": "7"}, 7),
    ]:
        log_path = tmp_path / f"workers-{expected}.log"
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                [str(portcullis_bin), *args, "run", "--config", str(config), "--log-format", "json"],
                cwd=tmp_path,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
            )
        try:
            listening = None
            deadline = time.monotonic() + 60
            while listening is None and time.monotonic() < deadline and proc.poll() is None:
                for line in log_path.read_text(errors="replace").splitlines():
                    if "listening on /mcp" in line:
                        listening = json.loads(line)
                time.sleep(0.1)
            assert listening is not None, log_path.read_text(errors="replace")
            assert listening["workers"] == expected, listening
        finally:
            proc.terminate()
            proc.wait(timeout=30)

"""The official MCP conformance suite (npm ``@modelcontextprotocol/conformance``) through the gateway.

The upstream is the conformant fixture from ``shared/tools/conformance`` (Python ``mcp`` SDK,
Streamable HTTP, both revisions on one endpoint). The suite runs twice per requirement set:
against the fixture directly (the baseline) and against the gateway in front of it, listing
names unchanged (``prefix = ""``). Every scenario that passes directly must pass through the
gateway, except the ones in ``KNOWN_GAPS``, which must still fail (so a fix forces this list,
and docs/conformance.md, to be updated).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from harness import paths
from harness.upstreams import UpstreamSpec

SUITE_DIR = paths.REPO_ROOT / "tests" / "conformance"
SUITE_NODE = SUITE_DIR / "node_modules" / ".bin" / "node"
SUITE_ENTRY = SUITE_DIR / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"

# Scenarios the fixture passes directly that do not yet pass through the gateway, and why.
KNOWN_GAPS: dict[str, dict[str, str]] = {
    "2025-11-25": {},
    "2026-07-28": {},
}

REVISIONS = sorted(KNOWN_GAPS)


def run_suite(url: str, revision: str, out: Path) -> dict[str, bool]:
    """Runs every scenario of ``revision`` against ``url``; scenario name → passed."""
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [str(SUITE_NODE), str(SUITE_ENTRY), "server", "--url", url, "--requirements", revision, "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    (out / "suite.log").write_text(proc.stdout + proc.stderr)
    results: dict[str, bool] = {}
    for checks_file in out.glob("server-*/checks.json"):
        scenario = re.sub(r"-\d{4}-\d{2}-\d{2}T[\d-]+Z$", "", checks_file.parent.name.removeprefix("server-"))
        checks = json.loads(checks_file.read_text())
        results[scenario] = all(c.get("status") in ("SUCCESS", "INFO", "SKIPPED", "WARNING") for c in checks)
    assert results, f"the suite produced no results for {url}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return results


@pytest.mark.timeout(900)
@pytest.mark.parametrize("revision", REVISIONS)
def test_conformance_through_gateway(revision: str, conformance_fixture_url: str, start_gateway, tmp_path: Path) -> None:
    for need in (SUITE_ENTRY, SUITE_NODE):
        if not need.exists():
            pytest.fail(f"{need} is missing: run scripts/setup-test-deps")
    fixture_url = conformance_fixture_url
    baseline = run_suite(fixture_url, revision, tmp_path / "direct")
    gw = start_gateway([UpstreamSpec(name="conformance", url=fixture_url, extra={"prefix": ""})])
    through = run_suite(gw.mcp_url, revision, tmp_path / "gateway")

    table = "\n".join(f"{s:55} direct={baseline[s]!s:5} gateway={through.get(s)!s:5}" for s in sorted(baseline))
    report = paths.ARTIFACTS_DIR / f"conformance-{revision}.txt"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(table + "\n")

    gaps = KNOWN_GAPS[revision]
    regressions = [s for s, ok in baseline.items() if ok and not through.get(s, False) and s not in gaps]
    fixed = [s for s in gaps if through.get(s, False)]
    assert not regressions, f"scenarios that pass directly but fail through the gateway: {regressions}\n{table}"
    assert not fixed, f"known gaps now pass; remove them from KNOWN_GAPS and docs/conformance.md: {fixed}"
    # The baseline must be the fixture's full pass, or the comparison measures nothing.
    assert all(baseline.values()), f"the fixture itself failed scenarios: {[s for s, ok in baseline.items() if not ok]}"
    assert len(through) == len(baseline)

"""Authorization end to end (DESIGN §3.4, §3.6): Cedar policies decide every routed call and
filter every list, in the real gateway, for principals authenticated by API keys.

- The decision corpus (``tests/corpus/authz/*.json``, format in its README) replayed through the
  running gateway with the SDK client, both eras: each principal gets an API key with its roles
  (``portcullis keys create``), the set's policies are ``[authz] policies``, the rows' upstreams
  are real servers (the bundled demo upstream; the scripted SDK server for tools no real server
  offers). Allowed rows reach the upstream, denied rows are ``-31006 Forbidden: <reason>``,
  ``approval_required`` rows are refused (no approval stage yet), ``listed`` rows show (or not)
  in the principal's list, and each routed row's audit record names the deciding policy ids.
- List filtering: two principals with different roles see different tools from the same two
  federated upstreams, both eras, and what they see is what they may call.
- Hot reload: the policy file rewritten under a load of calls; every call is decided by the old
  or the new set (never a half-written one), the new set applies within 2 s, and an invalid
  edit keeps the previous set.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from harness import paths
from harness import scripted_server as scripted
from harness.access import audit_rows, create_key, gateway_logs, last_seq, session
from harness.clients import Outcome, all_prompts, all_tools
from harness.gateway import Gateway, running_gateway
from harness.rawhttp import jsonrpc_reply, modern_envelope, modern_headers
from harness.upstreams import UpstreamSpec, demo_stdio, everything_stdio

pytestmark = pytest.mark.anyio

FORBIDDEN = -31006
CORPUS_DIR = paths.REPO_ROOT / "tests" / "corpus" / "authz"
# The bundled demo upstream's tools (crates/demo-upstream); a corpus upstream offering only
# these runs as the demo upstream under the corpus's name.
DEMO_TOOLS = {"echo", "add", "list_files", "read_file", "write_file", "fetch_url"}
AUTH = {"api_keys": True, "max_failures": "1000/min"}
LIST_METHODS = {"tools/list", "resources/list", "resources/templates/list", "prompts/list"}
ROUTED_METHODS = {"tools/call", "prompts/get", "resources/read", "completion/complete"}
DEFAULT_AT = "2026-01-05T10:00:00Z"


# --- the corpus -----------------------------------------------------------------------------


def load_corpus() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(CORPUS_DIR.glob("*.json"))}


CORPUS = load_corpus()
ROWS = [(set_name, i) for set_name, data in CORPUS.items() for i in range(len(data["rows"]))]


def row_id(item: tuple[str, int]) -> str:
    set_name, i = item
    about = CORPUS[set_name]["rows"][i]["about"]
    return f"{set_name}[{i}]-" + "".join(c if c.isalnum() else "-" for c in about)[:40]


def uses_clock(set_name: str) -> bool:
    text = "".join(p.read_text() for p in (paths.REPO_ROOT / CORPUS[set_name]["policies"]).glob("*.cedar"))
    return "context.hour" in text or "context.weekday" in text


def time_class(t: datetime) -> tuple[bool, bool]:
    """What the office-hours set can tell apart about a time (UTC): weekend (weekday >= 6), and
    a weekday between 09:00 and 17:00. Two times in one class get the same decisions."""
    weekday = t.isoweekday()
    return weekday >= 6, weekday <= 5 and 9 <= t.hour < 17


def skip_reason(set_name: str, row: dict[str, Any], era: str) -> str | None:
    """Why a row cannot be replayed through a real gateway now (None: it can)."""
    p = row["principal"]
    if p.get("client_ip", "127.0.0.1") not in ("127.0.0.1", "::1"):
        return f"needs client address {p['client_ip']}; the suite reaches the gateway from 127.0.0.1 only"
    if p.get("scopes"):
        return "needs token scopes; API keys carry none"
    if p.get("auth_method", "api_key") != "api_key":
        return f"needs auth_method {p['auth_method']}"
    if row.get("protocol_version", "2026-07-28") != "2026-07-28" and era != "legacy":
        return "pins a protocol version another era sends"
    if row["method"] == "resources/subscribe" and era != "legacy":
        return "resources/subscribe exists only in 2025-era sessions (replayed in the legacy era)"
    if uses_clock(set_name):
        at = datetime.fromisoformat(row.get("at", DEFAULT_AT).replace("Z", "+00:00"))
        now = datetime.now(UTC)
        if time_class(at) != time_class(now):
            return f"depends on the clock: row at {at:%a %H:%M} UTC, now {now:%a %H:%M} UTC (its clock cannot be set)"
    return None


@dataclass
class CorpusGateway:
    gw: Gateway
    keys: dict[tuple[str, str, tuple[str, ...]], str] = field(default_factory=dict)

    def key(self, principal: dict[str, Any]) -> str:
        ident = (principal["id"], principal.get("kind", "user"), tuple(principal.get("roles", [])))
        if ident not in self.keys:
            self.keys[ident] = create_key(self.gw, ident[0], ident[2], kind=ident[1])
        return self.keys[ident]


def corpus_upstreams(binary: Path, workdir: Path, data: dict[str, Any]) -> list[UpstreamSpec]:
    """Real servers offering the rows' upstreams and tools, with the corpus's read_only overrides."""
    specs = []
    for up in data["upstreams"]:
        overrides = [{"name": tool, "read_only": d["read_only"]} for tool, d in up["tools"].items() if "read_only" in d]
        if set(up["tools"]) <= DEMO_TOOLS:
            root = workdir / f"{up['name']}-root"
            root.mkdir(parents=True, exist_ok=True)
            (root / "hello.txt").write_text("Hello from the authz corpus.\n")
            spec = demo_stdio(binary, root, name=up["name"])
        else:
            # No real server offers these tools: the scripted SDK server serves them with the
            # corpus's annotations (any arguments accepted; a call answers with its arguments).
            tools_file = workdir / f"{up['name']}-tools" / "tools.json"
            tools_file.parent.mkdir(parents=True, exist_ok=True)
            scripted.write_tools(
                tools_file,
                [
                    {**scripted.tool(name, f"The {name} tool of the corpus."), "annotations": d.get("annotations", {})}
                    for name, d in up["tools"].items()
                ],
            )
            spec = scripted.spec(up["name"], tools_file)
        specs.append(UpstreamSpec(**{**spec.__dict__, "tools": overrides}))
    return specs


@pytest.fixture(scope="module")
def corpus_gateways(
    portcullis_bin: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], CorpusGateway]]:
    """Factory: one gateway per corpus file, started on first use and shared by its rows."""
    started: dict[str, CorpusGateway] = {}
    with ExitStack() as stack:

        def get(set_name: str) -> CorpusGateway:
            if set_name not in started:
                data = CORPUS[set_name]
                workdir = tmp_path_factory.mktemp(f"corpus-{set_name}")
                policies = [str(paths.REPO_ROOT / data["policies"] / "*.cedar")]
                gw = stack.enter_context(
                    running_gateway(
                        portcullis_bin,
                        workdir / "gateway",
                        corpus_upstreams(portcullis_bin, workdir, data),
                        allow_anonymous=False,
                        auth=AUTH,
                        policies=policies,
                    )
                )
                started[set_name] = CorpusGateway(gw)
            return started[set_name]

        yield get


async def send_row(client: Any, row: dict[str, Any]) -> Outcome:
    method, name, args = row["method"], row.get("name"), row.get("args")
    try:
        if method == "tools/call":
            result = await client.call_tool(name, args or {})
        elif method == "resources/read":
            result = await client.read_resource(name)
        elif method == "prompts/get":
            result = await client.get_prompt(name, args)
        elif method == "completion/complete":
            ref: Any = types.ResourceTemplateReference(uri=name) if "://" in name else types.PromptReference(name=name)
            result = await client.complete(ref, argument=args or {})
        elif method == "resources/subscribe":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = await client.subscribe_resource(name)
        elif method == "tools/list":
            result = await all_tools(client)
        else:
            raise AssertionError(f"the replay does not know method {method}")
    except MCPError as e:
        return Outcome(code=e.code, message=e.error.message)
    return Outcome(result=result)


def assert_decision(label: str, row: dict[str, Any], out: Outcome) -> None:
    decision = row["decision"]
    if row["method"] in LIST_METHODS:
        # A list is never refused: an upstream the caller may not list shows nothing.
        assert out.code is None, f"{label}: list refused: {out.describe()}"
        prefix = f"{row['upstream']}__"
        shown = [t.name for t in out.result if t.name.startswith(prefix)]
        if decision == "allow":
            assert shown, f"{label}: allowed to list {row['upstream']} but nothing of it shows"
        else:
            assert not shown, f"{label}: not allowed to list {row['upstream']} but sees {shown}"
        return
    if decision == "allow":
        # Allowed: the call reached the upstream (which may still fail, e.g. no such resource).
        assert out.code not in (FORBIDDEN, -31008, -31001), f"{label}: expected allow, got {out.describe()}"
        if row["method"] == "tools/call":
            assert out.code is None, f"{label}: an allowed tool call returns the tool's result: {out.describe()}"
        return
    assert out.code == FORBIDDEN, f"{label}: expected {decision} (-31006), got {out.describe()}"
    assert out.message.startswith("Forbidden:"), out.message
    if decision == "approval_required":
        assert "approval" in out.message, f"{label}: the refusal says approval is what is missing: {out.message}"
    elif row.get("reason"):
        assert out.message == f"Forbidden: {row['reason']}", f"{label}: public reason"


@pytest.mark.parametrize("item", ROWS, ids=[row_id(r) for r in ROWS])
async def test_corpus_row(corpus_gateways: Callable[[str], CorpusGateway], item: tuple[str, int], era: str) -> None:
    set_name, i = item
    row = CORPUS[set_name]["rows"][i]
    label = f"{set_name}[{i}] {row['about']} ({era})"
    reason = skip_reason(set_name, row, era)
    if reason:
        pytest.skip(reason)
    cg = corpus_gateways(set_name)
    key = cg.key(row["principal"])
    before = last_seq(cg.gw)
    async with session(cg.gw.mcp_url, key, era) as client:
        out = await send_row(client, row)
        listed: list[str] | None = None
        if "listed" in row and row["method"] == "tools/call":
            listed = [t.name for t in await all_tools(client)]
        elif "listed" in row and row["method"] == "prompts/get":
            listed = [p.name for p in await all_prompts(client)]
    assert_decision(label, row, out)
    if listed is not None:
        assert (row["name"] in listed) == row["listed"], f"{label}: listed should be {row['listed']}: {listed}"
    if row["method"] in ROUTED_METHODS:
        records = [r for r in audit_rows(cg.gw, before) if r["method"] == row["method"]]
        assert len(records) == 1, f"{label}: one audit record per request: {records}"
        rec = records[0]
        assert rec["principal"] == row["principal"]["id"], rec
        assert sorted(rec["policy_ids"]) == sorted(row["policies"]), f"{label}: audited policy ids {rec}"
        if row["decision"] != "allow":
            assert rec["decision"] == "deny", f"{label}: audited decision {rec}"


RESOURCE_LISTED = [
    (s, i) for s, i in ROWS if "listed" in CORPUS[s]["rows"][i] and CORPUS[s]["rows"][i]["method"] == "resources/read"
]


@pytest.mark.parametrize("item", RESOURCE_LISTED, ids=[row_id(r) for r in RESOURCE_LISTED])
def test_corpus_resource_listed(item: tuple[str, int]) -> None:
    """The ``listed`` part of ``resources/read`` rows: their decision is replayed above, but the
    URIs (``file:///srv/...``) are not ones a real server in this suite lists, so whether they
    would show in ``resources/list`` cannot be observed."""
    set_name, i = item
    uri = CORPUS[set_name]["rows"][i]["name"]
    assert uri.split("__", 1)[1].startswith("file:///srv/"), f"{uri}: a served URI could be checked: replay it"
    pytest.skip(f"listed={CORPUS[set_name]['rows'][i]['listed']} for {uri}: no real upstream lists /srv URIs")


def test_corpus_rows_needing_other_credentials_are_few() -> None:
    """The rows this suite cannot replay are named, and most rows are replayed (a guard against
    the skip list silently growing)."""
    never = [
        f"{s}[{i}]"
        for s, i in ROWS
        if not (skip_reason(s, CORPUS[s]["rows"][i], "legacy") or "depends on the clock").startswith("depends on")
    ]
    # Only the office-hours rows with a non-loopback client address, whatever the time.
    assert never == ["office-hours[4]", "office-hours[5]"], never
    assert len(ROWS) >= 50


def test_corpus_upstreams_are_real_servers(portcullis_bin: Path, tmp_path: Path) -> None:
    """Every corpus upstream maps onto a real server: the demo upstream, or the scripted SDK server
    for the one tool no real server has (abac's db__query)."""
    kinds = {}
    for set_name, data in CORPUS.items():
        for spec in corpus_upstreams(portcullis_bin, tmp_path / set_name, data):
            kinds[f"{set_name}/{spec.name}"] = "demo" if "demo-upstream" in spec.command else "scripted"
    assert kinds == {
        "abac/fs": "demo",
        "abac/db": "scripted",
        "office-hours/demo": "demo",
        "rbac/demo": "demo",
    }, kinds


# --- list filtering across federated upstreams ------------------------------------------------

LIST_POLICY = """// Lists are open to all; what shows is what each caller may call.
@id("lists")
permit (
  principal,
  action in [
    Portcullis::Action::"list_tools",
    Portcullis::Action::"list_prompts",
    Portcullis::Action::"list_resources"
  ],
  resource
);

@id("admin-all")
permit (principal in Portcullis::Role::"admin", action, resource);

// alpha: the demo upstream's read-only tools, and everything's echo only for messages "ok…".
@id("alpha-demo-read-only")
permit (
  principal in Portcullis::Role::"alpha",
  action == Portcullis::Action::"call_tool",
  resource in Portcullis::Upstream::"demo"
)
when { resource.read_only };

@id("alpha-echo-ok")
permit (
  principal in Portcullis::Role::"alpha",
  action == Portcullis::Action::"call_tool",
  resource == Portcullis::Tool::"everything__echo"
)
when { context.args has message && context.args.message like "ok*" };

// beta: every tool of everything but the long-running one, and the demo's echo.
@id("beta-everything")
permit (
  principal in Portcullis::Role::"beta",
  action == Portcullis::Action::"call_tool",
  resource in Portcullis::Upstream::"everything"
);

@id("beta-demo-echo")
permit (
  principal in Portcullis::Role::"beta",
  action == Portcullis::Action::"call_tool",
  resource == Portcullis::Tool::"demo__echo"
);

@id("no-long-running")
@reason("long-running operations are for administrators")
forbid (
  principal,
  action == Portcullis::Action::"call_tool",
  resource == Portcullis::Tool::"everything__trigger-long-running-operation"
)
unless { principal in Portcullis::Role::"admin" };
"""


@pytest.fixture(scope="module")
def list_gateway(
    portcullis_bin: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Gateway, dict[str, str]]]:
    workdir = tmp_path_factory.mktemp("list-filtering")
    policy_dir = workdir / "policy"
    policy_dir.mkdir()
    (policy_dir / "lists.cedar").write_text(LIST_POLICY)
    upstreams = [demo_stdio(portcullis_bin, workdir / "demo-root"), everything_stdio()]
    (workdir / "demo-root" / "hello.txt").write_text("hello from the demo root\n")
    with running_gateway(
        portcullis_bin,
        workdir / "gateway",
        upstreams,
        allow_anonymous=False,
        auth=AUTH,
        policies=[str(policy_dir / "*.cedar")],
    ) as gw:
        keys = {
            "admin": create_key(gw, "root", ["admin"]),
            "alpha": create_key(gw, "ada", ["alpha"]),
            "beta": create_key(gw, "bob", ["beta"], kind="service"),
        }
        yield gw, keys


async def call_outcome(client: Any, name: str, args: dict[str, Any]) -> Outcome:
    try:
        return Outcome(result=await client.call_tool(name, args))
    except MCPError as e:
        return Outcome(code=e.code, message=e.error.message)


async def test_lists_differ_by_principal_and_match_calls(
    list_gateway: tuple[Gateway, dict[str, str]], era: str
) -> None:
    gw, keys = list_gateway
    async with session(gw.mcp_url, keys["admin"], era) as admin:
        everything = {t.name: t for t in await all_tools(admin)}
    assert {n.split("__")[0] for n in everything} == {"demo", "everything"}, sorted(everything)
    assert {"demo__echo", "demo__write_file", "everything__echo", "everything__get-sum"} <= set(everything)
    demo_read_only = {
        n for n, t in everything.items() if n.startswith("demo__") and t.annotations and t.annotations.read_only_hint
    }
    assert "demo__echo" in demo_read_only and "demo__write_file" not in demo_read_only
    expected = {
        "alpha": demo_read_only | {"everything__echo"},
        "beta": {n for n in everything if n.startswith("everything__")} - {"everything__trigger-long-running-operation"}
        | {"demo__echo"},
    }
    seen: dict[str, set[str]] = {}
    for who in ("alpha", "beta"):
        async with session(gw.mcp_url, keys[who], era) as client:
            seen[who] = {t.name for t in await all_tools(client)}
            assert seen[who] == expected[who], (
                f"{who} ({era}): missing {sorted(expected[who] - seen[who])}, extra {sorted(seen[who] - expected[who])}"
            )
            # What is not listed is refused before any upstream sees it.
            for name in sorted(set(everything) - seen[who]):
                out = await call_outcome(client, name, {})
                assert out.code == FORBIDDEN and out.message.startswith("Forbidden:"), f"{who} {name}: {out.describe()}"
            # What is listed can be called (arguments permitting).
            for name, args in {
                "alpha": [
                    ("demo__echo", {"message": "hi"}),
                    ("demo__read_file", {"path": "hello.txt"}),
                    ("everything__echo", {"message": "ok then"}),
                ],
                "beta": [
                    ("demo__echo", {"message": "hi"}),
                    ("everything__echo", {"message": "anything"}),
                    ("everything__get-sum", {"a": 2, "b": 40}),
                ],
            }[who]:
                out = await call_outcome(client, name, args)
                assert out.code is None and not out.result.is_error, f"{who} {name}: {out.describe()}"
            if who == "alpha":
                # Listed (an argument decides), but this argument is refused.
                out = await call_outcome(client, "everything__echo", {"message": "not ok"})
                assert out.code == FORBIDDEN, out.describe()
    assert seen["alpha"] & seen["beta"] == {"demo__echo", "everything__echo"}


# --- hot reload -------------------------------------------------------------------------------

ECHO_V1 = """@id("v1-echo")
permit (
  principal in Portcullis::Role::"ops",
  action == Portcullis::Action::"call_tool",
  resource == Portcullis::Tool::"demo__echo"
);
"""
# The new set, written in two parts: the first part alone is a valid set that denies echo by
# default (no policy id) — a gateway that loaded it would show a half-written file.
ECHO_V2_PART1 = """@id("v2-add")
permit (
  principal in Portcullis::Role::"ops",
  action == Portcullis::Action::"call_tool",
  resource == Portcullis::Tool::"demo__add"
);
"""
ECHO_V2_PART2 = """
@id("v2-echo-off")
@reason("echo is switched off in v2")
forbid (principal, action == Portcullis::Action::"call_tool", resource == Portcullis::Tool::"demo__echo");
"""
V2_REASON = "Forbidden: echo is switched off in v2"


def raw_call(gw: Gateway, key: str, name: str, args: dict[str, Any], id: int) -> dict[str, Any]:
    """One 2026-07-28 tools/call over plain HTTP; the JSON-RPC reply."""
    body = modern_envelope("tools/call", {"name": name, "arguments": args}, id=id)
    resp = httpx.post(
        gw.mcp_url, content=json.dumps(body).encode(), headers={**modern_headers(body), "x-api-key": key}, timeout=30
    )
    reply = jsonrpc_reply(resp, id)
    assert reply is not None, f"HTTP {resp.status_code}: {resp.text[:300]}"
    return reply


def echo_version(reply: dict[str, Any]) -> str:
    """Which policy set decided an echo call: "v1" (allowed), "v2" (refused with v2's reason)."""
    if "result" in reply and not reply["result"].get("isError"):
        return "v1"
    err = reply.get("error", {})
    if err.get("code") == FORBIDDEN and err.get("message") == V2_REASON:
        return "v2"
    return f"neither: {reply}"


def wait_for(gw: Gateway, key: str, version: str, timeout: float = 2.0) -> float:
    """Seconds until an echo call is decided by ``version``; fails after ``timeout``."""
    start = time.monotonic()
    n = 10_000
    while True:
        n += 1
        got = echo_version(raw_call(gw, key, "demo__echo", {"message": "probe"}, n))
        if got == version:
            return time.monotonic() - start
        assert time.monotonic() - start < timeout, f"still {got} {timeout}s after the policy file changed"
        time.sleep(0.05)


def reloading_gateway(
    portcullis_bin: Path, tmp_path: Path, workdir: Path, policies: str
) -> AbstractContextManager[Gateway]:
    """A gateway in ``workdir`` (its store there too) over the demo server, with API keys and the
    policies ``policies`` names."""
    return running_gateway(
        portcullis_bin,
        workdir,
        [demo_stdio(portcullis_bin, tmp_path / "demo-root")],
        allow_anonymous=False,
        auth=AUTH,
        policies=[policies],
    )


def test_hot_reload_under_load(portcullis_bin: Path, tmp_path: Path) -> None:
    policy_dir = tmp_path / "policy"
    policy_dir.mkdir()
    policy_file = policy_dir / "reload.cedar"
    policy_file.write_text(ECHO_V1)
    with reloading_gateway(portcullis_bin, tmp_path, tmp_path / "gateway", str(policy_dir / "*.cedar")) as gw:
        key = create_key(gw, "rita", ["ops"])
        assert echo_version(raw_call(gw, key, "demo__echo", {"message": "hi"}, 1)) == "v1"
        start_seq = last_seq(gw)

        stop = threading.Event()
        seen: dict[int, list[str]] = {}
        errors: list[str] = []

        def load(worker: int) -> None:
            seen[worker] = []
            n = worker * 100_000
            while not stop.is_set():
                n += 1
                try:
                    seen[worker].append(echo_version(raw_call(gw, key, "demo__echo", {"message": "load"}, n)))
                except Exception as e:  # noqa: BLE001 (reported below)
                    errors.append(f"worker {worker}: {type(e).__name__}: {e}")
                    return
                time.sleep(0.005)

        threads = [threading.Thread(target=load, args=(w,), daemon=True) for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        # The new set, written in place in two parts 30 ms apart (within the 150 ms debounce).
        with open(policy_file, "w") as f:
            f.write(ECHO_V2_PART1)
            f.flush()
            time.sleep(0.03)
            f.write(ECHO_V2_PART2)
        written = time.monotonic()
        time.sleep(2.5)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert not errors, errors
        for worker, versions in seen.items():
            odd = [v for v in versions if v not in ("v1", "v2")]
            assert not odd, f"worker {worker}: calls decided by neither set: {odd[:3]}"
            assert "v2" in versions, f"worker {worker}: the new set never applied: {versions[-5:]}"
            first_v2 = versions.index("v2")
            assert "v1" not in versions[first_v2:], f"worker {worker}: back to the old set after the new one"
        assert sum(len(v) for v in seen.values()) > 40, {w: len(v) for w, v in seen.items()}
        # The audit trail agrees: every echo under load was decided by one whole set.
        records = [r for r in audit_rows(gw, start_seq) if r["method"] == "tools/call"]
        assert len(records) == sum(len(v) for v in seen.values()), "one record per call"
        assert {tuple(r["policy_ids"]) for r in records} <= {("v1-echo",), ("v2-echo-off",)}, {
            tuple(r["policy_ids"]) for r in records
        }
        # Settled: the new set applies (and add, which only v2 permits, now works).
        assert wait_for(gw, key, "v2", timeout=2.0) < 2.0
        assert "result" in raw_call(gw, key, "demo__add", {"a": 1, "b": 2}, 7), "v2 permits add"
        assert time.monotonic() - written < 30

        # An invalid edit keeps the previous set.
        policy_file.write_text(ECHO_V1.replace("permit (", "permit ( principal in in"))
        time.sleep(1.0)
        for i in range(5):
            assert echo_version(raw_call(gw, key, "demo__echo", {"message": "x"}, 20 + i)) == "v2"
        assert "result" in raw_call(gw, key, "demo__add", {"a": 1, "b": 2}, 30)
        assert "policy reload failed" in gateway_logs(gw)

        # And the watcher still works: a valid edit after the invalid one applies.
        policy_file.write_text(ECHO_V1)
        assert wait_for(gw, key, "v1", timeout=2.0) < 2.0
        add = raw_call(gw, key, "demo__add", {"a": 1, "b": 2}, 40)
        assert add.get("error", {}).get("code") == FORBIDDEN, add
        # The policies have a directory of their own: it is watched, not scanned.
        assert STORE_BESIDE_POLICIES not in gateway_logs(gw)


STORE_BESIDE_POLICIES = "this policy directory also holds the SQLite store"


def test_policies_beside_the_store_are_scanned_and_still_reload(portcullis_bin: Path, tmp_path: Path) -> None:
    """Policy files in the store's directory: a watch there would be woken by every write to the
    store, so the directory is scanned instead (said once at start), and an edit still applies."""
    workdir = tmp_path / "gateway"
    workdir.mkdir()
    policy_file = workdir / "reload.cedar"
    policy_file.write_text(ECHO_V1)
    with reloading_gateway(portcullis_bin, tmp_path, workdir, str(policy_file)) as gw:
        said = [line for line in gateway_logs(gw).splitlines() if STORE_BESIDE_POLICIES in line]
        assert len(said) == 1, gateway_logs(gw)
        assert str(workdir) in said[0], said[0]
        key = create_key(gw, "rita", ["ops"])
        assert echo_version(raw_call(gw, key, "demo__echo", {"message": "hi"}, 1)) == "v1"
        policy_file.write_text(ECHO_V2_PART1 + ECHO_V2_PART2)
        assert wait_for(gw, key, "v2", timeout=5.0) < 5.0

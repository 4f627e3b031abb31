"""Authentication end to end (DESIGN §3.3 ``[auth]``, §3.6): the real gateway, no anonymous
access, in front of the bundled demo upstream.

- OAuth 2.1 resource server against a real authorization server (npm ``oidc-provider``):
  RS256 JWT access tokens through the Python SDK client, RFC 9728 metadata and the 401 challenge
  that points to it, opaque tokens by introspection, key rotation, ``insufficient_scope``.
- Forged and misdirected JWTs (signed here by an issuer the gateway trusts, or forged against
  it): wrong audience, expired, wrong issuer, ``alg: none``, HS256 keyed with the RSA public key,
  tampered payload, a stranger's key under the trusted ``kid``.
- API keys through the CLI (``keys create/list/revoke``): both headers, revocation within a
  second, never stored or logged in clear, refused in the query string.
- ``token mint`` tokens and ``/.well-known/jwks.json``.
- Per-address lockout (429 ``Retry-After``) after repeated failures.
- The client's credential never reaches an upstream (a recording proxy sees what the gateway
  sends).
- Every refusal leaves an audit record (``audit export``) naming who tried from where, never
  the credential.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from harness.access import audit_export, cli, gateway_logs, store_bytes
from harness.authserver import AuthServer, LocalIssuer, other_key_token, token_header
from harness.clients import text_of
from harness.gateway import Gateway
from harness.procs import free_port
from harness.rawhttp import jsonrpc_reply, modern_envelope, modern_headers
from harness.recorder import HeaderRecorder
from harness.upstreams import UpstreamSpec, demo_http

ECHO = "demo__echo"
# Failures allowed per address on gateways that are not testing the lockout: every test here
# sends a handful of bad credentials from 127.0.0.1 and must not be locked out by them.
GENEROUS = "1000/min"


# --- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[AuthServer]:
    with AuthServer(tmp_path / "logs") as server:
        yield server


@pytest.fixture
def local_issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as issuer:
        yield issuer


def demo_upstream(binary: Path, root: Path) -> UpstreamSpec:
    """The bundled example server (``portcullis demo-upstream``) as a stdio upstream named demo."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "hello.txt").write_text("hello\n")
    return UpstreamSpec(name="demo", command=[str(binary), "demo-upstream", "--root", str(root)])


@dataclass
class OAuthGateway:
    gw: Gateway
    resource: str
    idp: AuthServer
    local: LocalIssuer

    def jwt(self, scope: str = "mcp tools:read", resource: str | None = None) -> str:
        return self.idp.token("jwt-client", scope, resource or self.resource)

    def opaque(self, scope: str = "mcp", resource: str | None = None) -> str:
        return self.idp.token("opaque-client", scope, resource or self.resource)


def start_oauth_gateway(
    start_gateway: Callable[..., Gateway],
    portcullis_bin: Path,
    tmp_path: Path,
    idp: AuthServer,
    local: LocalIssuer,
    **auth: Any,
) -> OAuthGateway:
    """A gateway trusting ``idp`` (JWT + introspection) and ``local`` (JWT), requiring scope mcp."""
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    secret = tmp_path / "introspection-secret"
    secret.write_text("gateway-secret\n")
    extra = f"""
[[auth.jwt]]
issuer = {json.dumps(idp.issuer)}
jwks_url = {json.dumps(idp.jwks_uri)}
audience = {json.dumps(resource)}

[[auth.jwt]]
issuer = {json.dumps(local.issuer)}
jwks_url = {json.dumps(local.jwks_url)}
audience = {json.dumps(resource)}

[auth.introspection]
url = {json.dumps(idp.introspection_endpoint)}
client_id = "gateway"
client_secret = {json.dumps(f"file:{secret}")}
"""
    gw = start_gateway(
        [demo_upstream(portcullis_bin, tmp_path / "demo-root")],
        port=port,
        allow_anonymous=False,
        auth={"resource": resource, "required_scopes": ["mcp"], "max_failures": GENEROUS, **auth},
        extra=extra,
    )
    return OAuthGateway(gw, resource, idp, local)


@pytest.fixture
def oauth(
    start_gateway: Callable[..., Gateway],
    portcullis_bin: Path,
    tmp_path: Path,
    idp: AuthServer,
    local_issuer: LocalIssuer,
) -> OAuthGateway:
    return start_oauth_gateway(start_gateway, portcullis_bin, tmp_path, idp, local_issuer)


def api_key_gateway(
    start_gateway: Callable[..., Gateway], portcullis_bin: Path, tmp_path: Path, **auth: Any
) -> Gateway:
    """A gateway with API keys (and its own minted tokens) only."""
    return start_gateway(
        [demo_upstream(portcullis_bin, tmp_path / "demo-root")],
        allow_anonymous=False,
        auth={"api_keys": True, "max_failures": GENEROUS, **auth},
    )


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def call_echo(
    gw: Gateway, headers: dict[str, str] | None = None, message: str = "hi", *, url: str | None = None
) -> httpx.Response:
    """A 2026-07-28 ``tools/call`` of demo__echo with extra ``headers`` (credentials)."""
    body = modern_envelope("tools/call", {"name": ECHO, "arguments": {"message": message}})
    return httpx.post(
        url or gw.mcp_url,
        content=json.dumps(body).encode(),
        headers={**modern_headers(body), **(headers or {})},
        timeout=30,
    )


def assert_echoed(resp: httpx.Response, message: str = "hi") -> None:
    assert resp.status_code == 200, f"HTTP {resp.status_code} {resp.headers}: {resp.text[:500]}"
    reply = jsonrpc_reply(resp, 1)
    assert reply is not None and "result" in reply, f"no result: {resp.text[:500]}"
    assert reply["result"].get("isError") is not True, reply
    assert reply["result"]["content"][0]["text"] == message, reply


def assert_refused(resp: httpx.Response, status: int = 401, error: str | None = "invalid_token") -> str:
    """The refusal's status, its JSON-RPC error body, and its challenge; returns the challenge."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text[:500]}"
    reply = jsonrpc_reply(resp)
    assert reply is not None and "error" in reply and "result" not in reply, resp.text[:500]
    challenge = resp.headers.get("www-authenticate", "")
    if status in (401, 403):
        assert challenge.startswith("Bearer"), f"WWW-Authenticate: {challenge!r}"
        if error is not None:
            assert f'error="{error}"' in challenge, f"WWW-Authenticate: {challenge!r}"
    return challenge


def unknown_key(n: int = 0) -> str:
    """A well-formed API key (``pk_live_<16 hex>_<64 hex>``) that nobody created."""
    return f"pk_live_{n:016x}_{'ab' * 32}"


def create_key(gw: Gateway, principal: str = "alice", *roles: str, expires: str = "1h") -> tuple[str, str]:
    args = ["keys", "create", "--principal", principal, "--expires", expires]
    for role in roles:
        args += ["--role", role]
    lines = cli(gw, *args).stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("id: ") and lines[1].startswith("key: pk_"), lines
    return lines[0].removeprefix("id: "), lines[1].removeprefix("key: ")


# --- OAuth: a real authorization server ------------------------------------------------------

pytestmark = pytest.mark.anyio


async def test_jwt_from_real_authorization_server_through_the_sdk(oauth: OAuthGateway, era: str) -> None:
    token = oauth.jwt()
    assert token.count(".") == 2 and token_header(token)["alg"] == "RS256"
    async with httpx2.AsyncClient(headers=bearer(token), timeout=httpx2.Timeout(30, read=60)) as http:
        transport = streamable_http_client(oauth.gw.mcp_url, http_client=http)
        async with Client(transport, mode=era, cache=None, read_timeout_seconds=60) as client:
            tools = await client.list_tools()
            assert ECHO in {t.name for t in tools.tools}
            result = await client.call_tool(ECHO, {"message": f"through the SDK ({era})"})
            assert isinstance(result, types.CallToolResult) and not result.is_error
            assert text_of(result) == f"through the SDK ({era})"
    records = [r for r in audit_export(oauth.gw) if r.get("method") == "tools/call" and r.get("decision") == "allow"]
    assert records, "the allowed call is audited"
    assert records[-1]["principal"] == "jwt-client" and records[-1]["auth_method"] == "jwt", records[-1]
    assert token not in json.dumps(records)


async def test_without_credentials_401_points_to_metadata(oauth: OAuthGateway) -> None:
    resp = call_echo(oauth.gw)
    challenge = assert_refused(resp, 401, error=None)
    assert "error=" not in challenge, f"no error code when nothing was presented (RFC 6750 §3.1): {challenge}"
    metadata_url = f"{oauth.gw.base_url}/.well-known/oauth-protected-resource/mcp"
    assert f'resource_metadata="{metadata_url}"' in challenge, challenge
    assert 'scope="mcp"' in challenge, challenge
    # The legacy-era stream and session end are guarded the same way.
    for method in ("GET", "DELETE"):
        resp = httpx.request(
            method, oauth.gw.mcp_url, headers={"accept": "text/event-stream", "mcp-session-id": "x"}, timeout=10
        )
        assert resp.status_code == 401, f"{method} /mcp without credentials: HTTP {resp.status_code}"
        assert f'resource_metadata="{metadata_url}"' in resp.headers.get("www-authenticate", ""), resp.headers
    # Each of the three refusals (POST, GET, DELETE) left its record.
    denies = [r for r in audit_export(oauth.gw) if r.get("decision") == "deny" and r.get("status") == 401]
    assert len(denies) == 3, denies
    assert all(r.get("client_ip") == "127.0.0.1" and not r.get("principal") for r in denies), denies

    for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
        meta = httpx.get(f"{oauth.gw.base_url}{path}", timeout=10)
        assert meta.status_code == 200, f"{path}: {meta.status_code} {meta.text}"
        assert meta.headers["content-type"].startswith("application/json")
        doc = meta.json()
        assert doc["resource"] == oauth.resource, doc
        assert oauth.idp.issuer in doc["authorization_servers"], doc
        assert "header" in doc.get("bearer_methods_supported", ["header"]), doc
        assert "query" not in doc.get("bearer_methods_supported", []), doc
        assert "mcp" in doc.get("scopes_supported", ["mcp"]), doc


async def test_forged_and_misdirected_jwts_are_refused(oauth: OAuthGateway) -> None:
    local = oauth.local
    aud = oauth.resource
    now = int(time.time())
    # Sanity: the local issuer's honest token is accepted, so each refusal below is its flaw's.
    assert_echoed(call_echo(oauth.gw, bearer(local.sign(local.claims(aud, sub="honest-local")))))

    trusted_kid_stranger = other_key_token(local.claims(aud, sub="mallory-stranger-key"), local.kid)
    rows: list[tuple[str, str, str]] = [
        ("wrong audience (real server)", oauth.jwt(resource="https://other.example/mcp"), "invalid_token"),
        (
            "wrong audience",
            local.sign(local.claims("https://other.example/mcp", sub="mallory-audience")),
            "invalid_token",
        ),
        (
            "expired",
            local.sign(local.claims(aud, sub="mallory-expired", iat=now - 7200, exp=now - 3600)),
            "invalid_token",
        ),
        (
            "untrusted issuer",
            local.sign(local.claims(aud, sub="mallory-issuer", iss="https://evil.example")),
            "invalid_token",
        ),
        (
            "trusted issuer named, signed by another",
            local.sign(local.claims(aud, sub="mallory-claims-idp", iss=oauth.idp.issuer)),
            "invalid_token",
        ),
        ("alg none", local.alg_none(local.claims(aud, sub="mallory-none")), "invalid_token"),
        (
            "HS256 keyed with the RSA public key",
            local.hs256_with_public_key(local.claims(aud, sub="mallory-hs256")),
            "invalid_token",
        ),
        (
            "tampered payload",
            local.tampered(local.claims(aud, sub="mallory-tamper"), sub="admin", scope="mcp admin"),
            "invalid_token",
        ),
        ("stranger's key under the trusted kid", trusted_kid_stranger, "invalid_token"),
        ("not yet valid", local.sign(local.claims(aud, sub="mallory-nbf", nbf=now + 3600)), "invalid_token"),
        ("no exp", local.sign(local.claims(aud, sub="mallory-noexp", exp=None)), "invalid_token"),
        ("ID token typ", local.sign(local.claims(aud, sub="mallory-typ"), typ="id_token+jwt"), "invalid_token"),
    ]
    failures = []
    for name, token, error in rows:
        resp = call_echo(oauth.gw, bearer(token))
        if resp.status_code != 401 or f'error="{error}"' not in resp.headers.get("www-authenticate", ""):
            failures.append(
                f"{name}: HTTP {resp.status_code} {resp.headers.get('www-authenticate')!r} {resp.text[:200]}"
            )
    assert not failures, "accepted or mis-answered:\n" + "\n".join(failures)

    # The gateway still serves honest callers, and nothing above was locked out.
    assert_echoed(call_echo(oauth.gw, bearer(oauth.jwt())))

    records = audit_export(oauth.gw)
    text = json.dumps(records)
    for name, token, _ in rows:
        signature = token.split(".")[-1]
        assert token not in text, f"{name}: the refused token is in the audit trail"
        assert not signature or signature not in text, f"{name}: the token's signature is in the audit trail"
    denies = [r for r in records if r.get("decision") == "deny"]
    assert len(denies) >= len(rows), f"{len(denies)} deny records for {len(rows)} refusals"
    for r in denies:
        assert r.get("client_ip") == "127.0.0.1", r
        assert r.get("status") == 401, r
    # A refused token's record names the subject it claimed (unverified, but who tried).
    principals = {r.get("principal") for r in denies}
    for who in ("jwt-client", "mallory-audience", "mallory-expired", "mallory-issuer", "admin"):
        assert who in principals, f"no deny record names {who}: {sorted(map(str, principals))}"


async def test_jwks_rotation(oauth: OAuthGateway) -> None:
    before = oauth.jwt()
    assert_echoed(call_echo(oauth.gw, bearer(before)))
    old_kid = token_header(before)["kid"]
    new_kid = oauth.idp.rotate()
    assert new_kid != old_kid
    time.sleep(2.5)  # past the JWKS cache's minimum refetch interval (2 s)
    after = oauth.jwt()
    assert token_header(after)["kid"] == new_kid
    assert_echoed(call_echo(oauth.gw, bearer(after)), "hi")
    # The issuer dropped the old key from its JWKS: once the gateway has refetched, tokens
    # signed with it are no longer accepted (crates/authn jwks.rs: dropped keys disappear with
    # the next successful fetch).
    assert_refused(call_echo(oauth.gw, bearer(before)), 401, "invalid_token")


async def test_opaque_tokens_by_introspection(oauth: OAuthGateway) -> None:
    token = oauth.opaque()
    assert "." not in token, "an opaque token"
    assert_echoed(call_echo(oauth.gw, bearer(token), "opaque"), "opaque")
    assert_refused(call_echo(oauth.gw, bearer("not-issued-by-anyone-" + "x" * 20)), 401, "invalid_token")
    assert_refused(
        call_echo(oauth.gw, bearer(oauth.opaque(resource="https://other.example/mcp"))), 401, "invalid_token"
    )
    records = [r for r in audit_export(oauth.gw) if r.get("decision") == "allow" and r.get("method") == "tools/call"]
    assert records and records[-1]["principal"] == "opaque-client", records
    assert records[-1]["auth_method"] == "introspection", records[-1]


async def test_missing_required_scope_is_403(oauth: OAuthGateway) -> None:
    for token in (oauth.jwt(scope="tools:read"), oauth.opaque(scope="tools:read")):
        challenge = assert_refused(call_echo(oauth.gw, bearer(token)), 403, "insufficient_scope")
        assert 'scope="mcp"' in challenge, challenge
    denies = [r for r in audit_export(oauth.gw) if r.get("decision") == "deny" and r.get("status") == 403]
    assert {r.get("principal") for r in denies} >= {"jwt-client", "opaque-client"}, denies


# --- API keys through the CLI ----------------------------------------------------------------


async def test_api_key_lifecycle(start_gateway: Callable[..., Gateway], portcullis_bin: Path, tmp_path: Path) -> None:
    gw = api_key_gateway(start_gateway, portcullis_bin, tmp_path)
    key_id, key = create_key(gw, "alice", "dev", expires="1h")
    secret = key.rsplit("_", 1)[-1]
    assert key.startswith(f"pk_live_{key_id}_") and len(secret) >= 16, key

    assert_echoed(call_echo(gw, {"x-api-key": key}, "by header"), "by header")
    assert_echoed(call_echo(gw, bearer(key), "by bearer"), "by bearer")

    listed = json.loads(cli(gw, "keys", "list", "--format", "json").stdout)
    row = next(r for r in listed if r["id"] == key_id)
    assert row["principal"] == "alice" and row["roles"] == ["dev"] and row["status"] == "active", row
    assert row["expires"], row
    table = cli(gw, "keys", "list").stdout
    assert key_id in table and "alice" in table
    for shown in (json.dumps(listed), table):
        assert secret not in shown and key not in shown

    # Credentials in the URL are refused, even a valid key, even next to a valid header.
    for query in (f"api_key={key}", f"access_token={key}"):
        resp = call_echo(gw, url=f"{gw.mcp_url}?{query}")
        assert resp.status_code in (400, 401), f"?{query.split('=')[0]}: HTTP {resp.status_code}"
        resp = call_echo(gw, {"x-api-key": key}, url=f"{gw.mcp_url}?{query}")
        assert resp.status_code in (400, 401), f"?{query.split('=')[0]} with a valid header: HTTP {resp.status_code}"

    cli(gw, "keys", "revoke", key_id)
    revoked_at = time.monotonic()
    while True:
        resp = call_echo(gw, {"x-api-key": key})
        if resp.status_code == 401:
            break
        assert time.monotonic() - revoked_at < 1.0, f"revoked key still accepted after 1 s: HTTP {resp.status_code}"
        time.sleep(0.05)
    assert_refused(resp, 401, "invalid_token")
    assert_refused(call_echo(gw, bearer(key)), 401, "invalid_token")
    listed = json.loads(cli(gw, "keys", "list", "--format", "json").stdout)
    assert next(r for r in listed if r["id"] == key_id)["status"] == "revoked"

    # Only an HMAC is stored; neither the store nor the log ever holds the key.
    stored = store_bytes(gw)
    assert key_id.encode() in stored, "the scan reads the store"
    assert secret.encode() not in stored and key.encode() not in stored, "the API key is in the store in clear"
    logs = gateway_logs(gw)
    assert "alice" in logs or key_id in logs or "127.0.0.1" in logs, "the scan reads the gateway log"
    assert secret not in logs, "the API key is in the gateway log"

    # Every refusal is audited: who (the key's principal or id), from where; never the key.
    records = audit_export(gw)
    text = json.dumps(records)
    assert secret not in text
    denies = [r for r in records if r.get("decision") == "deny"]
    revoked = [r for r in denies if r.get("status") == 401]
    assert revoked, denies
    assert all(r.get("client_ip") == "127.0.0.1" for r in denies), denies
    assert any(r.get("principal") == "alice" for r in revoked), revoked
    allowed = [r for r in records if r.get("decision") == "allow" and r.get("method") == "tools/call"]
    assert len(allowed) >= 2 and all(r["principal"] == "alice" for r in allowed), allowed
    assert {r.get("auth_method") for r in allowed} == {"api_key"}, allowed


async def test_unknown_and_malformed_keys(
    start_gateway: Callable[..., Gateway], portcullis_bin: Path, tmp_path: Path
) -> None:
    gw = api_key_gateway(start_gateway, portcullis_bin, tmp_path)
    key_id, key = create_key(gw, "bob")
    wrong_secret = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")
    assert_refused(call_echo(gw, {"x-api-key": wrong_secret}), 401, "invalid_token")
    assert_refused(call_echo(gw, {"x-api-key": unknown_key()}), 401, "invalid_token")
    # Not even the form of a key: a malformed request (RFC 6750 invalid_request).
    assert_refused(call_echo(gw, {"x-api-key": "pk_live_nothex_" + "x" * 32}), 400, "invalid_request")
    # Two credentials at once are ambiguous.
    resp = call_echo(gw, {"x-api-key": key, "authorization": f"Bearer {key}"})
    assert resp.status_code in (400, 401), resp.status_code
    assert_echoed(call_echo(gw, {"x-api-key": key}))
    # An expired key is refused like a revoked one.
    _, short = create_key(gw, "bob", expires="1s")
    time.sleep(2.1)
    challenge = assert_refused(call_echo(gw, {"x-api-key": short}), 401, "invalid_token")
    assert "expired" in challenge, challenge
    denies = [r for r in audit_export(gw) if r.get("decision") == "deny"]
    assert any(r.get("principal") == "bob" or key_id in json.dumps(r) for r in denies), denies
    assert wrong_secret.rsplit("_", 1)[-1] not in json.dumps(denies)


# --- the gateway's own tokens ----------------------------------------------------------------


async def test_token_mint_and_jwks(start_gateway: Callable[..., Gateway], portcullis_bin: Path, tmp_path: Path) -> None:
    gw = api_key_gateway(start_gateway, portcullis_bin, tmp_path)
    resource = gw.mcp_url
    token = cli(
        gw, "token", "mint", "--principal", "ci-bot", "--scope", "tools:call", "--ttl", "15m", "--audience", resource
    ).stdout.strip()
    assert token.count(".") == 2 and "\n" not in token, "the token alone on stdout"
    header = token_header(token)
    assert header["alg"] == "EdDSA" and header["typ"].lower() in ("at+jwt", "application/at+jwt"), header

    assert_echoed(call_echo(gw, bearer(token), "minted"), "minted")

    jwks = httpx.get(f"{gw.base_url}/.well-known/jwks.json", timeout=10)
    assert jwks.status_code == 200, jwks.text
    keys = jwks.json()["keys"]
    assert header["kid"] in {k.get("kid") for k in keys}, f"kid {header['kid']} not in {keys}"
    for k in keys:
        assert "d" not in k, "a private key component is published"

    # Same key, other audience: refused.
    other = cli(
        gw,
        "token",
        "mint",
        "--principal",
        "ci-bot",
        "--scope",
        "tools:call",
        "--ttl",
        "15m",
        "--audience",
        "https://other.example/mcp",
    ).stdout.strip()
    assert_refused(call_echo(gw, bearer(other)), 401, "invalid_token")

    records = audit_export(gw)
    allowed = [r for r in records if r.get("decision") == "allow" and r.get("method") == "tools/call"]
    assert allowed and allowed[-1]["principal"] == "ci-bot", allowed
    assert token not in json.dumps(records) and other not in json.dumps(records)


# --- brute force -----------------------------------------------------------------------------


async def test_repeated_failures_lock_the_address_out(
    start_gateway: Callable[..., Gateway], portcullis_bin: Path, tmp_path: Path
) -> None:
    gw = api_key_gateway(start_gateway, portcullis_bin, tmp_path, max_failures="3/min")
    _, key = create_key(gw, "carol")
    assert_echoed(call_echo(gw, {"x-api-key": key}))
    # Asking without credentials is how clients discover auth: it never counts as a failure.
    for _ in range(8):
        assert_refused(call_echo(gw), 401, error=None)
    assert_echoed(call_echo(gw, {"x-api-key": key}))
    statuses = []
    for i in range(10):
        resp = call_echo(gw, {"x-api-key": unknown_key(i)})
        statuses.append(resp.status_code)
        if resp.status_code == 429:
            break
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    assert len(statuses) <= 5, f"locked out only after {len(statuses) - 1} failures with max_failures 3/min"
    retry_after = resp.headers.get("retry-after")
    assert retry_after is not None and retry_after.isdigit() and 1 <= int(retry_after) <= 60, resp.headers
    assert_refused(resp, 429)
    # While locked out even a good key is refused: the address is, before any credential check.
    locked = call_echo(gw, {"x-api-key": key})
    assert locked.status_code == 429 and "retry-after" in locked.headers, locked.status_code
    records = audit_export(gw)
    limited = [r for r in records if r.get("status") == 429]
    assert limited and all(r.get("decision") == "deny" and r.get("client_ip") == "127.0.0.1" for r in limited), limited
    assert key.rsplit("_", 1)[-1] not in json.dumps(records)


# --- nothing of the client's credential goes upstream ----------------------------------------


@pytest.fixture
def recorded_demo_http(portcullis_bin: Path, tmp_path: Path) -> Iterator[HeaderRecorder]:
    """``portcullis demo-upstream --http`` behind a recording proxy."""
    with (
        demo_http(portcullis_bin, tmp_path / "http-root", tmp_path / "logs") as base_url,
        HeaderRecorder(base_url) as recorder,
    ):
        yield recorder


async def test_client_credentials_never_reach_the_upstream(
    start_gateway: Callable[..., Gateway],
    portcullis_bin: Path,
    tmp_path: Path,
    recorded_demo_http: HeaderRecorder,
) -> None:
    upstream_token = "gateway-own-upstream-token-0123456789"
    secret_file = tmp_path / "upstream-token"
    secret_file.write_text(upstream_token + "\n")
    spec = UpstreamSpec(
        name="remote",
        url=f"{recorded_demo_http.base_url}/mcp",
        extra={"auth": {"bearer": f"file:{secret_file}"}},
    )
    gw = start_gateway([spec], allow_anonymous=False, auth={"api_keys": True, "max_failures": GENEROUS})
    _, key = create_key(gw, "dave")
    minted = cli(gw, "token", "mint", "--principal", "ci-bot", "--scope", "tools:call", "--ttl", "15m").stdout.strip()
    before = len(recorded_demo_http.snapshot())
    for headers, message in (
        ({"x-api-key": key}, "via x-api-key"),
        (bearer(key), "via bearer key"),
        (bearer(minted), "via minted"),
    ):
        body = modern_envelope("tools/call", {"name": "remote__echo", "arguments": {"message": message}})
        resp = httpx.post(
            gw.mcp_url, content=json.dumps(body).encode(), headers={**modern_headers(body), **headers}, timeout=30
        )
        assert resp.status_code == 200, resp.text
        reply = jsonrpc_reply(resp, 1)
        assert reply is not None and reply["result"]["content"][0]["text"] == message, reply

    seen = recorded_demo_http.snapshot()[before:]
    calls = [r for r in seen if b"tools/call" in r.body]
    assert len(calls) >= 3, f"the calls did not pass the recorder: {[(r.method, r.body[:80]) for r in seen]}"
    secret = key.rsplit("_", 1)[-1]
    for r in recorded_demo_http.snapshot():
        dump = json.dumps(r.headers) + r.body.decode(errors="replace")
        assert secret not in dump, f"the client's API key reached the upstream: {r.headers}"
        assert minted not in dump and minted.split(".")[-1] not in dump, (
            f"the client's token reached the upstream: {r.headers}"
        )
        assert not r.header_values("x-api-key"), r.headers
        assert r.header_values("authorization") in ([], [f"Bearer {upstream_token}"]), r.headers
    for r in calls:
        # The upstream's own credential, configured for it, is what it gets.
        assert r.header_values("authorization") == [f"Bearer {upstream_token}"], r.headers


async def test_upstream_token_comes_from_the_gateways_own_client_credentials_grant(
    start_gateway: Callable[..., Gateway],
    idp: AuthServer,
    tmp_path: Path,
    recorded_demo_http: HeaderRecorder,
) -> None:
    secret_file = tmp_path / "upstream-client-secret"
    secret_file.write_text("gateway-secret\n")
    upstream_url = f"{recorded_demo_http.base_url}/mcp"
    spec = UpstreamSpec(
        name="remote",
        url=upstream_url,
        extra={
            "auth": {
                "client_credentials": {
                    "token_url": idp.token_endpoint,
                    "client_id": "gateway",
                    "client_secret": f"file:{secret_file}",
                    "scope": "mcp",
                }
            }
        },
    )
    gw = start_gateway([spec], allow_anonymous=False, auth={"api_keys": True, "max_failures": GENEROUS})
    _, key = create_key(gw, "erin")
    body = modern_envelope("tools/call", {"name": "remote__echo", "arguments": {"message": "via grant"}})
    resp = httpx.post(
        gw.mcp_url, content=json.dumps(body).encode(), headers={**modern_headers(body), "x-api-key": key}, timeout=30
    )
    assert resp.status_code == 200, resp.text
    reply = jsonrpc_reply(resp, 1)
    assert reply is not None and reply["result"]["content"][0]["text"] == "via grant", reply

    calls = [r for r in recorded_demo_http.snapshot() if b"tools/call" in r.body]
    assert calls, "the call did not pass the recorder"
    tokens = set()
    for r in recorded_demo_http.snapshot():
        (value,) = r.header_values("authorization")
        scheme, _, token = value.partition(" ")
        assert scheme == "Bearer" and key not in value, r.headers
        tokens.add(token)
    # One token, cached across requests, issued by the authorization server to the gateway for
    # this upstream (RFC 8707 resource = the upstream's URL).
    assert len(tokens) == 1, f"expected one cached token, saw {len(tokens)}"
    claims = json.loads(base64.urlsafe_b64decode(tokens.pop().split(".")[1] + "=="))
    assert claims["iss"] == idp.issuer and claims["client_id"] == "gateway", claims
    assert claims["aud"] == upstream_url or upstream_url in claims["aud"], claims
    assert "gateway-secret" not in gw.logs()


async def test_the_request_id_reaches_the_upstream_and_the_audit_record(
    start_gateway: Callable[..., Gateway],
    recorded_demo_http: HeaderRecorder,
) -> None:
    spec = UpstreamSpec(name="remote", url=f"{recorded_demo_http.base_url}/mcp")
    gw = start_gateway([spec], allow_anonymous=False, auth={"api_keys": True, "max_failures": GENEROUS})
    _, key = create_key(gw, "frank")
    body = modern_envelope("tools/call", {"name": "remote__echo", "arguments": {"message": "joined"}})
    resp = httpx.post(
        gw.mcp_url, content=json.dumps(body).encode(), headers={**modern_headers(body), "x-api-key": key}, timeout=30
    )
    assert resp.status_code == 200, resp.text
    calls = [json.loads(r.body) for r in recorded_demo_http.snapshot() if b'"tools/call"' in r.body]
    assert len(calls) == 1, calls
    request_id = calls[0]["params"]["_meta"]["io.portcullis/requestId"]
    (record,) = [r for r in audit_export(gw) if r["method"] == "tools/call"]
    assert record["request_id"] == request_id and record["principal"] == "frank"

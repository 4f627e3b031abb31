"""Token issuers for the authentication tests.

- :class:`AuthServer`: a real OAuth 2.1 authorization server, npm ``oidc-provider``
  (``harness/oidc/server.mjs``, installed by ``scripts/setup-test-deps``). Client credentials
  with RFC 8707 resource indicators; RS256 JWT or opaque tokens; introspection; key rotation.
- :class:`LocalIssuer`: an issuer whose RSA key this process holds, serving its JWKS on
  127.0.0.1, so a test can sign tokens the gateway trusts with any claims it likes (expired,
  wrong audience) and forge the ones it must not trust (``alg: none``, HS256 keyed with the
  public key, a tampered payload).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from . import paths
from .procs import Process

OIDC_DIR = paths.E2E_DIR / "harness" / "oidc"
OIDC_ENTRY = OIDC_DIR / "server.mjs"


class AuthServer:
    """``node harness/oidc/server.mjs 0``; the ``ready {json}`` line it prints names its URLs.

    Clients ``jwt-client`` (RS256 JWT access tokens), ``opaque-client`` (opaque tokens) and
    ``gateway`` (the resource server's introspection credentials); each secret is ``<id>-secret``.
    """

    def __init__(self, logdir: Path, timeout: float = 90) -> None:
        if not (OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").is_file():
            raise AssertionError(f"oidc-provider is not installed in {OIDC_DIR}: run scripts/setup-test-deps")
        self.proc = Process("oidc-provider", [paths.node_binary(), OIDC_ENTRY, "0"], logdir, cwd=OIDC_DIR)
        self.info = self._wait_ready(timeout)
        self.issuer: str = self.info["issuer"]
        self.jwks_uri: str = self.info["jwks_uri"]
        self.token_endpoint: str = self.info["token_endpoint"]
        self.introspection_endpoint: str = self.info["introspection_endpoint"]
        self.rotate_endpoint: str = self.info["rotate_endpoint"]

    def _wait_ready(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.proc.stdout_path.read_text(errors="replace").splitlines():
                if line.startswith("ready "):
                    return json.loads(line.removeprefix("ready "))
            if not self.proc.alive():
                raise AssertionError(f"oidc-provider exited before it was ready\n{self.proc.logs()}")
            time.sleep(0.05)
        raise AssertionError(f"oidc-provider not ready within {timeout:.0f}s\n{self.proc.logs()}")

    def token(self, client: str, scope: str, resource: str) -> str:
        """An access token from the client-credentials grant for ``resource``."""
        resp = httpx.post(
            self.token_endpoint,
            auth=(client, f"{client}-secret"),
            data={"grant_type": "client_credentials", "scope": scope, "resource": resource},
            timeout=10,
        )
        assert resp.status_code == 200, f"token endpoint: HTTP {resp.status_code}: {resp.text}"
        return resp.json()["access_token"]

    def rotate(self) -> str:
        """Replaces the signing key (the old one leaves the JWKS); returns the new ``kid``."""
        resp = httpx.post(self.rotate_endpoint, timeout=10)
        resp.raise_for_status()
        return resp.json()["kid"]

    def stop(self) -> None:
        self.proc.stop()

    def __enter__(self) -> AuthServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_parts(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """``BASE64URL(header).BASE64URL(claims)``: the signing input of a JWS."""
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"


def token_header(token: str) -> dict[str, Any]:
    """The (unverified) JOSE header of a JWT."""
    first = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)))


class LocalIssuer:
    """An RS256 issuer whose private key lives in this process; ``GET {base}/jwks`` serves its
    public key. ``issuer`` is its base URL."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = f"local-{secrets.token_hex(4)}"
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = {"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}]}
        self.public_pem: bytes = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        body = json.dumps(self.jwks).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path != "/jwks":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.jwks_url = f"{self.issuer}/jwks"

    def claims(self, audience: str, **overrides: Any) -> dict[str, Any]:
        """Valid access-token claims for ``audience``; ``overrides`` replace or (value None) drop."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "local-user",
            "aud": audience,
            "iat": now,
            "exp": now + 300,
            "jti": secrets.token_hex(8),
            "scope": "mcp",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        """RS256 with this issuer's key (``kid`` and ``typ: at+jwt`` unless overridden)."""
        headers = {"kid": self.kid, "typ": "at+jwt", **header}
        return jwt.encode(claims, self.key, algorithm="RS256", headers=headers)

    def alg_none(self, claims: dict[str, Any]) -> str:
        """``alg: none``, empty signature."""
        return unsigned_parts({"alg": "none", "typ": "at+jwt", "kid": self.kid}, claims) + "."

    def hs256_with_public_key(self, claims: dict[str, Any]) -> str:
        """The algorithm-confusion forgery: HS256 keyed with the issuer's public key (PEM)."""
        signing_input = unsigned_parts({"alg": "HS256", "typ": "at+jwt", "kid": self.kid}, claims)
        mac = hmac.new(self.public_pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64url(mac)}"

    def tampered(self, claims: dict[str, Any], **changes: Any) -> str:
        """A correctly signed token whose payload is then changed (the signature no longer fits)."""
        header, _, signature = self.sign(claims).split(".")
        forged = {**claims, **changes}
        return f"{header}.{b64url(json.dumps(forged).encode())}.{signature}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> LocalIssuer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def other_key_token(claims: dict[str, Any], kid: str) -> str:
    """RS256 signed by a fresh key nobody trusts, claiming the trusted ``kid``."""
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": kid, "typ": "at+jwt"})

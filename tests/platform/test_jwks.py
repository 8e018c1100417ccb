"""Production auth: RS256 tokens verified against a JWKS URL (a local server here), with key rotation."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth import Role, TokenVerifier
from shared.errors import Unauthorized
from shared.settings import ServiceSettings

ISSUER = "https://sso.example.go.id"
AUDIENCE = "posyandu-api"
KADER_POSYANDU = "0b3f5c1e-2a4d-4e8f-9c6b-7d1e2f3a4b5c"


class JwksServer:
    """Serves whatever keys the test puts in `keys`, as a JWKS document, on loopback."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"keys": [
                    {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())), "kid": kid,
                     "use": "sig", "alg": "RS256"} for kid, key in owner.keys.items()]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, kid: str, key: rsa.RSAPrivateKey | None = None, **overrides: Any) -> str:
        claims = {"sub": "kader-1", "role": "kader", "posyandu_ids": [KADER_POSYANDU], "iss": ISSUER, "aud": AUDIENCE,
                  "exp": int(time.time()) + 300, **overrides}
        return jwt.encode(claims, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    server = JwksServer()
    server.keys["k1"] = new_key()
    yield server
    server.server.shutdown()


COOLDOWN = 0.3


def verifier(jwks: JwksServer) -> TokenVerifier:
    return TokenVerifier(ServiceSettings(environment="production", auth_jwt_secret=None, auth_jwks_url=jwks.url,
                                         auth_algorithms="RS256,ES256", auth_issuer=ISSUER,
                                         auth_audience=AUDIENCE, auth_jwks_refetch_cooldown_seconds=COOLDOWN))


async def test_a_token_signed_by_a_published_key_is_accepted(jwks: JwksServer) -> None:
    principal = await verifier(jwks).verify(jwks.token("k1"))
    assert (principal.sub, principal.role) == ("kader-1", Role.KADER)


async def test_a_rotated_key_is_accepted_after_the_jwks_refresh(jwks: JwksServer) -> None:
    check = verifier(jwks)
    await check.verify(jwks.token("k1"))  # the key set is now cached
    rotated = new_key()
    await asyncio.sleep(COOLDOWN * 1.5)
    with pytest.raises(Unauthorized):
        await check.verify(jwks.token("k2", rotated))  # unknown kid: refetched, still not published
    jwks.keys["k2"] = rotated
    await asyncio.sleep(COOLDOWN * 1.5)
    assert (await check.verify(jwks.token("k2"))).sub == "kader-1"  # refetched after the cooldown


@pytest.mark.parametrize("overrides", [{"iss": "https://evil.example"}, {"aud": "another-api"},
                                       {"exp": int(time.time()) - 5}], ids=["wrong-iss", "wrong-aud", "expired"])
async def test_wrong_issuer_audience_or_expiry_is_refused(jwks: JwksServer, overrides: dict[str, Any]) -> None:
    with pytest.raises(Unauthorized):
        await verifier(jwks).verify(jwks.token("k1", **overrides))


async def test_a_forged_key_under_a_known_kid_and_hs256_are_refused(jwks: JwksServer) -> None:
    with pytest.raises(Unauthorized):
        await verifier(jwks).verify(jwks.token("k1", new_key()))
    shared_secret = jwt.encode({"sub": "x", "role": "admin", "exp": int(time.time()) + 60, "iss": ISSUER,
                                "aud": AUDIENCE}, "a-secret-that-is-long-enough-to-sign-hs256", algorithm="HS256")
    with pytest.raises(Unauthorized, match="algorithm"):
        await verifier(jwks).verify(shared_secret)

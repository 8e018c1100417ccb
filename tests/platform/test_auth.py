"""Bearer tokens: 401 for every way a token can be wrong, 403 for the wrong role or region."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth import Role, mint_token
from shared.settings import DEV_JWT_SECRET, ServiceSettings
from tests.support import tokens

URL = "/api/v1/regions/31"


def _header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_valid_token_reads(registry: httpx.AsyncClient) -> None:
    assert (await registry.get(URL, headers=tokens.kader([]))).status_code == 200


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer not.a.token"},
    {"Authorization": "Bearer " + mint_token(DEV_JWT_SECRET, Role.ADMIN, expires_in=-10)},
    {"Authorization": "Bearer " + mint_token("another-secret-entirely-of-enough-length", Role.ADMIN)},
    {"Authorization": "Bearer " + mint_token(DEV_JWT_SECRET, "superuser")},
    {"Authorization": "Bearer " + mint_token(DEV_JWT_SECRET, Role.PEMBINA)},  # pembina without region
    {"Authorization": "Bearer " + mint_token(DEV_JWT_SECRET, Role.PEMBINA, region_prefix="3X")},
    {"Authorization": "Bearer " + mint_token(DEV_JWT_SECRET, Role.OPD, agency_id="not-a-uuid", fields=["sosial"])},
    {"Authorization": "Bearer " + mint_token(DEV_JWT_SECRET, Role.OPD, agency_id=None)},
    {"Authorization": "Bearer " + mint_token(DEV_JWT_SECRET, Role.KADER, posyandu_ids=["nope"])},
    # A subject PostgreSQL cannot store (it is written to the audit log as the actor).
    {"Authorization": "Bearer " + mint_token(DEV_JWT_SECRET, Role.ADMIN, sub="admin\x00")},
], ids=["missing", "basic", "empty", "garbage", "expired", "wrong-secret", "unknown-role", "pembina-no-region",
        "bad-region", "bad-agency", "opd-no-agency", "bad-posyandu-ids", "nul-in-subject"])
async def test_bad_tokens_are_401(registry: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await registry.get(URL, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_alg_none_and_tampered_tokens_are_401(registry: httpx.AsyncClient) -> None:
    claims = {"sub": "x", "role": "admin", "exp": int(time.time()) + 60}
    unsigned = jwt.encode(claims, key="", algorithm="none")
    assert (await registry.get(URL, headers=_header(unsigned))).status_code == 401
    good = mint_token(DEV_JWT_SECRET, Role.KADER)
    head, _, signature = good.split(".")
    forged_payload = jwt.utils.base64url_encode(b'{"sub":"x","role":"admin","exp":9999999999}').decode()
    assert (await registry.get(URL, headers=_header(f"{head}.{forged_payload}.{signature}"))).status_code == 401


async def test_hs256_signed_with_an_rsa_public_key_is_401(registry: httpx.AsyncClient) -> None:
    public_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = {"sub": "x", "role": "admin", "exp": int(time.time()) + 60}
    # PyJWT refuses to sign HS256 with a PEM key; build the token by hand as an attacker would.
    import hashlib
    import hmac

    header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}')
    body = jwt.utils.base64url_encode(jwt.api_jws.json.dumps(claims).encode())
    signature = jwt.utils.base64url_encode(hmac.new(public_pem, header + b"." + body, hashlib.sha256).digest())
    token = b".".join([header, body, signature]).decode()
    assert (await registry.get(URL, headers=_header(token))).status_code == 401


async def test_wrong_role_is_403(registry: httpx.AsyncClient) -> None:
    response = await registry.post("/api/v1/agencies", json={}, headers=tokens.kader([]))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


def test_production_refuses_the_development_secret() -> None:
    with pytest.raises(ValueError, match="development secret"):
        ServiceSettings(environment="production", auth_jwt_secret=DEV_JWT_SECRET)
    with pytest.raises(ValueError, match="HS256"):
        ServiceSettings(environment="production", auth_jwt_secret=None, auth_jwks_url="https://sso.example/jwks",
                        auth_algorithms="HS256,RS256")
    ok = ServiceSettings(environment="production", auth_jwt_secret=None, auth_jwks_url="https://sso.example/jwks",
                         auth_algorithms="RS256,ES256")
    assert ok.algorithms == ["RS256", "ES256"]

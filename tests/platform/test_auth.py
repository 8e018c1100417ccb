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


def _signed(**claims: object) -> dict[str, str]:
    """A token with exactly these claims (no defaults), validly signed with the test stack's secret."""
    return _header(jwt.encode(claims, DEV_JWT_SECRET, algorithm="HS256"))


_NOW = int(time.time())
_LATER = _NOW + 3600
_AGENCY = "6f1c2a1e-9c1d-4f6e-8f57-2b7f4c9a1d10"


@pytest.mark.parametrize("claims", [
    {"sub": "", "role": "admin", "exp": _LATER},
    {"sub": "   ", "role": "admin", "exp": _LATER},
    {"sub": "x" * 201, "role": "admin", "exp": _LATER},
    {"sub": "admin\nforged audit line", "role": "admin", "exp": _LATER},
    {"sub": 42, "role": "admin", "exp": _LATER},
    {"sub": "a", "role": "admin", "exp": str(_LATER)},
    {"sub": "a", "role": "admin", "exp": True},
    {"sub": "a", "role": "admin", "exp": _LATER, "iat": str(_NOW)},
    {"sub": "a", "role": "admin", "exp": _LATER, "nbf": str(_NOW)},
    {"sub": "a", "role": ["admin"], "exp": _LATER},
    {"sub": "a", "role": "kader", "exp": _LATER},
    {"sub": "a", "role": "kader", "exp": _LATER, "posyandu_ids": []},
    {"sub": "a", "role": "kader", "exp": _LATER, "posyandu_ids": _AGENCY},
    {"sub": "a", "role": "kader", "exp": _LATER, "posyandu_ids": [_AGENCY] * 101},
    {"sub": "a", "role": "opd", "exp": _LATER, "agency_id": _AGENCY, "fields": []},
    {"sub": "a", "role": "opd", "exp": _LATER, "agency_id": _AGENCY, "fields": ["kesehatan", "astrologi"]},
    {"sub": "a", "role": "opd", "exp": _LATER, "agency_id": _AGENCY, "fields": "kesehatan"},
    {"sub": "a", "role": "opd", "exp": _LATER, "fields": ["kesehatan"]},
    {"sub": "a", "role": "pembina", "exp": _LATER, "region_prefix": "\u0663\u0661"},  # Arabic-Indic 31
    {"sub": "a", "role": "pembina", "exp": _LATER, "region_prefix": "\uff13\uff11"},  # fullwidth 31
    {"sub": "a", "role": "pembina", "exp": _LATER, "region_prefix": "317"},
    {"sub": "a", "role": "pembina", "exp": _LATER, "region_prefix": "31\n"},
    {"sub": "a", "role": "pembina", "exp": _LATER, "region_prefix": 31},
], ids=["sub-empty", "sub-blank", "sub-too-long", "sub-control-chars", "sub-number", "exp-string", "exp-bool",
        "iat-string", "nbf-string", "role-list", "kader-no-posyandu", "kader-empty-posyandu",
        "kader-posyandu-not-a-list", "kader-too-many-posyandu", "opd-no-fields", "opd-unknown-field",
        "opd-fields-not-a-list", "opd-no-agency", "region-arabic-indic", "region-fullwidth", "region-length-3",
        "region-newline", "region-number"])
async def test_loose_claims_are_401(registry: httpx.AsyncClient, household: httpx.AsyncClient,
                                    claims: dict[str, object]) -> None:
    for client, url in ((registry, URL), (household, "/api/v1/households")):
        response = await client.get(url, headers=_signed(**claims))
        assert response.status_code == 401, (url, response.text)
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("claims", [
    {"sub": "a", "role": "admin", "exp": _LATER, "iat": _NOW, "nbf": _NOW},
    {"sub": "a", "role": "admin", "exp": _LATER + 0.5},
    {"sub": "kader@posyandu", "role": "kader", "exp": _LATER, "posyandu_ids": [_AGENCY]},
    {"sub": "a", "role": "opd", "exp": _LATER, "agency_id": _AGENCY, "fields": ["kesehatan", "sosial"]},
    {"sub": "a", "role": "pembina", "exp": _LATER, "region_prefix": "3171"},
    {"sub": "a", "role": "service", "exp": _LATER},
], ids=["admin-with-times", "exp-float", "kader", "opd", "pembina", "service"])
async def test_strict_claims_still_accept_good_tokens(household: httpx.AsyncClient, claims: dict[str, object]) -> None:
    response = await household.get("/api/v1/households", headers=_signed(**claims))
    assert response.status_code != 401, response.text

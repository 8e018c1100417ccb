"""Bearer JWT authentication, the roles and claims of the contract, and helpers that scope queries."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request

from shared.errors import Forbidden, Unauthorized
from shared.events.topics import SpmField
from shared.settings import ServiceSettings


class Role(StrEnum):
    ADMIN = "admin"
    KADER = "kader"
    OPD = "opd"
    PEMBINA = "pembina"
    SERVICE = "service"


@dataclass(frozen=True)
class Principal:
    """Who is calling, as the token says."""

    sub: str
    role: Role
    posyandu_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    agency_id: uuid.UUID | None = None
    fields: frozenset[SpmField] = field(default_factory=frozenset)
    region_prefix: str | None = None

    def oversees_region(self, code: str) -> bool:
        """True for an admin, and for a pembina whose region prefix covers the code."""
        if self.role is Role.ADMIN:
            return True
        return self.role is Role.PEMBINA and self.region_prefix is not None and code.startswith(self.region_prefix)

    def region_scope(self) -> str | None:
        """The region prefix lists must be limited to, or None for no limit (admin, service)."""
        return self.region_prefix if self.role is Role.PEMBINA else None


def _claims_to_principal(claims: dict[str, Any]) -> Principal:
    try:
        role = Role(claims["role"])
        sub = str(claims["sub"])
        posyandu_ids = frozenset(uuid.UUID(str(p)) for p in claims.get("posyandu_ids") or [])
        agency_id = uuid.UUID(str(claims["agency_id"])) if claims.get("agency_id") else None
        fields = frozenset(SpmField(f) for f in claims.get("fields") or [])
        region_prefix = claims.get("region_prefix")
    except (KeyError, ValueError, TypeError) as exc:
        raise Unauthorized("The token's claims are incomplete or invalid.") from exc
    if "\x00" in sub:  # the actor of the audit log: text PostgreSQL cannot store
        raise Unauthorized("The token's subject holds a NUL character.")
    if region_prefix is not None and (not isinstance(region_prefix, str) or not region_prefix.isdigit()
                                      or len(region_prefix) not in (2, 4, 6, 10)):
        raise Unauthorized("The token's region_prefix is not a region code.")
    if role is Role.PEMBINA and not region_prefix:
        raise Unauthorized("A pembina token needs a region_prefix.")
    if role is Role.OPD and (agency_id is None or not fields):
        raise Unauthorized("An opd token needs agency_id and fields.")
    return Principal(sub=sub, role=role, posyandu_ids=posyandu_ids, agency_id=agency_id, fields=fields,
                     region_prefix=region_prefix)


class TokenVerifier:
    """Verifies bearer tokens: HS256 with a shared secret locally, keys from a JWKS URL in production."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._secret = settings.auth_jwt_secret
        self._algorithms = settings.algorithms
        self._issuer = settings.auth_issuer
        self._audience = settings.auth_audience
        self._jwks = (jwt.PyJWKClient(settings.auth_jwks_url, cache_keys=True,
                                      lifespan=settings.auth_jwks_refresh_seconds,
                                      cooldown_duration=settings.auth_jwks_refetch_cooldown_seconds)
                      if settings.auth_jwks_url else None)

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            algorithm = header.get("alg")
            if algorithm not in self._algorithms:
                raise Unauthorized("The token's algorithm is not accepted.")
            key: Any
            if algorithm.startswith("HS"):
                if not self._secret:
                    raise Unauthorized("Shared-secret tokens are not accepted here.")
                key = self._secret
            elif self._jwks is not None:
                # PyJWKClient fetches synchronously (and again for an unknown kid): keep it off the loop.
                key = (await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)).key
            else:
                raise Unauthorized("No key source is configured for this algorithm.")
            claims = jwt.decode(
                token, key, algorithms=[algorithm], issuer=self._issuer, audience=self._audience,
                options={"require": ["exp", "sub"], "verify_aud": self._audience is not None},
            )
        except Unauthorized:
            raise
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The token has expired.") from exc
        except (jwt.PyJWTError, ValueError) as exc:
            raise Unauthorized("The token is invalid.") from exc
        return _claims_to_principal(claims)


def mint_token(secret: str, role: Role | str, *, sub: str | None = None, expires_in: int = 3600,
               issuer: str | None = None, audience: str | None = None, **claims: Any) -> str:
    """An HS256 token for the local stack and the tests."""
    now = int(time.time())
    payload: dict[str, Any] = {"sub": sub or f"{role}-dev", "role": str(role), "iat": now, "exp": now + expires_in}
    if issuer:
        payload["iss"] = issuer
    if audience:
        payload["aud"] = audience
    payload.update({k: v for k, v in claims.items() if v is not None})
    return jwt.encode(payload, secret, algorithm="HS256")


async def current_principal(request: Request) -> Principal:
    """The caller, from the `Authorization: Bearer` header; 401 when it is missing or not valid."""
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("A bearer token is required.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("The Authorization header must be 'Bearer <token>'.")
    verifier: TokenVerifier = request.state.token_verifier
    principal = await verifier.verify(token.strip())
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets only the named roles through (403 for the others)."""
    allowed = frozenset(roles)

    async def check(principal: PrincipalDep) -> Principal:
        if principal.role not in allowed:
            raise Forbidden(f"This needs one of the roles: {', '.join(sorted(allowed))}.")
        return principal

    return check

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
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from shared.errors import Forbidden, Unauthorized
from shared.events.topics import SpmField
from shared.region_codes import REGION_PREFIX_PATTERN
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


#: Bounds on what a token may carry (an IdP misconfiguration must not become an unbounded audit row or query).
MAX_SUB_LENGTH = 200
MAX_POSYANDU_IDS = 100
#: A JWT NumericDate: a JSON number, never a numeric string (PyJWT's int() would accept "1700000000") or a bool.
NumericDate = Annotated[StrictInt | StrictFloat, Field(ge=0, allow_inf_nan=False)]


class TokenClaims(BaseModel):
    """The claims of the contract (DESIGN.md §4), checked strictly; other claims (iss, aud, jti, ...) are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sub: StrictStr = Field(min_length=1, max_length=MAX_SUB_LENGTH)
    role: Role
    exp: NumericDate
    iat: NumericDate | None = None
    nbf: NumericDate | None = None
    posyandu_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_POSYANDU_IDS)
    agency_id: uuid.UUID | None = None
    fields: list[SpmField] = Field(default_factory=list, max_length=len(SpmField))
    # ASCII digits only: str.isdigit() and \d would take Arabic-Indic or fullwidth digits.
    region_prefix: StrictStr | None = Field(default=None, pattern=REGION_PREFIX_PATTERN)

    @field_validator("sub")
    @classmethod
    def _printable_subject(cls, sub: str) -> str:
        # The subject becomes the actor of audit rows: it must name someone, on one line.
        if not sub.strip() or not sub.isprintable():
            raise ValueError("must be a printable, non-blank string")
        return sub

    @model_validator(mode="after")
    def _claims_of_the_role(self) -> TokenClaims:
        if self.role is Role.KADER and not self.posyandu_ids:
            raise ValueError("a kader token needs a non-empty posyandu_ids")
        if self.role is Role.OPD and (self.agency_id is None or not self.fields):
            raise ValueError("an opd token needs agency_id and a non-empty fields")
        if self.role is Role.PEMBINA and self.region_prefix is None:
            raise ValueError("a pembina token needs a region_prefix")
        return self


def _claims_to_principal(claims: dict[str, Any]) -> Principal:
    """The caller the verified claims describe; 401 naming the first claim that is missing or invalid."""
    try:
        checked = TokenClaims.model_validate(claims)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = str(first["loc"][0]) if first["loc"] else "claims"
        message = first["msg"].removeprefix("Value error, ")
        # The message names the claim, never its value (a token's content does not belong in a response).
        raise Unauthorized(f"The token's claims are invalid: {where}: {message}.") from None
    return Principal(sub=checked.sub, role=checked.role, posyandu_ids=frozenset(checked.posyandu_ids),
                     agency_id=checked.agency_id, fields=frozenset(checked.fields),
                     region_prefix=checked.region_prefix)


#: Verified tokens kept (a caller sends the same one with every request until it expires), and for how long at
#: most: a key withdrawn from the JWKS stops being accepted within this, as it would after the key set's refresh.
VERIFIED_TOKENS = 4096
VERIFIED_FOR_SECONDS = 60.0


class TokenVerifier:
    """Verifies bearer tokens: HS256 with a shared secret locally, keys from a JWKS URL in production. A verified
    token's caller is kept until the token expires, for at most VERIFIED_FOR_SECONDS: decoding and checking the
    signature and claims again on each of a client's requests cost a fifth of a millisecond each time."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._verified: dict[str, tuple[Principal, float]] = {}
        self._secret = settings.auth_jwt_secret
        self._algorithms = settings.algorithms
        self._issuer = settings.auth_issuer
        self._audience = settings.auth_audience
        self._jwks = (jwt.PyJWKClient(settings.auth_jwks_url, cache_keys=True,
                                      lifespan=settings.auth_jwks_refresh_seconds,
                                      cooldown_duration=settings.auth_jwks_refetch_cooldown_seconds)
                      if settings.auth_jwks_url else None)

    async def verify(self, token: str) -> Principal:
        now = time.time()
        kept = self._verified.get(token)
        if kept is not None:
            if now < kept[1]:
                return kept[0]
            del self._verified[token]
        principal, expires = await self._verify(token)
        if len(self._verified) >= VERIFIED_TOKENS:
            del self._verified[next(iter(self._verified))]  # the oldest kept
        self._verified[token] = (principal, min(expires, now + VERIFIED_FOR_SECONDS))
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
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
        return _claims_to_principal(claims), float(claims["exp"])


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


#: The principal of an admin-only route.
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
#: The principal of a route that writes a posyandu's own data: household records, their referrals (kader, admin).
Writer = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.KADER))]

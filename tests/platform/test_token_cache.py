"""A verified bearer token's caller is kept (a client sends the same token with every request): checked once, then
until the token expires, for at most `VERIFIED_FOR_SECONDS`, and only so many tokens at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared import auth
from shared.auth import Role, TokenVerifier, mint_token
from shared.errors import Unauthorized
from shared.settings import DEV_JWT_SECRET, ServiceSettings


def _counting(verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    checked: list[str] = []
    check = verifier._verify

    async def counted(token: str) -> Any:
        checked.append(token)
        return await check(token)

    monkeypatch.setattr(verifier, "_verify", counted)
    return checked


async def test_a_token_is_checked_once_then_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = TokenVerifier(ServiceSettings())
    checked = _counting(verifier, monkeypatch)
    token = mint_token(DEV_JWT_SECRET, Role.ADMIN, sub="admin-1")
    for _ in range(3):
        assert (await verifier.verify(token)).sub == "admin-1"
    assert len(checked) == 1
    # Another token (even of the same caller) is checked on its own: a tampered one never matches a kept one.
    with pytest.raises(Unauthorized):
        await verifier.verify(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))


async def test_a_kept_token_is_refused_once_it_expires() -> None:
    verifier = TokenVerifier(ServiceSettings())
    token = mint_token(DEV_JWT_SECRET, Role.ADMIN, sub="admin-1", expires_in=1)
    assert (await verifier.verify(token)).sub == "admin-1"
    await asyncio.sleep(1.3)
    with pytest.raises(Unauthorized, match="expired"):
        await verifier.verify(token)


async def test_a_kept_token_is_checked_again_after_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "VERIFIED_FOR_SECONDS", 0.2)
    verifier = TokenVerifier(ServiceSettings())
    checked = _counting(verifier, monkeypatch)
    token = mint_token(DEV_JWT_SECRET, Role.ADMIN, sub="admin-1")
    await verifier.verify(token)
    await asyncio.sleep(0.3)
    await verifier.verify(token)
    assert len(checked) == 2


async def test_only_so_many_tokens_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "VERIFIED_TOKENS", 3)
    verifier = TokenVerifier(ServiceSettings())
    tokens = [mint_token(DEV_JWT_SECRET, Role.ADMIN, sub=f"admin-{i}") for i in range(5)]
    for token in tokens:
        await verifier.verify(token)
    assert len(verifier._verified) == 3
    assert set(verifier._verified) == set(tokens[2:])  # the oldest went first

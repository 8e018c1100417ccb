"""Bearer tokens for each role, minted with the test stack's shared secret."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from shared.auth import Role, mint_token
from shared.settings import DEV_JWT_SECRET


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin() -> dict[str, str]:
    return bearer(mint_token(DEV_JWT_SECRET, Role.ADMIN, sub="admin-test"))


def pembina(region_prefix: str) -> dict[str, str]:
    return bearer(mint_token(DEV_JWT_SECRET, Role.PEMBINA, sub=f"pembina-{region_prefix}", region_prefix=region_prefix))


def kader(posyandu_ids: Iterable[uuid.UUID | str]) -> dict[str, str]:
    """A kader of these posyandu; with none, of a posyandu nobody else uses (a kader token must name one)."""
    ids = [str(p) for p in posyandu_ids] or [str(uuid.uuid4())]
    return bearer(mint_token(DEV_JWT_SECRET, Role.KADER, sub="kader-test", posyandu_ids=ids))


def opd(agency_id: uuid.UUID | str, fields: Iterable[str]) -> dict[str, str]:
    return bearer(mint_token(DEV_JWT_SECRET, Role.OPD, sub=f"opd-{agency_id}", agency_id=str(agency_id),
                             fields=list(fields)))


def service() -> dict[str, str]:
    return bearer(mint_token(DEV_JWT_SECRET, Role.SERVICE, sub="service-test"))

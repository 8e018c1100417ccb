"""The load-or-404 dependency of every route that takes a `referral_id`: the referral through the access query
(access.readable_referrals), so a route never sees one its caller may not read, and the 404 hides it."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends

from services.referral.referrals.access import readable_referral
from services.referral.tables import Referral
from shared.auth import PrincipalDep
from shared.db import SessionDep


def _load(*, for_update: bool) -> Callable[..., Awaitable[Referral]]:
    async def load(referral_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> Referral:
        return await readable_referral(session, principal, referral_id, for_update=for_update)

    return load


#: A referral the caller may read.
ReadableReferral = Annotated[Referral, Depends(_load(for_update=False))]
#: A referral the caller may read, its row locked for the change the route makes (two moves cannot both win).
LockedReferral = Annotated[Referral, Depends(_load(for_update=True))]

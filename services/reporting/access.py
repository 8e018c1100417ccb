"""Who may read which aggregates: the region prefix, the SPM fields and whether small cells are suppressed.

- admin: any region and field, numbers as they are (no suppression);
- service: any region and field, suppressed;
- pembina: regions within their `region_prefix` (403 outside), suppressed;
- opd: their token's fields (403 for another), regions within their agency's jurisdiction as the registry
  announced it (403 outside, and 403 while the agency is unknown here), suppressed;
- kader: only the villages of their own posyandu (403 for any other region), suppressed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.indicators import repository
from shared.auth import Principal, Role
from shared.errors import Forbidden, ValidationFailed
from shared.events.topics import SpmField

REGION_LENGTHS = (0, 2, 4, 6, 10)


@dataclass(frozen=True)
class Audience:
    """What one request may see."""

    prefix: str
    fields: tuple[SpmField, ...]
    suppress: bool


def _check_region(region: str | None) -> str | None:
    if region is None:
        return None
    # ASCII digits only: str.isdigit() also takes other scripts' digits and superscripts.
    if region and not (region.isascii() and region.isdigit() and len(region) in REGION_LENGTHS):
        raise ValidationFailed("region must be a region code prefix of 2, 4, 6 or 10 digits.", errors=[
            {"field": "query.region", "message": "expected 2, 4, 6 or 10 digits", "type": "value_error"}])
    return region


def _within(region: str | None, allowed: str, default: str | None = None) -> str:
    chosen = default if region is None else region
    chosen = allowed if chosen is None else chosen
    if not chosen.startswith(allowed):
        raise Forbidden(f"Your reports are limited to region {allowed or 'national'}.")
    return chosen


async def resolve(*, session: AsyncSession, principal: Principal, region: str | None,
                  field: SpmField | None) -> Audience:
    """The audience of a request, or 403 when it asks outside what the caller may see."""
    region = _check_region(region)
    fields = tuple(SpmField)
    if principal.role is Role.ADMIN:
        return Audience(region or "", (field,) if field else fields, suppress=False)
    if principal.role is Role.SERVICE:
        return Audience(region or "", (field,) if field else fields, suppress=True)
    if principal.role is Role.PEMBINA:
        assert principal.region_prefix is not None
        return Audience(_within(region, principal.region_prefix), (field,) if field else fields, suppress=True)
    if principal.role is Role.OPD:
        assert principal.agency_id is not None
        own = tuple(f for f in SpmField if f in principal.fields)
        if field is not None and field not in own:
            raise Forbidden("Your agency's reports cover only its own fields.")
        agency = await repository.agency(session=session, agency_id=principal.agency_id)
        if agency is None:
            raise Forbidden("Your agency is not known to the reporting service yet.")
        prefix = _within(region, agency["jurisdiction_code"])
        return Audience(prefix, (field,) if field else own, suppress=True)
    if principal.role is Role.KADER:
        villages = await repository.villages_of_posyandu(session=session, posyandu_ids=list(principal.posyandu_ids))
        if region is None and len(villages) == 1:
            region = next(iter(villages))
        if region not in villages:
            raise Forbidden("A kader sees the reports of their own posyandu's villages only.")
        return Audience(region, (field,) if field else fields, suppress=True)
    raise Forbidden("This role does not read reports.")

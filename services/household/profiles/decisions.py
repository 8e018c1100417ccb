"""The verdicts the household service publishes with a profile version (ProfileUpdatedData.decided): an unfit
house, a safe drinking-water source, a low DTSEN decile, decided here with the need rules' configuration so that
the reports count them instead of repeating the rules (issue 13).

`decided(field, data)` takes the profile data as stored and published; it is the one place both the profile API
(profiles/service.py) and the bulk import build the flags from.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from services.household.needs.config import DEFAULT_CONFIG, NeedRulesConfig
from services.household.needs.rules import rtlh_reasons, unsafe_water
from services.household.profiles.schemas import PekerjaanUmumHousehold, PerumahanHousehold, SosialHousehold
from shared.events.household import ProfileDecisions
from shared.events.topics import SpmField


def decided(field: SpmField, data: dict[str, Any], config: NeedRulesConfig = DEFAULT_CONFIG) -> ProfileDecisions | None:
    """The rules' verdicts on one version of a field's profile; None for a field without such a rule (or a
    household section that does not validate, as in data stored before a schema change)."""
    household = data.get("household") or {}
    try:
        if field is SpmField.PERUMAHAN_RAKYAT:
            reasons, _ = rtlh_reasons(PerumahanHousehold.model_validate(household), config)
            return ProfileDecisions(rtlh=bool(reasons))
        if field is SpmField.PEKERJAAN_UMUM:
            water = PekerjaanUmumHousehold.model_validate(household)
            if water.drinking_water_source is None:
                return ProfileDecisions()
            return ProfileDecisions(safe_water=not unsafe_water(water, config))
        if field is SpmField.SOSIAL:
            decile = SosialHousehold.model_validate(household).dtsen_decile
            return ProfileDecisions(low_decile=None if decile is None else decile <= config.reported_low_decile_max)
    except ValidationError:
        return None
    return None

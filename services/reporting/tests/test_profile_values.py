"""Profile values of another type than the household service writes (the event schema leaves a profile open) do
not break a report: they count as not recorded. Maluku Utara's neighbour Papua Pegunungan (95), no other test's."""

from __future__ import annotations

import httpx

from services.reporting.settings import ReportingSettings
from services.reporting.tests.factories import Stream, at, previous_month, publish, until_consumed
from tests.support import tokens

VILLAGE = "9501011001"


async def test_odd_profile_values_count_as_not_recorded(reporting: httpx.AsyncClient,
                                                        reporting_settings: ReportingSettings) -> None:
    period, first, _ = previous_month()
    s = Stream(default_time=at(first, 8))
    odd = s.household(VILLAGE)
    s.profile(odd, "sosial", {"household": {"dtsen_decile": "tujuh", "aid_received": "pkh"}}, observed_on=first)
    s.profile(odd, "perumahan-rakyat", {"household": {"floor_area_m2": "besar", "occupants": [4]}},
              observed_on=first)
    s.profile(odd, "trantibumlinmas", {"household": {"disaster_risk": "flood"}, "members": ["not", "a", "map"]},
              observed_on=first)
    s.profile(odd, "pendidikan", {"household": [], "members": "none"}, observed_on=first)
    decimal = s.household(VILLAGE)
    s.profile(decimal, "sosial", {"household": {"dtsen_decile": 2.5, "aid_received": ["pkh"]}}, observed_on=first)
    good = s.household(VILLAGE)
    s.profile(good, "sosial", {"household": {"dtsen_decile": 2, "aid_received": ["pkh"]}}, observed_on=first)
    s.profile(good, "perumahan-rakyat", {"household": {"floor_area_m2": 10, "occupants": 4}}, observed_on=first)
    await publish(reporting_settings.kafka_bootstrap_servers, s.events)
    await until_consumed(reporting_settings.database_url, s.events)
    tables = {}
    for region in (VILLAGE, "95", ""):
        response = await reporting.get("/api/v1/indicators", params={"region": region, "period": period},
                                       headers=tokens.admin())
        assert response.status_code == 200, (region, response.text)
        tables[region] = response.json()
    [row] = tables[VILLAGE]["rows"]
    assert (row["sosial.decile_1_4"], row["sosial.decile_1_4_with_aid"]) == (1, 1)  # only the good one
    assert (row["perumahan-rakyat.households_profiled"], row["perumahan-rakyat.rtlh"]) == (2, 1)
    assert (row["trantibumlinmas.households_profiled"], row["trantibumlinmas.at_risk"]) == (1, 0)

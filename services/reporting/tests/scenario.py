"""The Maluku scenario: a small, hand-countable history in province 81, which no other test uses.

Villages: Tamilouw (8101012001) and Sepa (8101012002) in Amahai (810101), Kabupaten Maluku Tengah (8101);
Nusaniwe (8171011006) in Kota Ambon (8171). The period is last month; the expected numbers are in the tests.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from services.reporting.tests.factories import Stream, at, previous_month, years_before

TAMILOUW, SEPA, NUSANIWE = "8101012001", "8101012002", "8171011006"


@dataclass
class Maluku:
    stream: Stream
    period: str
    agencies: dict[str, uuid.UUID] = field(default_factory=dict)
    posyandu_tamilouw: uuid.UUID = field(default_factory=uuid.uuid4)


def build() -> Maluku:
    period, first, last = previous_month()
    day = lambda n: first + timedelta(days=n - 1)  # noqa: E731
    s = Stream(default_time=at(day(1), 8))
    world = Maluku(s, period)
    for code, name, level, parent in [("81", "Maluku", "province", None),
                                      ("8101", "Kabupaten Maluku Tengah", "regency", "81"),
                                      ("810101", "Amahai", "district", "8101"),
                                      (TAMILOUW, "Tamilouw", "village", "810101"),
                                      (SEPA, "Sepa", "village", "810101"),
                                      ("8171", "Kota Ambon", "regency", "81"),
                                      (NUSANIWE, "Nusaniwe", "village", "817101")]:
        s.region(code, name, level, parent)
    world.posyandu_tamilouw = s.posyandu(TAMILOUW)
    world.agencies = {"kesehatan-8101": s.agency("8101", ["kesehatan"]),
                      "pendidikan-8101": s.agency("8101", ["pendidikan"]),
                      "kesehatan-81": s.agency("81", ["kesehatan"]),
                      "gone-8101": s.agency("8101", ["sosial"], active=False)}

    # Tamilouw: six households, an adult (30) in each, toddlers (30 months) in five, an infant (6 months) in one.
    a = [s.household(TAMILOUW, world.posyandu_tamilouw) for _ in range(6)]
    adults = [s.member(h, years_before(last, 30)) for h in a]
    toddlers = [s.member(h, years_before(last, 2, 6)) for h in a[:5]]
    infant = s.member(a[5], years_before(last, 0, 6))
    s.member(a[5], years_before(last, 30), pregnant=True, version=2, member_id=adults[5])  # now pregnant
    duplicate = s.member(a[0], years_before(last, 30))
    s.merge(adults[0], duplicate, a[0])  # not counted
    # Growth: t1 stunted + wasted + underweight (its earlier, normal measurement is superseded), t2 severely
    # stunted + underweight, the rest normal; t3's measurement of the month before does not count.
    s.measurement(a[0], toddlers[0], day(2), age_days=900)
    s.measurement(a[0], toddlers[0], day(10), age_days=908, haz="stunted", whz="wasted", waz="underweight")
    s.measurement(a[1], toddlers[1], day(10), age_days=908, haz="severely-stunted", waz="severely-underweight")
    for h, t in zip(a[2:5], toddlers[2:5], strict=True):
        s.measurement(h, t, day(11), age_days=909)
    s.measurement(a[2], toddlers[2], first - timedelta(days=3), age_days=880, haz="stunted")
    s.profile(a[5], "kesehatan", {"members": {str(infant): {"immunization_status": "complete-for-age"}}},
              observed_on=day(3))
    # Water and sanitation in households 1-5: safe water in 4, safe sanitation in 4 (3 septic, 1 shared), 1 none.
    for h, water, toilet in zip(a[:5], ["piped", "piped", "protected-well", "bottled", "unprotected-well"],
                                ["private-with-septic"] * 3 + ["shared", "none"], strict=True):
        s.profile(h, "pekerjaan-umum", {"household": {"drinking_water_source": water, "toilet": toilet}},
                  observed_on=day(5))
    # A newer version observed after the period does not change it.
    s.profile(a[0], "pekerjaan-umum", {"household": {"drinking_water_source": "surface-water", "toilet": "none"}},
              observed_on=last + timedelta(days=2), version=2)
    # Deciles 2, 3, 1, 4 (with aid: 2 of 4) and a decile 7 household with aid.
    for h, decile, aid in [(a[0], 2, ["pkh"]), (a[1], 3, []), (a[2], 7, ["bpnt"]), (a[3], 1, ["pbi-jk", "bpnt"]),
                           (a[5], 4, None)]:
        section: dict[str, int | list[str]] = {"dtsen_decile": decile}
        if aid is not None:
            section["aid_received"] = aid
        s.profile(h, "sosial", {"household": section}, observed_on=day(6))

    # Sepa: three households of an adult (40); an elderly (70) neglected, children of 10 (out of school) and 12.
    b = [s.household(SEPA) for _ in range(3)]
    for h in b:
        s.member(h, years_before(last, 40))
    elderly = s.member(b[0], years_before(last, 70))
    child10 = s.member(b[1], years_before(last, 10))
    child12 = s.member(b[2], years_before(last, 12))
    s.profile(b[0], "sosial", {"members": {str(elderly): {"neglect_flags": ["neglected-elderly"]}}},
              observed_on=day(4))
    s.profile(b[1], "pendidikan", {"members": {str(child10): {"enrolled": False}}}, observed_on=day(4))
    s.profile(b[2], "pendidikan", {"members": {str(child12): {"enrolled": True, "level": "smp"}}}, observed_on=day(4))
    houses: list[dict[str, object]] = [
        {"floor": "earth"}, {"floor_area_m2": 60, "occupants": 3, "floor": "ceramic-or-cement", "wall": "masonry"},
        {"floor_area_m2": 10, "occupants": 4, "disaster_damage": "heavy"}]
    for h, house in zip(b, houses, strict=True):
        s.profile(h, "perumahan-rakyat", {"household": house}, observed_on=day(4))

    # Nusaniwe: two households, adults of 25 (pregnant) and 50; both at disaster risk, one informed, one displaced.
    c = [s.household(NUSANIWE) for _ in range(2)]
    s.member(c[0], years_before(last, 25), pregnant=True)
    s.member(c[1], years_before(last, 50), sex="male")
    s.profile(c[0], "trantibumlinmas", {"household": {"disaster_risk": ["flood"], "preparedness_informed": True}},
              observed_on=day(7))
    s.profile(c[1], "trantibumlinmas", {"household": {"disaster_risk": ["landslide", "flood"],
                                                       "preparedness_informed": False, "displaced": True}},
              observed_on=day(7))

    # Needs in Tamilouw: three stunting (one resolved, its events reversed), one sanitation, one open since before.
    s.need(a[0], TAMILOUW, "kesehatan.stunting", detected=at(day(10), 9))
    s.need(a[1], TAMILOUW, "kesehatan.stunting", detected=at(day(10), 9))
    s.need(a[2], TAMILOUW, "kesehatan.stunting", detected=at(day(11), 9), resolved=at(day(20)), resolved_first=True)
    s.need(a[4], TAMILOUW, "pekerjaan-umum.sanitation", detected=at(day(5), 9))
    s.need(a[3], TAMILOUW, "kesehatan.stunting", detected=at(first - timedelta(days=5)))
    s.need(b[1], SEPA, "pendidikan.ats", detected=at(day(4), 9))

    # Referrals in Tamilouw (kesehatan) and Sepa (pendidikan).
    k1 = world.agencies["kesehatan-8101"]
    s.referral(TAMILOUW, "kesehatan.stunting", created=at(day(3)), agency_id=k1, complete_by_hours=72, steps=[
        ("accepted", 10, {"responded_at": at(day(3), 10)}), ("in-progress", 20, {}), ("completed", 50, {})])
    s.referral(TAMILOUW, "kesehatan.stunting", created=at(day(3)), agency_id=k1, complete_by_hours=72, reverse=True,
               steps=[("accepted", 20, {"responded_at": at(day(3), 20)}), ("in-progress", 30, {}),
                      ("completed", 100, {})])
    s.referral(TAMILOUW, "kesehatan.wasting", created=at(day(4)), agency_id=k1,
               steps=[("accepted", 30, {"responded_at": at(day(4), 30)})])
    s.referral(TAMILOUW, "kesehatan.stunting", created=at(day(4)), agency_id=k1,
               steps=[("rejected", 40, {"responded_at": at(day(4), 40)})])
    s.referral(TAMILOUW, "kesehatan.stunting", created=at(day(5)), agency_id=None, steps=[])
    s.referral(TAMILOUW, "kesehatan.stunting", created=at(day(5)), agency_id=k1,
               steps=[("requested", 200, {"overdue_at": at(day(5), 200)})])
    s.referral(SEPA, "pendidikan.ats", created=at(day(6)), agency_id=world.agencies["pendidikan-8101"], steps=[])
    s.referral(TAMILOUW, "kesehatan.stunting", created=at(first - timedelta(days=2)), agency_id=k1, steps=[])
    return world

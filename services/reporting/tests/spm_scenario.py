"""The Sulawesi Utara scenario of the SPM matrix: a hand-countable household set in province 71, which no other
test uses, and the programme events the registry would publish.

Villages: Desa Satu (7101010001) and Desa Dua (7101010002) in Kabupaten Bolaang Mongondow (7101), Desa Tiga
(7102010001) in Kabupaten Minahasa (7102). Everything happens in the month before this one; the SPM year is
that month's year. `EXPECTED` holds the targets counted by hand from the households below.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from services.reporting.tests.factories import Stream, at, previous_month, years_before
from shared.events import programmes as pg
from shared.events.topics import SpmField

SATU, DUA, TIGA = "7101010001", "7101010002", "7102010001"

#: Computed targets by hand, per regency and service type (every type with a computable key of the regency
#: level; the others are 0 here). Bolaang Mongondow: Desa Satu's six households and Desa Dua's two.
EXPECTED: dict[str, dict[str, int]] = {
    "7101": {
        "pendidikan.kab.paud": 1,  # the 5-year-old in h5
        "pendidikan.kab.kesetaraan": 1,  # the 10-year-old not enrolled in h6
        "kesehatan.kab.ibu-hamil": 6, "kesehatan.kab.ibu-bersalin": 6,  # h1-h5 and h7
        "kesehatan.kab.bayi-baru-lahir": 2,  # infants in h1, h2
        "kesehatan.kab.balita": 7,  # 2 infants and 4 toddlers in Satu, a toddler in Dua
        "kesehatan.kab.usia-lanjut": 2,  # 65 in h6, 70 in h8
        "pendidikan.kab.dasar": 2, "kesehatan.kab.usia-pendidikan-dasar": 2,  # the 10-year-old in h6, the 12 in h5
        "kesehatan.kab.usia-produktif": 7,  # the six adults of 30 in Satu, the mother of 28 in Dua
        "pekerjaan-umum.kab.air-minum": 5,  # 6 profiled - 2 safe in Satu; h7's surface water
        "pekerjaan-umum.kab.air-limbah": 2,  # h6 and h7 without a toilet
        "perumahan-rakyat.kab.korban-bencana": 2,  # heavy (h1) and moderate (h2); light does not count
        "trantibumlinmas.kab.informasi-rawan-bencana": 2, "trantibumlinmas.kab.kesiapsiagaan": 2,  # h1, h2
        "trantibumlinmas.kab.evakuasi-bencana": 1, "sosial.kab.korban-bencana": 1,  # h4 displaced
        "sosial.kab.disabilitas-terlantar": 1, "sosial.kab.anak-terlantar": 1, "sosial.kab.lansia-terlantar": 1,
        "sosial.kab.tuna-sosial": 2,  # a homeless adult in h3, a beggar in h4
        "kesehatan.kab.hipertensi": 2,  # systolic 150 in h1, diastolic 90 in h5; 139/89 in h4 does not count
        "kesehatan.kab.diabetes": 1,  # 230 mg/dL in h2; 199 in h4 does not count, nor the toddler's 250 in h1
        "kesehatan.kab.terduga-tbc": 1,  # the long cough in h3
        "kesehatan.kab.odgj-berat": 1,  # the elderly man of 65 in h6
        "perumahan-rakyat.kab.relokasi": 1,  # h3 (h1 recorded not affected)
        "trantibumlinmas.kab.evakuasi-kebakaran": 1,  # h3 (h1 recorded no fire hazard)
    },
    "7102": {"kesehatan.kab.ibu-hamil": 3, "kesehatan.kab.ibu-bersalin": 3, "kesehatan.kab.balita": 3,
             "kesehatan.kab.usia-produktif": 3},  # the three mothers of 25
}


@dataclass
class Sulut:
    stream: Stream
    year: int
    last: date
    agencies: dict[str, uuid.UUID] = field(default_factory=dict)


def build() -> Sulut:
    _, first, last = previous_month()
    day = lambda n: first + timedelta(days=n - 1)  # noqa: E731
    s = Stream(default_time=at(day(1), 8))
    world = Sulut(s, last.year, last)
    for code, name, level, parent in [("71", "Sulawesi Utara", "province", None),
                                      ("7101", "Kabupaten Bolaang Mongondow", "regency", "71"),
                                      ("710101", "Kecamatan Satu", "district", "7101"),
                                      (SATU, "Desa Satu", "village", "710101"), (DUA, "Desa Dua", "village", "710101"),
                                      ("7102", "Kabupaten Minahasa", "regency", "71"),
                                      ("710201", "Kecamatan Tiga", "district", "7102"),
                                      (TIGA, "=Desa Tiga", "village", "710201")]:  # a name like a formula
        s.region(code, name, level, parent)
    world.agencies = {"kesehatan-7101": s.agency("7101", ["kesehatan"], name="Dinas Kesehatan Bolaang Mongondow"),
                      "kesehatan-7102": s.agency("7102", ["kesehatan"], name="Dinas Kesehatan Minahasa"),
                      "sosial-7101": s.agency("7101", ["sosial"], name="Dinas Sosial Bolaang Mongondow"),
                      "baznas-71": s.agency("71", ["sosial", "kesehatan"], name="Baznas Sulawesi Utara")}

    # Desa Satu: six households, an adult (30) in each, pregnant in h1-h5.
    h = [s.household(SATU) for _ in range(6)]
    adults = [s.member(hid, years_before(last, 30), pregnant=i < 5) for i, hid in enumerate(h)]
    for hid in h[:2]:
        s.member(hid, years_before(last, 0, 6))  # infants
    toddlers = [s.member(hid, years_before(last, 2, 6)) for hid in h[:4]]
    s.member(h[4], years_before(last, 5, 2))  # aged 4-6
    s.member(h[4], years_before(last, 12), disability="physical")  # special needs (province: pendidikan khusus)
    child10 = s.member(h[5], years_before(last, 10))
    elderly = s.member(h[5], years_before(last, 65))
    s.profile(h[5], "pendidikan", {"members": {str(child10): {"enrolled": False}}}, observed_on=day(3))
    for i, hid in enumerate(h):
        s.profile(hid, "pekerjaan-umum", {"household": {
            "drinking_water_source": "piped" if i < 2 else "unprotected-well",
            "toilet": "none" if i == 5 else "private-with-septic"}}, observed_on=day(3))
    for hid, damage, relocated in zip(h[:3], ["heavy", "moderate", "light"], [False, None, True], strict=True):
        s.profile(hid, "perumahan-rakyat", {"household": {"disaster_damage": damage,
                                                          "relocation_affected": relocated}}, observed_on=day(3))
    for hid, risk, displaced, fire in [(h[0], ["flood"], False, False), (h[1], ["landslide"], False, None),
                                       (h[2], [], False, True), (h[3], [], True, None)]:
        s.profile(hid, "trantibumlinmas", {"household": {"disaster_risk": risk, "displaced": displaced,
                                                         "fire_hazard": fire}}, observed_on=day(3))
    # The adults' readings (raised from 140/90 mmHg and 200 mg/dL at 18 and over) and the kesehatan flags.
    readings: dict[int, dict[uuid.UUID, dict[str, Any]]] = {
        0: {adults[0]: {"systolic_bp": 150, "diastolic_bp": 85}, toddlers[0]: {"blood_sugar_mg_dl": 250}},
        1: {adults[1]: {"blood_sugar_mg_dl": 230, "systolic_bp": 120, "diastolic_bp": 80}},
        2: {adults[2]: {"long_cough": True, "severe_mental_illness": False}},
        3: {adults[3]: {"systolic_bp": 139, "diastolic_bp": 89, "blood_sugar_mg_dl": 199, "long_cough": False}},
        4: {adults[4]: {"systolic_bp": 130, "diastolic_bp": 90}},
        5: {elderly: {"severe_mental_illness": True}}}
    for i, entries in readings.items():
        s.profile(h[i], "kesehatan", {"members": {str(m): e for m, e in entries.items()}}, observed_on=day(3))
    flags = {h[1]: {adults[1]: ["neglected-disabled"]}, h[2]: {adults[2]: ["homeless"]},
             h[3]: {adults[3]: ["beggar"]}, h[5]: {elderly: ["neglected-elderly"], child10: ["neglected-child"]}}
    for hid, members in flags.items():
        s.profile(hid, "sosial", {"members": {str(m): {"neglect_flags": f} for m, f in members.items()}},
                  observed_on=day(3))

    # Desa Dua: a pregnant woman with a toddler (surface water, no toilet), and an elderly man (70).
    h7, h8 = s.household(DUA), s.household(DUA)
    s.member(h7, years_before(last, 28), pregnant=True)
    s.member(h7, years_before(last, 1, 6))
    s.member(h8, years_before(last, 70), sex="male")
    s.profile(h7, "pekerjaan-umum", {"household": {"drinking_water_source": "surface-water", "toilet": "none"}},
              observed_on=day(3))

    # Desa Tiga: three pregnant women, each with a toddler.
    for _ in range(3):
        hid = s.household(TIGA)
        s.member(hid, years_before(last, 25), pregnant=True)
        s.member(hid, years_before(last, 2))

    # High-risk pregnancies: five open needs in Desa Satu; six referrals completed there by the regency's health
    # office and one still open; one completed in Desa Tiga.
    for hid in h[:5]:
        s.need(hid, SATU, "kesehatan.high-risk-pregnancy", detected=at(day(2), 9))
    k = world.agencies["kesehatan-7101"]
    done: list[tuple[str, float, dict[str, Any]]] = [("accepted", 5, {}), ("completed", 48, {})]
    for n in range(6):
        s.referral(SATU, "kesehatan.high-risk-pregnancy", created=at(day(4 + n)), agency_id=k, steps=done)
    s.referral(SATU, "kesehatan.high-risk-pregnancy", created=at(day(4)), agency_id=k, steps=[])
    s.referral(TIGA, "kesehatan.high-risk-pregnancy", created=at(day(4)),
               agency_id=world.agencies["kesehatan-7102"], steps=done)
    return world


def programme(*, agency_id: uuid.UUID, year: int, service_type: str, regions: list[str],
              budget: dict[str, int], version: int = 1, programme_id: uuid.UUID | None = None,
              status: str = "active", name: str = "PMT ibu hamil KEK") -> pg.ProgrammeData:
    return pg.ProgrammeData(
        programme_id=programme_id or uuid.uuid4(), agency_id=agency_id, name=name,
        spm_field=SpmField(service_type.split(".")[0]), service_type=service_type, region_codes=regions,
        period_start=date(year, 1, 1), period_end=date(year, 12, 31),
        budget=[pg.BudgetLine(source=pg.BudgetSource(k), amount=v) for k, v in budget.items()],
        outputs=[pg.PlannedOutput(code="pmt-packages", name="Paket PMT", unit="paket", target=2000)],
        status=pg.ProgrammeStatus(status), version=version)


def realisation(data: pg.ProgrammeData, month: str, spent: dict[str, int], version: int = 1) -> pg.RealisationData:
    return pg.RealisationData(programme_id=data.programme_id, agency_id=data.agency_id, month=month,
                              outputs=[pg.DeliveredOutput(code="pmt-packages", quantity=100)],
                              spent=[pg.BudgetLine(source=pg.BudgetSource(k), amount=v) for k, v in spent.items()],
                              version=version)


def figure(*, agency_id: uuid.UUID, region: str, year: int, service_type: str, target: int | None,
           version: int) -> pg.TargetFigureData:
    return pg.TargetFigureData(agency_id=agency_id, region_code=region, year=year, service_type=service_type,
                               target=target, version=version)


def add_inputs(stream: Stream, *, agency_id: uuid.UUID, region: str, year: int) -> None:
    """A programme (two versions), two months of realisation and a target figure, as the registry publishes them."""
    data = programme(agency_id=agency_id, year=year, service_type="kesehatan.kab.balita", regions=[region],
                     budget={"apbd-regency": 50_000_000})
    subject = str(data.programme_id)
    stream.add(pg.PROGRAMME_REGISTERED, data, subject=subject)
    stream.add(pg.PROGRAMME_UPDATED, data.model_copy(update={"version": 2, "status": pg.ProgrammeStatus.CLOSED}),
               subject=subject)
    for month in ("01", "02"):
        stream.add(pg.PROGRAMME_REALISED, realisation(data, f"{year}-{month}", {"apbd-regency": 1_000_000}),
                   subject=subject)
    stream.add(pg.TARGET_FIGURE_SET, figure(agency_id=agency_id, region=region, year=year,
                                            service_type="kesehatan.kab.balita", target=12, version=1),
               subject=str(agency_id))

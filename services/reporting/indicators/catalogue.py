"""The indicators of DOMAIN.md §8: key, kind, how a rate is formed, and the English and Indonesian labels.

Kinds: `count` (suppressed below the threshold), `rate` (numerator / denominator, suppressed with either),
`hours` (a median or 90th percentile, suppressed with the count it is taken over).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.events.topics import SpmField


@dataclass(frozen=True)
class Indicator:
    key: str
    kind: str
    label_en: str
    label_id: str
    #: For a rate, the count keys it divides; for hours, the count it is taken over.
    numerator: str | None = None
    denominator: str | None = None

    def label(self, lang: str) -> str:
        return self.label_id if lang == "id" else self.label_en


#: The vaccines of the national schedule (household immunization/schedule.csv) whose coverage is reported: the
#: under-twos given at least one (live) dose of each by the period's end.
VACCINES = [("hb0", "HB-0"), ("bcg", "BCG"), ("opv", "Polio (bOPV)"), ("dpt-hb-hib", "DPT-HB-Hib"),
            ("ipv", "IPV"), ("pcv", "PCV"), ("rotavirus", "Rotavirus"), ("mr", "MR"), ("je", "JE")]

#: The adults' kesehatan readings counted (kesehatan.hypertension, kesehatan.diabetes), from age 18: blood pressure
#: as the household service's hypertension need (services/household/needs/config.py); blood sugar from a casual
#: reading of 200 mg/dL, the diagnostic threshold of diabetes for a random plasma glucose (the household service has
#: no diabetes rule, and the profile records one reading without saying whether fasting).
HYPERTENSION_SYSTOLIC, HYPERTENSION_DIASTOLIC, RAISED_BLOOD_SUGAR_MG_DL, ADULT_FROM_MONTHS = 140, 90, 200, 216


def slug(code: str) -> str:
    return code.replace("-", "_")


def _count(key: str, en: str, id_: str) -> Indicator:
    return Indicator(key, "count", en, id_)


def _rate(key: str, en: str, id_: str, numerator: str, denominator: str) -> Indicator:
    return Indicator(key, "rate", en, id_, numerator, denominator)


def _hours(key: str, en: str, id_: str, basis: str) -> Indicator:
    return Indicator(key, "hours", en, id_, basis)


COVERAGE = [
    _count("coverage.households", "Households registered", "Rumah tangga terdaftar"),
    _count("coverage.members", "Members", "Anggota keluarga"),
    _count("coverage.infant", "Infants (0-11 months)", "Bayi (0-11 bulan)"),
    _count("coverage.toddler", "Toddlers (12-59 months)", "Balita (12-59 bulan)"),
    _count("coverage.school_age", "School-age (5-18 years)", "Usia sekolah (5-18 tahun)"),
    _count("coverage.adult", "Adults (19-59 years)", "Dewasa (19-59 tahun)"),
    _count("coverage.elderly", "Elderly (60+ years)", "Lansia (60+ tahun)"),
    # The SPM band of usia produktif (the SPM matrix's target), overlapping the life-cycle groups above.
    _count("coverage.aged_15_59", "Members aged 15-59 (productive age)", "Anggota usia produktif 15-59 tahun"),
    _count("coverage.pregnant", "Pregnant women", "Ibu hamil"),
]

FIELD_INDICATORS: dict[SpmField, list[Indicator]] = {
    SpmField.KESEHATAN: [
        _count("kesehatan.children_under_five", "Children under five registered (S)", "Balita terdaftar (S)"),
        _count("kesehatan.children_measured", "Children measured (D)", "Balita ditimbang (D)"),
        _rate("kesehatan.measured_rate", "Children measured / registered (D/S)", "Cakupan penimbangan (D/S)",
              "kesehatan.children_measured", "kesehatan.children_under_five"),
        # SKDN: K from the KMS/KIA book seen at the child's latest visit, N from the KMS signal of the latest
        # weighing of the period.
        _count("kesehatan.kms_book_held", "Children with a KMS/KIA book (K)", "Balita memiliki KMS/buku KIA (K)"),
        _rate("kesehatan.kms_book_rate", "Children with a book / registered (K/S)", "Cakupan KMS (K/S)",
              "kesehatan.kms_book_held", "kesehatan.children_under_five"),
        _count("kesehatan.weight_rose", "Children whose weight rose (N)", "Balita naik berat badannya (N)"),
        _rate("kesehatan.weight_rose_rate", "Weight rose / weighed (N/D)", "Balita naik berat badan (N/D)",
              "kesehatan.weight_rose", "kesehatan.children_measured"),
        _count("kesehatan.measured_height", "Children with height-for-age", "Balita diukur TB/U"),
        _count("kesehatan.stunted", "Stunted children", "Balita stunting"),
        _rate("kesehatan.stunting_rate", "Stunting prevalence", "Prevalensi stunting",
              "kesehatan.stunted", "kesehatan.measured_height"),
        _count("kesehatan.measured_weight_height", "Children with weight-for-height", "Balita diukur BB/TB"),
        _count("kesehatan.wasted", "Wasted children", "Balita gizi kurang/buruk (wasting)"),
        _rate("kesehatan.wasting_rate", "Wasting prevalence", "Prevalensi wasting",
              "kesehatan.wasted", "kesehatan.measured_weight_height"),
        _count("kesehatan.measured_weight", "Children with weight-for-age", "Balita diukur BB/U"),
        _count("kesehatan.underweight", "Underweight children", "Balita berat badan kurang"),
        _rate("kesehatan.underweight_rate", "Underweight prevalence", "Prevalensi berat badan kurang",
              "kesehatan.underweight", "kesehatan.measured_weight"),
        _count("kesehatan.children_under_two", "Children under two", "Baduta"),
        _count("kesehatan.immunization_complete", "Under-twos immunised for age", "Baduta imunisasi lengkap"),
        _rate("kesehatan.immunization_rate", "Immunisation complete for age", "Cakupan imunisasi lengkap",
              "kesehatan.immunization_complete", "kesehatan.children_under_two"),
        *(indicator for code, name in VACCINES for indicator in (
            _count(f"kesehatan.vaccinated_{slug(code)}", f"Under-twos given {name}", f"Baduta mendapat {name}"),
            _rate(f"kesehatan.vaccinated_{slug(code)}_rate", f"{name} coverage of under-twos",
                  f"Cakupan {name} baduta", f"kesehatan.vaccinated_{slug(code)}", "kesehatan.children_under_two"))),
        # The kesehatan profile's adult readings and flags (the SPM matrix's targets).
        _count("kesehatan.hypertension", "Adults with raised blood pressure", "Dewasa dengan tekanan darah tinggi"),
        _count("kesehatan.diabetes", "Adults with raised blood sugar", "Dewasa dengan gula darah tinggi"),
        _count("kesehatan.severe_mental_illness", "Members with severe mental illness", "ODGJ berat"),
        _count("kesehatan.long_cough", "Members coughing two weeks or more", "Batuk 2 minggu atau lebih (terduga TBC)"),
    ],
    SpmField.PENDIDIKAN: [
        _count("pendidikan.aged_7_18", "Members aged 7-18", "Anggota usia 7-18 tahun"),
        _count("pendidikan.out_of_school", "Out-of-school children", "Anak tidak sekolah"),
        _rate("pendidikan.out_of_school_rate", "Out-of-school rate", "Persentase anak tidak sekolah",
              "pendidikan.out_of_school", "pendidikan.aged_7_18"),
        _count("pendidikan.aged_4_6", "Members aged 4-6", "Anggota usia 4-6 tahun"),
        # The SPM bands of pendidikan dasar (SD/SMP) and menengah (SMA/SMK), the SPM matrix's targets.
        _count("pendidikan.aged_7_15", "Members aged 7-15", "Anggota usia 7-15 tahun"),
        _count("pendidikan.aged_16_18", "Members aged 16-18", "Anggota usia 16-18 tahun"),
        _count("pendidikan.paud_enrolled", "Aged 4-6 enrolled (PAUD or school)", "Usia 4-6 ikut PAUD/sekolah"),
        _rate("pendidikan.paud_rate", "PAUD participation", "Partisipasi PAUD",
              "pendidikan.paud_enrolled", "pendidikan.aged_4_6"),
        _count("pendidikan.special_needs_7_18", "Members aged 7-18 with a disability",
               "Anggota usia 7-18 tahun penyandang disabilitas"),
    ],
    SpmField.PEKERJAAN_UMUM: [
        _count("pekerjaan-umum.households_profiled", "Households profiled", "Rumah tangga terdata"),
        _count("pekerjaan-umum.safe_water", "Households with safe drinking water", "Rumah tangga air minum layak"),
        _rate("pekerjaan-umum.safe_water_rate", "Safe drinking water", "Akses air minum layak",
              "pekerjaan-umum.safe_water", "pekerjaan-umum.households_profiled"),
        _count("pekerjaan-umum.safe_sanitation", "Households with safe sanitation", "Rumah tangga sanitasi layak"),
        _rate("pekerjaan-umum.safe_sanitation_rate", "Safe sanitation", "Akses sanitasi layak",
              "pekerjaan-umum.safe_sanitation", "pekerjaan-umum.households_profiled"),
        _count("pekerjaan-umum.open_defecation", "Open defecation households", "Rumah tangga BABS"),
    ],
    SpmField.PERUMAHAN_RAKYAT: [
        _count("perumahan-rakyat.households_profiled", "Households profiled", "Rumah tangga terdata"),
        _count("perumahan-rakyat.rtlh", "Uninhabitable houses (RTLH)", "Rumah tidak layak huni (RTLH)"),
        _rate("perumahan-rakyat.rtlh_rate", "RTLH share", "Persentase RTLH",
              "perumahan-rakyat.rtlh", "perumahan-rakyat.households_profiled"),
        _count("perumahan-rakyat.disaster_damaged", "Disaster-damaged houses", "Rumah rusak akibat bencana"),
        _count("perumahan-rakyat.relocation_affected", "Households affected by relocation",
               "Rumah tangga terdampak relokasi"),
    ],
    SpmField.TRANTIBUMLINMAS: [
        _count("trantibumlinmas.households_profiled", "Households profiled", "Rumah tangga terdata"),
        _count("trantibumlinmas.at_risk", "Households at disaster risk", "Rumah tangga rawan bencana"),
        _count("trantibumlinmas.informed", "At-risk households informed", "Rumah tangga rawan teredukasi"),
        _rate("trantibumlinmas.informed_rate", "Preparedness information", "Cakupan edukasi kesiapsiagaan",
              "trantibumlinmas.informed", "trantibumlinmas.at_risk"),
        _count("trantibumlinmas.displaced", "Displaced households", "Rumah tangga mengungsi"),
        _count("trantibumlinmas.fire_hazard", "Households with a fire hazard", "Rumah tangga rawan kebakaran"),
    ],
    SpmField.SOSIAL: [
        _count("sosial.decile_1_4", "Households in deciles 1-4", "Rumah tangga desil 1-4"),
        _count("sosial.decile_1_4_with_aid", "Deciles 1-4 with at least one aid", "Desil 1-4 menerima bansos"),
        _rate("sosial.aid_coverage_rate", "Aid coverage of deciles 1-4", "Cakupan bansos desil 1-4",
              "sosial.decile_1_4_with_aid", "sosial.decile_1_4"),
        _count("sosial.neglected_child", "Neglected children", "Anak terlantar"),
        _count("sosial.neglected_elderly", "Neglected elderly", "Lansia terlantar"),
        _count("sosial.neglected_disabled", "Neglected persons with disabilities", "Penyandang disabilitas terlantar"),
        _count("sosial.homeless", "Homeless", "Gelandangan"),
        _count("sosial.beggar", "Beggars", "Pengemis"),
    ],
}

#: Services at the posyandu's opening days, per life-cycle group (flows of the period; `pregnant` counts the visits of
#: pregnant women again).
SERVICES = [
    _count("services.sessions", "Opening days held", "Hari buka posyandu"),
    _count("services.visits", "Visits", "Kunjungan"),
    _count("services.infant", "Visits of infants", "Kunjungan bayi"),
    _count("services.toddler", "Visits of toddlers", "Kunjungan balita"),
    _count("services.school_age", "Visits of school-age members", "Kunjungan usia sekolah dan remaja"),
    _count("services.adult", "Visits of adults", "Kunjungan dewasa"),
    _count("services.elderly", "Visits of the elderly", "Kunjungan lansia"),
    _count("services.pregnant", "Visits of pregnant women", "Kunjungan ibu hamil"),
]

NEEDS = [
    _count("needs.detected", "Needs detected", "Kebutuhan terdeteksi"),
    _count("needs.resolved", "Needs resolved", "Kebutuhan terselesaikan"),
    _count("needs.open", "Needs open at period end", "Kebutuhan terbuka akhir periode"),
]

REFERRALS = [
    _count("referrals.created", "Referrals created", "Rujukan dibuat"),
    _count("referrals.accepted", "Accepted", "Diterima"),
    _count("referrals.rejected", "Rejected", "Ditolak"),
    _count("referrals.completed", "Completed", "Selesai"),
    _count("referrals.failed", "Failed", "Gagal"),
    _count("referrals.cancelled", "Cancelled", "Dibatalkan"),
    _count("referrals.open", "Open", "Masih terbuka"),
    _count("referrals.overdue", "Overdue", "Melewati tenggat"),
    _count("referrals.unrouted", "Unrouted", "Belum ada OPD tujuan"),
    _count("referrals.responded", "Responded", "Sudah direspons"),
    _hours("referrals.response_hours_median", "Median hours to response", "Median jam hingga respons",
           "referrals.responded"),
    _hours("referrals.response_hours_p90", "90th percentile hours to response", "Persentil 90 jam hingga respons",
           "referrals.responded"),
    _hours("referrals.completion_hours_median", "Median hours to completion", "Median jam hingga selesai",
           "referrals.completed"),
    _hours("referrals.completion_hours_p90", "90th percentile hours to completion",
           "Persentil 90 jam hingga selesai", "referrals.completed"),
    _count("referrals.completed_within_sla", "Completed within SLA", "Selesai sesuai SLA"),
    _rate("referrals.sla_compliance_rate", "SLA compliance", "Kepatuhan SLA",
          "referrals.completed_within_sla", "referrals.completed"),
]

ALL: dict[str, Indicator] = {i.key: i for i in
                             [*COVERAGE, *SERVICES, *(i for f in FIELD_INDICATORS.values() for i in f), *NEEDS,
                              *REFERRALS]}


#: Counts of one row that sum to another of it: the life-cycle groups make up the members, and every referral
#: created is open or closed one of four ways (complementary suppression protects these as it does sub-regions).
PARTITIONS: list[tuple[str, list[str]]] = [
    ("coverage.members", ["coverage.infant", "coverage.toddler", "coverage.school_age", "coverage.adult",
                          "coverage.elderly"]),
    ("services.visits", ["services.infant", "services.toddler", "services.school_age", "services.adult",
                         "services.elderly"]),
    ("referrals.created", ["referrals.open", "referrals.completed", "referrals.failed", "referrals.cancelled",
                           "referrals.rejected"]),
]


def indicators_for(fields: list[SpmField]) -> list[Indicator]:
    """The columns of the indicator table for the given fields (coverage and services always; needs and referrals
    of them)."""
    return [*COVERAGE, *SERVICES, *(i for f in SpmField if f in fields for i in FIELD_INDICATORS[f]), *NEEDS,
            *REFERRALS]

"""The dashboard's own words in English and Indonesian, in one place (the tables' column labels come from the
indicator catalogue and the report services, by the same `lang`)."""

from __future__ import annotations

from typing import Literal

Lang = Literal["id", "en"]

LABELS: dict[str, tuple[str, str]] = {
    "title": ("Posyandu SPM dashboard", "Dasbor SPM Posyandu"),
    "token": ("Bearer token", "Token akses"),
    "period": ("Period (YYYY-MM, YYYY-Qn, YYYY)", "Periode (YYYY-MM, YYYY-Qn, YYYY)"),
    "show": ("Show", "Tampilkan"),
    "region": ("Region", "Wilayah"),
    "all": ("(all of it)", "(seluruhnya)"),
    "level.nation": ("Country", "Negara"),
    "level.province": ("Province", "Provinsi"),
    "level.regency": ("Regency / city", "Kabupaten/kota"),
    "level.district": ("District", "Kecamatan"),
    "level.village": ("Village", "Desa/kelurahan"),
    "indicators": ("Indicators", "Indikator"),
    "matrix": ("Cross-agency matrix", "Matriks lintas OPD"),
    "timeline": ("Referrals by field and status over time", "Rujukan per bidang dan status dari waktu ke waktu"),
    "ranking": ("Villages by open needs", "Desa/kelurahan menurut kebutuhan terbuka"),
    "loading": ("Loading\u2026", "Memuat\u2026"),
    "failed": ("Could not load: ", "Gagal memuat: "),
    "updated": ("Updated ", "Diperbarui "),
    "every": ("refreshes every {n} s", "diperbarui tiap {n} detik"),
    "group.open": ("open", "terbuka"),
    "group.accepted": ("accepted", "diterima"),
    "group.completed": ("completed", "selesai"),
    "group.closed": ("closed", "ditutup"),
    "bars": ("bars per month: {fields} (suppressed cells are not drawn)",
             "batang per bulan: {fields} (sel yang disamarkan tidak digambar)"),
}


def labels(lang: Lang) -> dict[str, str]:
    return {key: id_ if lang == "id" else en for key, (en, id_) in LABELS.items()}

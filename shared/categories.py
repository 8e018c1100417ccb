"""The referral categories of DOMAIN.md §6 (code -> SPM field, Indonesian label, default urgency).

Part of the public contract: the household service detects needs in these categories, the referral service
routes and times them, and reporting counts them.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

from shared.events.topics import SpmField

__all__ = ["CATEGORIES", "MANUAL_ONLY_CATEGORIES", "Category", "Urgency"]


class Urgency(StrEnum):
    EMERGENCY = "emergency"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class Category(NamedTuple):
    spm_field: SpmField
    label: str
    #: The table's urgency; for the two-level categories the lower one (the rule raises it: underweight at BGM,
    #: sanitation at open defecation).
    default_urgency: Urgency


_P, _K, _PU, _PR, _T, _S = (SpmField.PENDIDIKAN, SpmField.KESEHATAN, SpmField.PEKERJAAN_UMUM,
                            SpmField.PERUMAHAN_RAKYAT, SpmField.TRANTIBUMLINMAS, SpmField.SOSIAL)
_E, _H, _N, _L = Urgency.EMERGENCY, Urgency.HIGH, Urgency.NORMAL, Urgency.LOW

#: Every referral category of DOMAIN.md §6: code -> (field, Indonesian label, default urgency).
CATEGORIES: Mapping[str, Category] = MappingProxyType({
    "pendidikan.ats": Category(_P, "Anak tidak sekolah", _N),
    "pendidikan.paud": Category(_P, "Belum ikut PAUD", _L),
    "pendidikan.dropout-risk": Category(_P, "Rawan putus sekolah", _N),
    "pendidikan.kesetaraan": Category(_P, "Pendidikan kesetaraan", _L),
    "pendidikan.special-needs": Category(_P, "Layanan pendidikan khusus", _H),
    "kesehatan.severe-malnutrition": Category(_K, "Gizi buruk", _E),
    "kesehatan.wasting": Category(_K, "Gizi kurang", _H),
    "kesehatan.stunting": Category(_K, "Stunting", _H),
    "kesehatan.underweight": Category(_K, "Berat badan kurang", _N),
    "kesehatan.immunization": Category(_K, "Imunisasi belum lengkap", _N),
    "kesehatan.high-risk-pregnancy": Category(_K, "Ibu hamil risiko tinggi", _H),
    "kesehatan.hypertension": Category(_K, "Hipertensi", _N),
    "kesehatan.tb-suspect": Category(_K, "Terduga TBC", _H),
    "kesehatan.mental-health": Category(_K, "ODGJ berat", _H),
    "pekerjaan-umum.drinking-water": Category(_PU, "Akses air minum tidak layak", _N),
    "pekerjaan-umum.sanitation": Category(_PU, "Tidak ada jamban sehat", _N),
    "pekerjaan-umum.wastewater": Category(_PU, "Air limbah tidak terkelola", _L),
    "perumahan-rakyat.rtlh": Category(_PR, "Rumah tidak layak huni", _N),
    "perumahan-rakyat.disaster-damage": Category(_PR, "Rumah rusak akibat bencana", _H),
    "perumahan-rakyat.relocation": Category(_PR, "Terdampak relokasi", _N),
    "trantibumlinmas.preparedness": Category(_T, "Edukasi kesiapsiagaan bencana", _L),
    "trantibumlinmas.displaced": Category(_T, "Pengungsi / korban bencana", _E),
    "trantibumlinmas.fire-hazard": Category(_T, "Rawan kebakaran", _N),
    "trantibumlinmas.public-order": Category(_T, "Gangguan ketenteraman", _N),
    "sosial.neglected-child": Category(_S, "Anak terlantar", _H),
    "sosial.neglected-elderly": Category(_S, "Lansia terlantar", _H),
    "sosial.neglected-disabled": Category(_S, "Penyandang disabilitas terlantar", _H),
    "sosial.homeless": Category(_S, "Gelandangan dan pengemis", _N),
    "sosial.aid-exclusion": Category(_S, "Belum menerima bansos", _N),
    "sosial.aid-overlap": Category(_S, "Verifikasi tumpang tindih bantuan", _L),
    "sosial.health-insurance": Category(_S, "Belum punya JKN", _N),
    "sosial.disaster-victim": Category(_S, "Perlindungan sosial korban bencana", _H),
})

#: Categories no rule detects: referrals are made by hand.
MANUAL_ONLY_CATEGORIES: frozenset[str] = frozenset({"trantibumlinmas.public-order"})

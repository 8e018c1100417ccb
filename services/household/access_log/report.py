"""The printable access report a kader hands to the family: who read what of their data, when and why.

HTML with print CSS (the browser prints it, or saves it as PDF), labels in Indonesian, times in the village's
local time. Every recorded value is escaped: an actor or purpose is text from another system, never markup.
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape
from typing import Any

from services.household.access_log.service import REPORT_MAX_ENTRIES, Report
from services.household.identifiers import mask_kk
from services.household.tables import Household
from shared.region_codes import local_zone

ROLES = {"admin": "Administrator sistem", "kader": "Kader posyandu", "opd": "Petugas dinas (OPD)",
         "pembina": "Pembina wilayah", "service": "Layanan sistem"}
SERVICES = {"household": "Data keluarga", "referral": "Rujukan", "reporting": "Pelaporan", "registry": "Registri"}
RESOURCES = {"household": "Data keluarga dan anggota", "referral": "Rujukan (alasan dan bukti)",
             "referral.notes": "Catatan rujukan", "referral.history": "Riwayat rujukan",
             "needs": "Kebutuhan layanan", "measurements": "Hasil penimbangan dan pengukuran anak",
             "duplicate-flag": "Pemeriksaan data ganda", "household.access-log": "Catatan akses ini",
             "household.access-report": "Laporan akses ini"}

STYLE = """
body { font-family: "Noto Sans", Arial, sans-serif; font-size: 11pt; color: #000; margin: 2em; }
h1 { font-size: 16pt; margin-bottom: 0.2em; }
dl.head { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; margin: 1em 0; }
dl.head dt { font-weight: bold; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #555; padding: 0.3em 0.5em; text-align: left; vertical-align: top; }
th { background: #eee; }
tr { page-break-inside: avoid; }
thead { display: table-header-group; }
.note { font-size: 9pt; color: #333; margin-top: 1em; }
@media print {
  body { margin: 0; }
  @page { size: A4 landscape; margin: 1.5cm; }
  th { background: none; }
}
"""


def _resource(resource_type: str) -> str:
    if resource_type in RESOURCES:
        return RESOURCES[resource_type]
    if resource_type.startswith("profile."):
        return f"Profil bidang {resource_type.split('.')[1]}" + (" (riwayat)" if resource_type.endswith(".history")
                                                                 else "")
    return resource_type


def _time(at: datetime, zone: timezone) -> str:
    local = at.astimezone(zone)
    return f"{local:%d-%m-%Y %H:%M} {zone.tzname(None)}"


def _actor(entry: dict[str, Any]) -> str:
    parts = [ROLES.get(entry["actor_role"], entry["actor_role"])]
    if entry["actor_agency_name"]:
        parts.append(entry["actor_agency_name"])
    parts.append(f"ID pengguna: {entry['actor']}")
    return "<br>".join(escape(p) for p in parts)


def _row(entry: dict[str, Any], zone: timezone) -> str:
    fields = ", ".join(entry["fields"] or [])
    what = escape(_resource(entry["resource_type"])) + (f"<br><small>{escape(fields)}</small>" if fields else "")
    cells = [escape(_time(entry["at"], zone)), _actor(entry),
             escape(SERVICES.get(entry["service"], entry["service"])), what, escape(entry["purpose"]),
             escape(entry["request_id"] or "-")]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _period(report: Report, zone: timezone) -> str:
    since, until = report.period.since, report.period.until
    start = _time(since, zone) if since else "awal pencatatan"
    end = _time(until, zone) if until else "saat dicetak"
    return f"{start} s.d. {end}"


def _address(household: Household) -> str:
    parts = [household.address or "-"]
    if household.rt or household.rw:
        parts.append(f"RT {household.rt or '-'} / RW {household.rw or '-'}")
    return ", ".join(parts)


def render(report: Report) -> str:
    """The report as a complete HTML page."""
    household = report.household
    zone = local_zone(household.village_code)
    rows = "".join(_row(e, zone) for e in report.entries) or (
        '<tr><td colspan="6">Tidak ada akses tercatat pada periode ini.</td></tr>')
    cut = (f'<p class="note">Menampilkan {len(report.entries)} akses terbaru dari {report.total}; '
           f"persempit periode untuk melihat sisanya (paling banyak {REPORT_MAX_ENTRIES} per laporan).</p>"
           if report.total > len(report.entries) else "")
    return f"""<!DOCTYPE html>
<html lang="id">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Laporan Akses Data Keluarga</title>
<style>{STYLE}</style>
</head>
<body>
<h1>Laporan Akses Data Keluarga</h1>
<p>Daftar siapa yang membaca data keluarga Anda, kapan, data apa, dan untuk tujuan apa
(hak akses subjek data, UU No. 27 Tahun 2022 tentang Pelindungan Data Pribadi).</p>
<dl class="head">
<dt>Nomor KK</dt><dd>{escape(mask_kk(household.kk_number))}</dd>
<dt>Alamat</dt><dd>{escape(_address(household))}</dd>
<dt>Kode desa/kelurahan</dt><dd>{escape(household.village_code)}</dd>
<dt>Periode</dt><dd>{escape(_period(report, zone))}</dd>
<dt>Dicetak</dt><dd>{escape(_time(report.printed_at, zone))}</dd>
<dt>Jumlah akses</dt><dd>{report.total}</dd>
</dl>
<table>
<thead><tr><th>Waktu</th><th>Siapa</th><th>Layanan</th><th>Data yang dibaca</th><th>Tujuan</th>
<th>ID permintaan</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
{cut}
<p class="note">Tujuan dicatat sebagaimana ditulis oleh sistem yang membaca data. Pertanyaan tentang akses ini dapat
disampaikan kepada kader posyandu atau pengelola data dengan menyebutkan ID permintaan.</p>
</body>
</html>
"""

"""The demo's programmes (issue 15): for each demo regency, programmes of its health and housing agencies and of
a partner organisation (Baznas, kind `partner`, field sosial), and one of each province's health agency, with
their realisation for the first months of the demo year.

Loaded through the public API: programmes and the partner with fixed Idempotency-Keys, and only the months not
reported yet, so that a second run changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

DEMO_YEAR = 2026
REALISED_MONTHS = ("2026-01", "2026-02", "2026-03")
PARTNER = ("Baznas", ["sosial"])

#: (agency label as the demo registers it, programme name, service type, budget lines, planned outputs)
REGENCY_PROGRAMMES: list[tuple[str, str, str, list[tuple[str, int]], list[tuple[str, str, str, int]]]] = [
    ("Dinas Kesehatan", "PMT Lokal Balita Gizi Kurang", "kesehatan.kab.balita",
     [("apbd-regency", 450_000_000), ("apbdes", 150_000_000)],
     [("pmt-packages", "Paket PMT lokal untuk balita", "paket", 2000),
      ("kelas-ibu-balita", "Kelas ibu balita di posyandu", "kelas", 24)]),
    ("Dinas PUPR dan Perumahan", "Rehabilitasi Rumah Tidak Layak Huni Korban Bencana",
     "perumahan-rakyat.kab.korban-bencana", [("apbd-regency", 1_250_000_000), ("csr", 250_000_000)],
     [("rtlh-rehabilitated", "Rumah tidak layak huni direhabilitasi", "rumah", 50)]),
    ("Baznas", "Peduli Lansia Terlantar", "sosial.kab.lansia-terlantar", [("zakat", 300_000_000)],
     [("paket-sembako-lansia", "Paket sembako lansia terlantar", "paket", 600),
      ("kunjungan-rumah", "Kunjungan pendampingan ke rumah", "kunjungan", 120)]),
]
PROVINCE_PROGRAMMES = [
    ("Dinas Kesehatan Provinsi", "Layanan Gizi dan Kesehatan Pengungsi Bencana", "kesehatan.prov.krisis-bencana",
     [("apbd-province", 800_000_000)], [("pmt-packages", "Paket PMT bagi pengungsi", "paket", 5000)]),
]

Check = Callable[[httpx.Response], dict[str, Any]]


def _realised(outputs: list[tuple[str, str, str, int]], budget: list[tuple[str, int]], month: int) -> dict[str, Any]:
    """A month's figures: about a twelfth of each plan, a little more each month."""
    share = 10 + month
    return {"outputs": [{"code": code, "quantity": target * share // 144} for code, _, _, target in outputs],
            "spent": [{"source": source, "amount": amount * share // 144 // 1000 * 1000} for source, amount in budget]}


async def load_programmes(client: httpx.AsyncClient, auth: dict[str, str], regions: list[tuple[str, str]],
                          agencies: dict[str, str], check: Check) -> dict[str, str]:
    """Registers the partners and programmes of the given demo regions (agencies: the demo's, by name) and their
    realisation; returns the programme ids by programme name and region."""
    names = dict(regions)
    plans: list[tuple[str, str, str, str, list[str], list[tuple[str, int]], list[tuple[str, str, str, int]]]] = []
    for code, name in regions:
        if len(code) == 4:
            baznas = check(await client.post("/api/v1/agencies", headers={
                **auth, "Idempotency-Key": f"demo-partner-{code}-baznas"}, json={
                "name": f"Baznas {name}"[:200], "level": "regency", "jurisdiction_code": code,
                "spm_fields": PARTNER[1], "kind": "partner", "email": f"baznas.{code}@example.or.id"}))
            agencies[f"Baznas {name}"] = baznas["id"]
            villages = sorted(c for c, _ in regions if len(c) == 10 and c.startswith(code))[:3]
            plans += [(code, f"{label} {name}", title, service_type, villages or [code], budget, outputs)
                      for label, title, service_type, budget, outputs in REGENCY_PROGRAMMES]
        elif len(code) == 2:
            plans += [(code, f"{label} {names[code]}", title, service_type, [code], budget, outputs)
                      for label, title, service_type, budget, outputs in PROVINCE_PROGRAMMES]
    ids: dict[str, str] = {}
    for code, agency, title, service_type, region_codes, budget, outputs in plans:
        programme_name = f"{title} {names[code]}"[:200]
        body: dict[str, Any] = {"agency_id": agencies[agency], "name": programme_name,
                "spm_field": service_type.split(".")[0], "service_type": service_type, "region_codes": region_codes,
                "period_start": f"{DEMO_YEAR}-01-01", "period_end": f"{DEMO_YEAR}-12-31",
                "budget": [{"source": s, "amount": a} for s, a in budget],
                "outputs": [{"code": c, "name": n, "unit": u, "target": t} for c, n, u, t in outputs]}
        programme = check(await client.post("/api/v1/programmes", json=body, headers={
            **auth, "Idempotency-Key": f"demo-programme-{code}-{service_type}"}))
        ids[programme_name] = programme["id"]
        url = f"/api/v1/programmes/{programme['id']}/realisations"
        reported = {r["month"] for r in check(await client.get(url, headers=auth))["items"]}
        for month in REALISED_MONTHS:
            if month not in reported:
                check(await client.put(f"{url}/{month}", json=_realised(outputs, budget, int(month[5:])),
                                       headers=auth))
    return ids

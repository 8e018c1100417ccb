"""The registry's demo data for `make run`: the demo regions, their agencies and a few posyandu with their schedule,
and the agencies' and a partner organisation's programmes with their first months' realisation (demo/programmes.py).

Loaded through the public API with fixed Idempotency-Keys, so a second run replays instead of
duplicating, and the ids come back the same.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from services.registry.demo.programmes import load_programmes

REGIONS_CSV = Path(__file__).with_name("regions.csv")

#: Regency/city-level agencies registered for each demo regency, with the fields they own.
REGENCY_AGENCIES = [
    ("Dinas Kesehatan", ["kesehatan"]),
    ("Dinas Pendidikan", ["pendidikan"]),
    # A merged agency owning two fields, as DOMAIN.md §2 describes.
    ("Dinas PUPR dan Perumahan", ["pekerjaan-umum", "perumahan-rakyat"]),
    ("Satuan Polisi Pamong Praja dan BPBD", ["trantibumlinmas"]),
    ("Dinas Sosial", ["sosial"]),
]
PROVINCE_AGENCIES = [
    ("Dinas Kesehatan Provinsi", ["kesehatan"]),
    ("Dinas Pendidikan Provinsi", ["pendidikan"]),
    ("BPBD Provinsi", ["trantibumlinmas"]),
    ("Dinas Sosial Provinsi", ["sosial"]),
]
POSYANDU_NAMES = ["Melati", "Mawar", "Anggrek"]
#: Every demo posyandu opens on the second Tuesday of the month (the household demo's sessions fall on these days).
DEMO_SCHEDULE = {"rule": {"ordinal": "second", "weekday": "tuesday"}}
CADRES = [("Siti Rahmawati", ["kesehatan", "pendidikan", "sosial"]),
          ("Budi Santoso", ["pekerjaan-umum", "perumahan-rakyat", "trantibumlinmas"])]


@dataclass
class DemoIds:
    posyandu: dict[str, str] = field(default_factory=dict)
    agencies: dict[str, str] = field(default_factory=dict)
    programmes: dict[str, str] = field(default_factory=dict)


def demo_regions() -> list[tuple[str, str]]:
    with REGIONS_CSV.open(encoding="utf-8") as f:
        return [(row["kode"].replace(".", ""), row["nama"]) for row in csv.DictReader(f)]


def _check(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.request.url}: {response.status_code} {response.text}")
    body: dict[str, Any] = response.json()
    return body


async def load(client: httpx.AsyncClient, admin_token: str) -> DemoIds:
    """Load the demo set through the API of a running registry; returns the ids of what it registered."""
    auth = {"Authorization": f"Bearer {admin_token}"}
    _check(await client.post("/api/v1/regions/import", content=REGIONS_CSV.read_bytes(),
                             headers={**auth, "Content-Type": "text/csv"}, timeout=120))
    regions = demo_regions()
    names = dict(regions)
    ids = DemoIds()
    for code, name in regions:
        templates = PROVINCE_AGENCIES if len(code) == 2 else REGENCY_AGENCIES if len(code) == 4 else []
        for label, fields in templates:
            agency_name = f"{label} {name}"
            body = {"name": agency_name[:200], "level": "province" if len(code) == 2 else "regency",
                    "jurisdiction_code": code, "spm_fields": fields,
                    "email": f"opd.{code}@example.go.id"}
            agency = _check(await client.post("/api/v1/agencies", json=body,
                                              headers={**auth, "Idempotency-Key": f"demo-agency-{code}-{label}"}))
            ids.agencies[agency_name] = agency["id"]
    ids.programmes = await load_programmes(client, auth, regions, ids.agencies, _check)
    for regency in sorted(code for code, _ in regions if len(code) == 4):
        villages = sorted(code for code, _ in regions if len(code) == 10 and code.startswith(regency))[:3]
        for village, flower in zip(villages, POSYANDU_NAMES, strict=False):
            code = f"P{village}-001"
            body = {"code": code, "name": f"Posyandu {flower} {names[village]}", "village_code": village,
                    "address": f"Balai Warga {names[village]}", "service_days": ["tuesday"]}
            posyandu = _check(await client.post("/api/v1/posyandu", json=body,
                                                headers={**auth, "Idempotency-Key": f"demo-posyandu-{code}"}))
            ids.posyandu[code] = posyandu["id"]
            for cadre_name, duties in CADRES:
                _check(await client.post(f"/api/v1/posyandu/{posyandu['id']}/cadres",
                                         json={"name": cadre_name, "duties": duties, "phone": "+62 812 0000 0000"},
                                         headers={**auth, "Idempotency-Key": f"demo-cadre-{code}-{cadre_name}"}))
            # A PUT of the same schedule again changes nothing: no new version, no event.
            _check(await client.put(f"/api/v1/posyandu/{posyandu['id']}/schedule", json=DEMO_SCHEDULE, headers=auth))
    return ids

"""Synthetic but valid rows: unique NIK and KK numbers (DESIGN rules), households of 3-4 members."""

from __future__ import annotations

import itertools
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

ADULT_START, ADULT_SPAN = date(1960, 1, 1), 14_000
CHILD_SPAN = 1_700
KK_SPAN = 6_000


class Identifiers:
    """NIK: district(6) + day(+40 for women) + month + yy + serial(4); KK: district(6) + ddmmyy + serial(4).

    A counter per date range walks the dates first and the serial second, so every number is unique.
    """

    def __init__(self, district: str, today: date) -> None:
        self.district = district
        self.today = today
        self._adult = itertools.count()
        self._child = itertools.count()
        self._kk = itertools.count()

    def _nik(self, birth: date, sex: str, serial: int) -> str:
        day = birth.day + (40 if sex == "female" else 0)
        return f"{self.district}{day:02d}{birth:%m%y}{serial:04d}"

    def adult(self, sex: str) -> tuple[date, str]:
        i = next(self._adult)
        birth = ADULT_START + timedelta(days=i % ADULT_SPAN)
        return birth, self._nik(birth, sex, i // ADULT_SPAN + 1)

    def child(self, sex: str) -> tuple[date, str]:
        i = next(self._child)
        birth = self.today - timedelta(days=30 + i % CHILD_SPAN)
        return birth, self._nik(birth, sex, i // CHILD_SPAN + 1)

    def kk(self) -> str:
        i = next(self._kk)
        issued = self.today - timedelta(days=10 + i % KK_SPAN)
        return f"{self.district}{issued:%d%m%y}{i // KK_SPAN + 1:04d}"


@dataclass
class MemberRow:
    id: uuid.UUID
    nik: str
    name: str
    sex: str
    birth_date: date
    relationship: str


@dataclass
class HouseholdRow:
    id: uuid.UUID
    kk_number: str
    village_code: str
    posyandu_id: str
    members: list[MemberRow]

    def body(self) -> dict[str, Any]:
        """The POST /api/v1/households body."""
        return {"kk_number": self.kk_number, "village_code": self.village_code, "posyandu_id": self.posyandu_id,
                "address": "Jl. Bench No. 1", "rt": "001", "rw": "002",
                "members": [{"nik": m.nik, "name": m.name, "sex": m.sex, "birth_date": m.birth_date.isoformat(),
                             "relationship": m.relationship} for m in self.members]}

    def import_rows(self) -> list[dict[str, Any]]:
        """One import row (NDJSON object) per member."""
        head = {"kk_number": self.kk_number, "village_code": self.village_code, "posyandu_id": self.posyandu_id,
                "address": "Jl. Bench No. 1", "rt": "001", "rw": "002"}
        return [{**head, "nik": m.nik, "name": m.name, "sex": m.sex, "birth_date": m.birth_date.isoformat(),
                 "relationship": m.relationship} for m in self.members]


def households(ids: Identifiers, village: str, posyandu_id: str, count: int, seed: int) -> list[HouseholdRow]:
    """`count` households of 3 or 4 members: head, spouse, one or two children."""
    rnd = random.Random(seed)
    out: list[HouseholdRow] = []
    for n in range(count):
        head_birth, head_nik = ids.adult("male")
        spouse_birth, spouse_nik = ids.adult("female")
        members = [MemberRow(uuid.uuid4(), head_nik, f"Kepala {n}", "male", head_birth, "head"),
                   MemberRow(uuid.uuid4(), spouse_nik, f"Istri {n}", "female", spouse_birth, "spouse")]
        for c in range(1 + rnd.randrange(2)):
            sex = rnd.choice(("male", "female"))
            birth, nik = ids.child(sex)
            members.append(MemberRow(uuid.uuid4(), nik, f"Anak {n}-{c}", sex, birth, "child"))
        out.append(HouseholdRow(uuid.uuid4(), ids.kk(), village, posyandu_id, members))
    return out


def households_for_members(ids: Identifiers, village: str, posyandu_id: str, members: int,
                           seed: int) -> list[HouseholdRow]:
    """Households until exactly `members` members (the last one trimmed to at least 1)."""
    rows = households(ids, village, posyandu_id, members // 3 + 2, seed)
    out: list[HouseholdRow] = []
    total = 0
    for h in rows:
        if total >= members:
            break
        h.members = h.members[: members - total]
        total += len(h.members)
        out.append(h)
    return out


def now() -> datetime:
    return datetime.now(UTC)

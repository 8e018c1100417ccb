"""Kemendagri region codes: levels, parents and kinds, dotted (official lists) or plain (this API)."""

from __future__ import annotations

import re
from datetime import timedelta, timezone

from shared.events.registry import RegionLevel

LEVEL_BY_LENGTH = {2: RegionLevel.PROVINCE, 4: RegionLevel.REGENCY, 6: RegionLevel.DISTRICT,
                   10: RegionLevel.VILLAGE}
PARENT_LENGTH = {4: 2, 6: 4, 10: 6}
# ASCII digits only: `\d` alone also matches other scripts' digits (Arabic-Indic, fullwidth), no region code.
_DOTTED = re.compile(r"^[0-9]{2}(\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4})?)?)?$")
_PLAIN = re.compile(r"^[0-9]{2}([0-9]{2}([0-9]{2}([0-9]{4})?)?)?$")
PLAIN_CODE_PATTERN = _PLAIN.pattern
VILLAGE_CODE_PATTERN = r"^[0-9]{10}$"
#: Any region prefix: province, regency/city, district or village.
REGION_PREFIX_PATTERN = r"^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{10})$"


def undot(code: str) -> str:
    """`31.71.01.1001` -> `3171011001`; raises ValueError for anything that is not a region code."""
    code = code.strip()
    if _DOTTED.match(code):
        return code.replace(".", "")
    if _PLAIN.match(code):
        return code
    raise ValueError(f"not a region code: {code!r}")


def level_of(code: str) -> RegionLevel:
    return LEVEL_BY_LENGTH[len(code)]


def parent_of(code: str) -> str | None:
    length = PARENT_LENGTH.get(len(code))
    return code[:length] if length else None


def kind_of(code: str) -> str | None:
    """`kabupaten`/`kota` for a regency; `kelurahan`/`desa`/`desa-adat` for a village (from the code itself)."""
    if len(code) == 4:
        return "kota" if int(code[2:4]) >= 71 else "kabupaten"
    if len(code) == 10:
        return {"1": "kelurahan", "2": "desa", "3": "desa-adat"}.get(code[6])
    return None


def is_valid_village_code(code: str) -> bool:
    return len(code) == 10 and code.isascii() and code.isdigit() and code[6] in "123"


WIB, WITA, WIT = (timezone(timedelta(hours=h), name) for h, name in ((7, "WIB"), (8, "WITA"), (9, "WIT")))
#: Provinces east of WIB: Bali, NTB, NTT, South, East and North Kalimantan and Sulawesi keep WITA; Maluku,
#: North Maluku and the Papua provinces WIT.
_WITA = {"51", "52", "53", "63", "64", "65", "71", "72", "73", "74", "75", "76"}
_WIT = {"81", "82", "91", "92", "93", "94", "95", "96", "97"}


def local_zone(region_code: str) -> timezone:
    """The local time of a region (by its province; Indonesia has no daylight saving time)."""
    province = region_code[:2]
    return WITA if province in _WITA else WIT if province in _WIT else WIB

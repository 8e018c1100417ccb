"""Hypothesis properties of the parsers: any input gives a result or the parser's own error, never another one."""

from __future__ import annotations

import base64
import string
import uuid
from datetime import date

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.household.identifiers import IdentifierError, mask_kk, mask_nik, parse_kk, parse_nik
from services.household.imports.parsing import Group, iter_items
from services.registry.regions.importer import parse_csv
from shared.errors import BadRequest, ValidationFailed
from shared.events.registry import RegionLevel
from shared.pagination import decode_cursor, encode_cursor
from shared.region_codes import kind_of, level_of, parent_of, undot

PROPERTIES = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                      suppress_health_check=[HealthCheck.too_slow])
TODAY = date(2026, 11, 25)
digits16 = st.text(alphabet=string.digits, min_size=16, max_size=16)
#: Strings near the valid shapes (digits, dots, signs, Unicode digits, whitespace) and anything at all.
near_digits = st.text(alphabet=st.sampled_from([*string.digits, ".", " ", "-", "+", "\n",
                                                "\u0663", "\uff11", "\u00b2"]), max_size=20)
anything = st.one_of(st.text(max_size=40), near_digits, digits16)


@PROPERTIES
@given(value=anything)
def test_nik_parsing_raises_only_identifier_error(value: str) -> None:
    try:
        info = parse_nik(value, today=TODAY)
    except IdentifierError as exc:
        assert len(value.strip()) < 6 or value.strip() not in str(exc)  # the message never repeats the number
        return
    plain = value.strip()
    assert plain.isascii() and plain.isdigit() and len(plain) == 16
    assert info.district_code == plain[:6] and info.serial == plain[12:] and info.birth_date <= TODAY
    assert info.sex == ("female" if int(plain[6:8]) > 40 else "male")


@PROPERTIES
@given(value=anything)
def test_kk_parsing_raises_only_identifier_error(value: str) -> None:
    try:
        info = parse_kk(value, today=TODAY)
    except IdentifierError:
        return
    plain = value.strip()
    assert plain.isascii() and plain.isdigit() and len(plain) == 16
    assert info.district_code == plain[:6] and info.issue_date <= TODAY


@PROPERTIES
@given(value=anything)
def test_masking_keeps_district_and_serial_only(value: str) -> None:
    for mask in (mask_nik, mask_kk):
        try:
            masked = mask(value)
        except IdentifierError:
            continue
        plain = value.strip()
        assert masked == plain[:6] + "******" + plain[12:]
        assert plain[6:12] not in masked[6:12] or plain[6:12] == "******"


@PROPERTIES
@given(nik=digits16)
def test_a_parsed_nik_round_trips_through_its_parts(nik: str) -> None:
    try:
        info = parse_nik(nik, today=TODAY)
    except IdentifierError:
        return
    day = info.birth_date.day + (40 if info.sex == "female" else 0)
    rebuilt = f"{info.district_code}{day:02d}{info.birth_date:%m}{info.birth_date.year % 100:02d}{info.serial}"
    assert rebuilt == nik
    assert parse_nik(f"  {nik}\n", today=TODAY) == info
    assert mask_nik(nik)[:6] == info.district_code and mask_nik(nik)[12:] == info.serial


@PROPERTIES
@given(value=anything)
def test_region_codes(value: str) -> None:
    try:
        code = undot(value)
    except ValueError:
        return
    assert code.isascii() and code.isdigit() and len(code) in (2, 4, 6, 10)
    level = level_of(code)
    assert level is {2: RegionLevel.PROVINCE, 4: RegionLevel.REGENCY, 6: RegionLevel.DISTRICT,
                     10: RegionLevel.VILLAGE}[len(code)]
    parent = parent_of(code)
    assert parent is None if len(code) == 2 else (parent is not None and code.startswith(parent)
                                                    and len(parent) < len(code))
    assert kind_of(code) in (None, "kabupaten", "kota", "kelurahan", "desa", "desa-adat")
    if len(code) == 4:
        assert kind_of(code) in ("kabupaten", "kota")
    dotted = ".".join(p for p in (code[:2], code[2:4], code[4:6], code[6:]) if p)
    assert undot(dotted) == code


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8)
cursors = st.one_of(
    st.text(max_size=60),
    st.binary(max_size=60).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
    json_values.map(lambda v: base64.urlsafe_b64encode(orjson.dumps(v)).decode()),
)


@PROPERTIES
@given(value=cursors)
def test_cursor_decoding_gives_values_or_bad_request(value: str) -> None:
    for types in ((str,), (int,), (str, uuid.UUID)):
        try:
            decoded = decode_cursor(value, *types)
        except BadRequest:
            continue
        assert decoded is not None and len(decoded) == len(types)
        assert all(isinstance(v, t) for v, t in zip(decoded, types, strict=True))


@PROPERTIES
@given(values=st.tuples(st.text(max_size=20), st.integers(min_value=-(2**63), max_value=2**63 - 1)))
def test_cursor_round_trip(values: tuple[str, int]) -> None:
    assert decode_cursor(encode_cursor(*values), str, int) == values


csv_text = st.one_of(
    st.text(max_size=300),
    st.lists(st.tuples(st.one_of(near_digits, st.text(max_size=12)), st.text(max_size=30)), max_size=8).map(
        lambda rows: "kode,nama\n" + "\n".join(f"{c},{n}" for c, n in rows)),
    st.text(alphabet=st.sampled_from(list('kode,nama"\n\r 31.7\x00;')), max_size=120),
)


@PROPERTIES
@given(text=csv_text)
def test_region_csv_gives_rows_and_errors_or_validation_failed(text: str) -> None:
    try:
        rows, errors = parse_csv(text)
    except ValidationFailed:
        return
    codes = [code for code, _ in rows]
    assert len(codes) == len(set(codes))
    for code, name in rows:
        assert code.isascii() and code.isdigit() and len(code) in (2, 4, 6, 10)
        assert 1 <= len(name) <= 200 and name == " ".join(name.split()) and "\x00" not in name
    assert all(set(e) in ({"field", "message"}, {"field", "message", "type"}) for e in errors)


def test_region_csv_with_a_huge_field_is_validation_failed() -> None:
    try:
        rows, errors = parse_csv("kode,nama\n31," + "a" * 200_000 + "\n")
    except ValidationFailed:
        return
    assert rows == [] and errors


import_rows = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=300).map(str.encode),
    st.lists(st.dictionaries(st.sampled_from(["kk_number", "village_code", "posyandu_id", "nik", "name", "sex",
                                              "birth_date", "relationship", "rt", "pregnant"]),
                             st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=20),
                                       digits16), max_size=10), max_size=6).map(
        lambda rows: b"\n".join(orjson.dumps(r) for r in rows)),
)


@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
@PROPERTIES
@given(body=import_rows, cut=st.integers(min_value=1, max_value=64))
def test_household_import_parsing_gives_items_or_validation_failed(fmt: str, body: bytes, cut: int) -> None:
    chunks = [body[i:i + cut] for i in range(0, len(body), cut)]
    try:
        items = list(iter_items(chunks, fmt))  # type: ignore[arg-type]
    except ValidationFailed:
        return
    assert all(item is not None for item in items)
    for row in (row for item in items if isinstance(item, Group) for row in item.rows):
        # A NUL (which PostgreSQL cannot store) never reaches the database: its row is refused, naming the field.
        assert {k for k, v in row.data.items() if isinstance(v, str) and "\x00" in v} <= {e.field for e in row.errors}

"""Dates are ISO 8601 text, as the published schemas say: a number (which pydantic would read as a Unix time, so
`?since=5` meant 1970-01-01) is a 422 naming the field, in a query and in a body, in every service."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from shared.iso_dates import IsoDate, IsoDateTime
from tests.support import tokens
from tests.support.factories import create_posyandu


class _Dates(BaseModel):
    day: IsoDate | None = None
    at: IsoDateTime | None = None


@pytest.mark.parametrize("value", [0, 86400, -5.96e-188, "0", "86400", "-5.96940633601e-188", "1700000000", True])
def test_a_number_is_not_a_date(value: object) -> None:
    for name in ("day", "at"):
        with pytest.raises(ValidationError, match="ISO 8601"):
            _Dates.model_validate({name: value})


def test_iso_text_and_values_are_dates() -> None:
    parsed = _Dates.model_validate({"day": "2026-12-01", "at": "2026-12-01T08:00:00+07:00"})
    assert parsed.day == date(2026, 12, 1) and parsed.at is not None and parsed.at.utcoffset() is not None
    assert _Dates(day=date(2026, 1, 2), at=datetime(2026, 1, 2)).day == date(2026, 1, 2)
    assert _Dates.model_validate({"day": None}).day is None


def _names(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return [e["field"] for e in response.json()["errors"]]


async def test_a_number_in_a_date_query_is_a_422(registry: httpx.AsyncClient, household: httpx.AsyncClient,
                                                  referral: httpx.AsyncClient) -> None:
    admin = tokens.admin()
    since = await referral.post("/api/v1/referrals/republish", params={"field": "sosial", "since": "-5.9e-188"},
                                headers=admin)
    assert _names(since) == ["query.since"]
    listed = await referral.get("/api/v1/referrals", params={"created_from": "0"}, headers=admin)
    assert _names(listed) == ["query.created_from"]
    sessions = await household.get("/api/v1/sessions", params={"from": "86400"}, headers=admin)
    assert _names(sessions) == ["query.from"]
    posyandu = await create_posyandu(registry)  # an unknown one is a 404 before its query is read
    days = await registry.get(f"/api/v1/posyandu/{posyandu['id']}/opening-days", params={"from": "946684800"},
                              headers=admin)
    assert _names(days) == ["query.from"]
    letters = await household.get("/api/v1/dead-letters", params={"since": "0"}, headers=admin)
    assert _names(letters) == ["query.since"]


async def test_a_number_in_a_date_body_field_is_a_422(household: httpx.AsyncClient) -> None:
    body = {"posyandu_id": str(uuid.uuid4()), "kk_number": "3174011501100001", "address": "Jl. Satu",
            "village_code": "3174011001",
            "members": [{"name": "Ani", "sex": "female", "birth_date": 946684800, "relationship": "head"}]}
    created = await household.post("/api/v1/households", json=body, headers=tokens.admin())
    assert "body.members.0.birth_date" in _names(created)

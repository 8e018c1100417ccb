"""Which attributes of event data are personal data (UU PDP): every attribute of every event model says so.

`Personal[T]` marks an attribute that identifies or describes a person by itself: a NIK or KK number even masked,
a name, sex, birth date or age, family relationship, a health or welfare fact about one person or household
(measurements, evidence, profile answers), free text. `NotPersonal[T]` marks one that does not: a random id
(it leads to a person only through the audited REST API), a region, category or urgency code, a state, a time,
a version, an organisation's or a posyandu's details. The mark travels into the JSON Schema as `x-personal-data`,
so the AsyncAPI documents show it on each attribute; an unmarked attribute fails the contract tests.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from pydantic import BaseModel, Field

MARK = "x-personal-data"

T = TypeVar("T")
Personal = Annotated[T, Field(json_schema_extra={MARK: True})]
NotPersonal = Annotated[T, Field(json_schema_extra={MARK: False})]


def classification(model: type[BaseModel]) -> dict[str, bool | None]:
    """Each attribute of the model: personal data or not; None where it carries no mark."""
    marks: dict[str, bool | None] = {}
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra
        marks[name] = extra.get(MARK) if isinstance(extra, dict) else None  # type: ignore[assignment]
    return marks


def personal_attributes(model: type[BaseModel]) -> list[str]:
    """The attributes marked as personal data, in the model's order."""
    return [name for name, personal in classification(model).items() if personal is True]

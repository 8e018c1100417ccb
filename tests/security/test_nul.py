"""NUL characters (U+0000), which PostgreSQL text cannot hold: refused with a 422 naming where they are, everywhere
text enters. Generated from the OpenAPI documents of the four services: a NUL in every string of every JSON body, in
every query parameter and in every path parameter; then the file imports, whose bodies are not JSON."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from conftest import Stack, service_settings
from services.household.app import create_app as create_household_app
from services.household.imports.parsing import HOUSEHOLD_FIELDS, MEMBER_FIELDS
from services.referral.app import create_app as create_referral_app
from services.registry.app import create_app as create_registry_app
from services.reporting.app import create_app as create_reporting_app
from services.reporting.app import spec as reporting_spec
from services.reporting.settings import ReportingSettings
from shared.dead_letters_api import dead_letters_router
from shared.service import create_service_app
from tests.security.conftest import SecurityWorld
from tests.support import tokens
from tests.support.factories import household_body, known_posyandu

NUL = "\x00"
DOCUMENTS = {"registry": create_registry_app().openapi(), "household": create_household_app().openapi(),
             "referral": create_referral_app().openapi(), "reporting": create_reporting_app().openapi()}


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _instance(schema: dict[str, Any], document: dict[str, Any], depth: int = 0) -> Any:
    """A value of the schema's shape with every property present and "x" for every string (a NUL is refused before
    the values are validated, so they need not be valid otherwise)."""
    schema = _resolve(schema, document)
    options = [o for o in schema.get("anyOf", schema.get("oneOf", [])) if _resolve(o, document).get("type") != "null"]
    if options:
        return _instance(options[0], document, depth)
    kind = schema.get("type")
    if kind == "string" or "enum" in schema:
        return "x"
    if kind == "array" and depth < 6:
        return [_instance(schema.get("items", {}), document, depth + 1)]
    if kind == "object" or "properties" in schema:
        value = {name: _instance(child, document, depth + 1) for name, child in schema.get("properties", {}).items()}
        if isinstance(schema.get("additionalProperties"), dict) and depth < 6:
            value["k"] = _instance(schema["additionalProperties"], document, depth + 1)
        return value
    return 1 if kind in ("integer", "number") else True if kind == "boolean" else None


def _bodies(schema: dict[str, Any], document: dict[str, Any]) -> list[Any]:
    """One instance per top-level alternative (the six profile sections are each their own body)."""
    schema = _resolve(schema, document)
    return [_instance(option, document) for option in schema.get("oneOf", [])] or [_instance(schema, document)]


def _string_paths(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for key, child in value.items():
            yield from _string_paths(child, (*path, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _string_paths(child, (*path, i))


def _with_nul(value: Any, path: tuple[str | int, ...]) -> Any:
    copy = json.loads(json.dumps(value))
    target = copy
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] += NUL
    return copy


def _stringy(schema: dict[str, Any]) -> bool:
    options = schema.get("anyOf", [schema])
    return any(o.get("type") == "string" or "enum" in o or "$ref" in o for o in options)


@dataclasses.dataclass(frozen=True)
class Case:
    service: str
    method: str
    path: str
    where: str  # the field the 422 must name
    params: dict[str, str] = dataclasses.field(default_factory=dict)
    body: Any = None

    @property
    def id(self) -> str:
        return f"{self.service} {self.method} {self.path} {self.where}"


def _cases() -> list[Case]:
    cases = []
    for service, document in DOCUMENTS.items():
        for template, item in document["paths"].items():
            for method, operation in item.items():
                params = operation.get("parameters", [])
                path_names = [p["name"] for p in params if p["in"] == "path"]
                url = template
                for name in path_names:
                    url = url.replace("{" + name + "}", "x")
                for name in path_names:
                    nul_url = template
                    for other in path_names:
                        nul_url = nul_url.replace("{" + other + "}", "x%00" if other == name else "x")
                    cases.append(Case(service, method.upper(), nul_url, f"path.{name}"))
                for param in params:
                    if param["in"] == "query" and _stringy(param["schema"]):
                        cases.append(Case(service, method.upper(), url, f"query.{param['name']}",
                                          params={param["name"]: "x" + NUL}))
                content = operation.get("requestBody", {}).get("content", {})
                if "application/json" in content:
                    for body in _bodies(content["application/json"]["schema"], document):
                        for path in _string_paths(body):
                            cases.append(Case(service, method.upper(), url, ".".join(map(str, ("body", *path))),
                                              body=_with_nul(body, path)))
    return list({case.id: case for case in cases}.values())  # a field two profile sections share, once


CASES = _cases()


@pytest.fixture(scope="module")
async def reporting(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The reporting app on a database of its own, without its consumers (these requests only read), but with the
    dead-letter API that its consumer groups give it."""
    dsn = await stack.migrated_database("reporting", "reporting_nul")
    spec = reporting_spec()
    app = create_service_app(dataclasses.replace(spec, subscriptions=(), routers=[
        *spec.routers, dead_letters_router(spec.name, spec.group_handlers)]),
                             ReportingSettings(**service_settings(stack, dsn)))
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app),
                                     base_url="http://reporting") as client:
            yield client


def test_every_operation_with_text_input_is_covered() -> None:
    covered = {(c.service, c.method, c.path.replace("x%00", "x")) for c in CASES}
    assert len(CASES) > 200
    for service, document in DOCUMENTS.items():
        for template, item in document["paths"].items():
            for method, operation in item.items():
                has_text = "application/json" in operation.get("requestBody", {}).get("content", {}) or any(
                    p["in"] == "path" or (p["in"] == "query" and _stringy(p["schema"]))
                    for p in operation.get("parameters", []))
                path = template
                for p in operation.get("parameters", []):
                    path = path.replace("{" + p["name"] + "}", "x")
                assert not has_text or (service, method.upper(), path) in covered, (service, method, template)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_a_nul_is_a_422_naming_the_field(case: Case, registry: httpx.AsyncClient,
                                               household: httpx.AsyncClient, referral: httpx.AsyncClient,
                                               reporting: httpx.AsyncClient) -> None:
    client = {"registry": registry, "household": household, "referral": referral, "reporting": reporting}
    response = await client[case.service].request(case.method, case.path, params=case.params, json=case.body,
                                                  headers=tokens.admin())
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert {"field": case.where, "message": "NUL characters (U+0000) are not allowed", "type": "string_nul"} \
        in errors, errors


async def test_a_nul_in_a_valid_body_writes_nothing(security_world: SecurityWorld, registry: httpx.AsyncClient,
                                                     registry_db: asyncpg.Connection) -> None:
    code = f"NUL-{uuid.uuid4().hex[:8].upper()}"
    body = {"code": code, "name": "Posyandu Mawar" + NUL, "village_code": security_world.a.village_code}
    refused = await registry.post("/api/v1/posyandu", json=body, headers=tokens.admin())
    assert refused.status_code == 422
    assert refused.json()["errors"] == [{"field": "body.name", "message": "NUL characters (U+0000) are not allowed",
                                         "type": "string_nul"}]
    assert await registry_db.fetchval("SELECT count(*) FROM posyandu WHERE code = $1", code) == 0
    accepted = await registry.post("/api/v1/posyandu", json={**body, "name": "Posyandu Mawar"},
                                   headers=tokens.admin())
    assert accepted.status_code == 201, accepted.text  # the same body without the NUL is fine


async def test_a_nul_in_the_region_list_is_a_422_naming_line_and_column(registry: httpx.AsyncClient,
                                                                        registry_db: asyncpg.Connection) -> None:
    before = await registry_db.fetchval("SELECT count(*) FROM regions")
    listed = "kode,nama\n31,DKI JAKARTA\n31.71,KOTA ADM. JAKARTA PUSAT\n31.71.01,GAM\x00BIR\n"
    response = await registry.post("/api/v1/regions/import", content=listed.encode(),
                                   headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [{"field": "line 4, column nama", "message":
                                          "NUL characters (U+0000) are not allowed", "type": "string_nul"}]
    assert await registry_db.fetchval("SELECT count(*) FROM regions") == before
    coded = await registry.post("/api/v1/regions/import", content=b"kode,nama\n31.7\x001,JAKARTA\n",
                                headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert coded.status_code == 422
    assert coded.json()["errors"][0]["field"] == "line 2, column kode"


def _import_rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The household as rows of an import file, one per member."""
    head = {name: body[name] for name in HOUSEHOLD_FIELDS if name in body}
    return [{**head, **member} for member in body["members"]]


@pytest.mark.parametrize(("fmt", "field"), [("ndjson", "name"), ("csv", "name"), ("ndjson", "village_code"),
                                           ("csv", "kk_number")])
async def test_a_nul_in_an_import_refuses_that_household_only(fmt: str, field: str, registry: httpx.AsyncClient,
                                                               household: httpx.AsyncClient,
                                                               household_db: asyncpg.Connection) -> None:
    posyandu = await known_posyandu(registry, household_db)
    good, bad = household_body(posyandu), household_body(posyandu)
    rows = _import_rows(good) + _import_rows(bad)
    for row in rows[2:] if field in HOUSEHOLD_FIELDS else rows[3:]:  # the second household, or its second member
        row[field] = row[field][:4] + NUL + row[field][4:]
    if fmt == "ndjson":
        content, media_type, first_line = "".join(json.dumps(row) + "\n" for row in rows), "application/x-ndjson", 1
    else:
        columns = [*HOUSEHOLD_FIELDS, *MEMBER_FIELDS]
        content = "\n".join([",".join(columns), *(",".join(str(row.get(c, "")) for c in columns) for row in rows)])
        media_type, first_line = "text/csv", 2
    response = await household.post("/api/v1/households/import", content=content.encode(),
                                    headers={**tokens.kader([posyandu]), "Content-Type": media_type})
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["households_imported"], report["households_rejected"]) == (1, 1), report
    refused = {error["row"] for error in report["errors"]
               if (error["field"], error["message"]) == (field, "NUL characters (U+0000) are not allowed")}
    assert refused == ({first_line + 2, first_line + 3} if field in HOUSEHOLD_FIELDS else {first_line + 3}), report
    stored = await household_db.fetchval("SELECT count(*) FROM households WHERE kk_number = $1", good["kk_number"])
    assert stored == 1
    assert await household_db.fetchval("SELECT count(*) FROM members WHERE name LIKE 'Siti%' AND household_id IN "
                                       "(SELECT id FROM households WHERE posyandu_id = $1)",
                                       uuid.UUID(posyandu)) == 1

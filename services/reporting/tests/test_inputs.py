"""Bad query parameters get a 422 problem naming the field, on every report; arbitrary ones never get a 5xx.

The operations and their parameters are read from the app's own OpenAPI document, so a report added later is
covered without a change here.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.reporting.app import create_app
from services.reporting.tests.conftest import Published
from services.reporting.tests.scenario import TAMILOUW
from shared.errors import PROBLEM_MEDIA_TYPE
from tests.support import tokens

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
DOCUMENT = create_app().openapi()
#: Every reporting operation (GET under /api/v1) with its query parameters' names and schemas; not the admin's
#: dead-letter API every consuming service has (shared/dead_letters_api.py, tested in tests/faults and tests/fuzz).
OPERATIONS = {path: {p["name"]: p.get("schema", {}) for p in item["get"].get("parameters", []) if p["in"] == "query"}
              for path, item in DOCUMENT["paths"].items()
              if path.startswith("/api/v1/") and not path.startswith("/api/v1/dead-letters") and "get" in item}
WITH_PERIOD = sorted(path for path, params in OPERATIONS.items() if "period" in params)
#: Outside the accepted years (1900..9998), or a shape only Unicode digits would make look valid.
BAD_PERIODS = ["0000", "9999", "0000-01", "9999-12", "9999-Q4", "0001", "1899-12", "1899-Q4",
               "\u0662\u0660\u0662\u0665", "\u0662\u0660\u0662\u0665-01", "2025-13", "2025-00", "2025-Q5", "25",
               "2025-1", " 2025", "2025\n"]


def test_every_report_is_found() -> None:
    assert set(OPERATIONS) >= {"/api/v1/indicators", "/api/v1/indicators/needs",
                               "/api/v1/indicators/referrals/timeline", "/api/v1/rankings/villages", "/api/v1/matrix"}
    # The SPM matrix goes by SPM year and month (`year`, `month`; its bad inputs in test_spm_matrix.py); the
    # dashboard's region picker lists regions, it reports nothing.
    assert set(WITH_PERIOD) == set(OPERATIONS) - {"/api/v1/spm/matrix", "/api/v1/regions"}


@pytest.mark.parametrize("path", WITH_PERIOD)
async def test_a_period_out_of_range_is_a_422_naming_it(reporting: httpx.AsyncClient, maluku: Published,
                                                         path: str) -> None:
    for period in BAD_PERIODS:
        response = await reporting.get(path, params={"region": TAMILOUW, "period": period}, headers=tokens.admin())
        assert response.status_code == 422, (period, response.text)
        assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
        assert [e["field"] for e in response.json()["errors"]] == ["query.period"], period
    # The connection is still good, and the edges of the range are answered.
    longest = {"months": "36"} if "months" in OPERATIONS[path] else {}  # the timeline reaches back 3 years
    for period in ("1900", "1900-01", "1900-Q1", "9998", "9998-12", "9998-Q4"):
        response = await reporting.get(path, params={"region": TAMILOUW, "period": period, **longest},
                                       headers=tokens.admin())
        assert response.status_code == 200, (period, response.text)


#: The parameter that names the region, where it is not `region` (the picker's: the region whose parts it lists).
REGION_PARAMETER = {"/api/v1/regions": "parent"}


@pytest.mark.parametrize("path", sorted(OPERATIONS))
async def test_a_region_of_unicode_digits_is_a_422_naming_it(reporting: httpx.AsyncClient, path: str) -> None:
    name = REGION_PARAMETER.get(path, "region")
    assert name in OPERATIONS[path]
    for region in ("\u0668\u0661", "\u00b2\u00b2", "\uff18\uff11", "8\u0661", "81 ", "8101\x00"):
        response = await reporting.get(path, params={name: region}, headers=tokens.admin())
        assert response.status_code == 422, (region, response.text)
        assert [e["field"] for e in response.json()["errors"]] == [f"query.{name}"], region


def _edge_values(schema: dict[str, Any]) -> list[str]:
    """The values a parameter's schema suggests, and the numbers around its bounds."""
    out: list[str] = []
    for option in [schema, *schema.get("anyOf", [])]:
        if "$ref" in option:  # an enum of the components (the SPM fields)
            option = DOCUMENT["components"]["schemas"][option["$ref"].rsplit("/", 1)[-1]]
        out += [str(v) for v in option.get("enum", [])]
        for bound in ("minimum", "maximum"):
            if bound in option:
                out += [str(option[bound] + d) for d in (-1, 0, 1)]
        if "maxLength" in option:
            out += ["9" * option["maxLength"], "9" * (option["maxLength"] + 1)]
    return out


#: Text near the valid shapes (periods, region codes, numbers) and anything at all.
NEAR = st.text(alphabet=st.sampled_from([*"0123456789-Q ", "\u0661", "\uff11", "\u00b2", "\x00", "\n", "%", "e"]),
               max_size=12)
EDGES = st.sampled_from(["", "0", "-1", "00", "0000", "9999", "0000-01", "9999-12", "9999-Q4", "2025-Q0", "1e3",
                         "81", "8101", "810101", TAMILOUW, "99", "18446744073709551616", "NaN", "\u0668\u0661"])


def _queries() -> st.SearchStrategy[tuple[str, dict[str, str]]]:
    def for_operation(path: str) -> st.SearchStrategy[tuple[str, dict[str, str]]]:
        values = {name: st.one_of(st.sampled_from(_edge_values(schema) or [""]), EDGES, NEAR, st.text(max_size=20))
                  for name, schema in OPERATIONS[path].items()}
        return st.fixed_dictionaries({}, optional=values).map(lambda params: (path, params))

    return st.one_of([for_operation(path) for path in sorted(OPERATIONS)])


ROLES = st.sampled_from(["admin", "pembina", "service"])


async def test_no_query_gets_a_server_error(reporting: httpx.AsyncClient, maluku: Published) -> None:
    headers = {"admin": tokens.admin(), "pembina": tokens.pembina("81"), "service": tokens.service()}
    loop = asyncio.get_running_loop()
    accepts = st.sampled_from([None, "text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"])

    @given(query=_queries(), role=ROLES, accept=accepts)
    @settings(max_examples=200, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(query: tuple[str, dict[str, str]], role: str, accept: str | None) -> None:
        path, params = query
        sent = {**headers[role], **({"Accept": accept} if accept else {})}
        response = asyncio.run_coroutine_threadsafe(reporting.get(path, params=params, headers=sent),
                                                    loop).result(timeout=60)
        assert response.status_code < 500, (path, params, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE, (path, params)

    await asyncio.to_thread(fuzz)

"""The dashboard, driven in headless Chromium over real HTTP, shows the numbers the API returns."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date
from typing import Any

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager

from conftest import Stack, service_settings
from deploy.local.embedded import free_port
from deploy.local.stack import create_topics
from services.reporting.app import spec as reporting_spec
from services.reporting.settings import ReportingSettings
from services.reporting.tests.conftest import Published
from services.reporting.tests.factories import known_posyandu
from services.reporting.tests.scenario import SEPA, TAMILOUW
from shared.events.topics import ALL_TOPICS
from shared.service import create_service_app
from tests.support import tokens
from tests.support.waiting import eventually

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")


def _install_chromium() -> str | None:
    """The chromedriver path, installing Debian's chromium and chromium-driver if they are missing."""
    if shutil.which("chromedriver") and shutil.which("chromium"):
        return shutil.which("chromedriver")
    for command in (["apt-get", "install", "-y", "chromium", "chromium-driver"], ["apt-get", "update"],
                    ["apt-get", "install", "-y", "chromium", "chromium-driver"]):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(command, check=False, capture_output=True, timeout=600)
        if shutil.which("chromedriver") and shutil.which("chromium"):
            return shutil.which("chromedriver")
    return None


@pytest.fixture(scope="module")
def chromedriver() -> str:
    path = _install_chromium()
    if path is None:
        pytest.skip("Chromium and chromium-driver are not installed and `apt-get install -y chromium "
                    "chromium-driver` failed")
    return path


@pytest.fixture(scope="module")
async def served(reporting_app: Any) -> AsyncIterator[str]:
    """The running reporting app served over real HTTP by uvicorn on the test's event loop."""
    async with _serve(reporting_app) as url:
        yield url


@pytest.fixture(scope="module")
async def live_served(stack: Stack) -> AsyncIterator[str]:
    """A reporting app on the session's broker (where the household service publishes), in a consumer group and
    database of its own, served over HTTP: the dashboard of the live system."""
    dsn = await stack.migrated_database("reporting", "reporting_dashboard_live")
    await create_topics(stack.broker.bootstrap_servers, list(ALL_TOPICS))
    spec = reporting_spec()
    groups = [dataclasses.replace(sub, group_id="reporting-dashboard-test") for sub in spec.subscriptions]
    app = create_service_app(dataclasses.replace(spec, subscriptions=groups),
                             ReportingSettings(**service_settings(stack, dsn)))
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager, _serve(manager.app) as url:
        yield url


@contextlib.asynccontextmanager
async def _serve(app: Any) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off",
                                           log_level="warning"))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    await eventually(started, "uvicorn to start", timeout=10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="module")
def browser(chromedriver: str) -> Iterator[Any]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="reporting-chromium-")
    options = Options()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _page_cells(driver: Any, table_id: str) -> list[dict[str, str]]:
    """Each row of a rendered table as {column key: text shown}, read in one script (the page may refresh its
    tables between two element reads)."""
    cells = driver.execute_script(f"return [...document.querySelectorAll('#{table_id} td')]"
                                  ".map((td) => [Number(td.dataset.row), td.dataset.key, td.innerText])")
    rows: dict[int, dict[str, str]] = {}
    for row, key, text in cells:
        rows.setdefault(int(row), {})[key] = text
    return [rows[i] for i in sorted(rows)]


def _shown(value: Any, kind: str, suppressed: bool, threshold: int | None) -> str:
    if suppressed:
        return "x"
    if value is None:
        return "\u2014"
    return f"{value * 100:.1f}%" if kind == "rate" else str(value)


async def _load(driver: Any, url: str) -> None:
    await asyncio.to_thread(driver.get, url)
    state = await eventually(lambda: _script(driver, "return document.body.dataset.loaded"), "the dashboard to load",
                             timeout=20, interval=0.1, until=lambda state: state in ("true", "error"))
    assert state == "true", await asyncio.to_thread(lambda: driver.find_element("id", "status").text)


async def test_the_dashboard_shows_what_the_api_returns(served: str, browser: Any, maluku: Published,
                                                        reporting: httpx.AsyncClient) -> None:
    token = tokens.pembina("81")["Authorization"].removeprefix("Bearer ")
    await _load(browser, f"{served}/dashboard?token={token}&region=8101&period={maluku.period}")
    params = {"region": "8101", "period": maluku.period}
    headers = tokens.pembina("81")
    for table_id, path in (("indicators", "/api/v1/indicators"), ("matrix", "/api/v1/matrix"),
                           ("ranking", "/api/v1/rankings/villages")):
        api = (await reporting.get(path, params=params, headers=headers)).json()
        expected = [{c["key"]: _shown(row.get(c["key"]), c["kind"], c["key"] in row["suppressed"],
                                      api["suppression_threshold"]) for c in api["columns"]} for row in api["rows"]]
        assert await asyncio.to_thread(_page_cells, browser, table_id) == expected, table_id
        assert api["rows"], table_id
    indicators = (await asyncio.to_thread(_page_cells, browser, "indicators"))[0]
    # Maluku Tengah's 9 households are withheld with Kota Ambon's 2 (else Maluku's 11 minus 9 would give them).
    assert (indicators["coverage.households"], indicators["coverage.infant"]) == ("x", "x")
    ranking = await asyncio.to_thread(_page_cells, browser, "ranking")
    assert [r["village_code"] for r in ranking] == [TAMILOUW, SEPA]
    # The chart: a pembina's suppressed cells are not drawn; an admin sees a bar per field and status group.
    assert await asyncio.to_thread(browser.find_elements, "css selector", "#chart svg rect") == []
    admin = tokens.admin()["Authorization"].removeprefix("Bearer ")
    await _load(browser, f"{served}/dashboard?token={admin}&region=8101&period={maluku.period}&lang=en")
    shown = (await asyncio.to_thread(_page_cells, browser, "indicators"))[0]
    assert (shown["coverage.households"], shown["coverage.infant"]) == ("9", "1")
    bars = await asyncio.to_thread(browser.find_elements, "css selector", "#chart svg rect")
    titles = {await asyncio.to_thread(b.get_attribute, "textContent") for b in bars}
    assert titles == {f"{maluku.period} kesehatan completed: 2", f"{maluku.period} kesehatan accepted: 1",
                      f"{maluku.period} kesehatan closed: 1", f"{maluku.period} kesehatan open: 2",
                      f"{maluku.period} pendidikan open: 1", f"{_month_before(maluku.period)} kesehatan open: 1"}


def _month_before(period: str) -> str:
    year, month = int(period[:4]), int(period[5:])
    return f"{year - (month == 1)}-{(month - 2) % 12 + 1:02d}"


async def test_the_dashboard_reports_a_refusal(served: str, browser: Any, maluku: Published) -> None:
    token = tokens.pembina("8171")["Authorization"].removeprefix("Bearer ")
    await asyncio.to_thread(browser.get, f"{served}/dashboard?token={token}&region=8101&period={maluku.period}")
    await eventually(lambda: _script(browser, "return document.body.dataset.loaded"), "the dashboard to refuse",
                     timeout=20, interval=0.1, until=lambda state: state == "error")
    status = await asyncio.to_thread(lambda: browser.find_element("id", "status").text)
    assert "limited to region 8171" in status


async def _script(driver: Any, code: str) -> Any:
    return await asyncio.to_thread(driver.execute_script, code)


async def _text(driver: Any, css: str) -> list[str]:
    return list(await _script(driver, f"return [...document.querySelectorAll({css!r})].map((e) => e.innerText)"))


async def _options(driver: Any, depth: int) -> list[str]:
    """The values offered by the picker's select at this depth (0: the caller's own regions)."""
    return list(await _script(driver, f"return [...document.querySelectorAll('#picker select')[{depth}].options]"
                                      ".map((o) => o.value)"))


async def _pick(driver: Any, depth: int, code: str) -> None:
    """Choose a region in the picker as a user does, and wait for the figures of it."""
    from selenium.webdriver.support.ui import Select

    loads = int(await _script(driver, "return document.body.dataset.loads"))
    element = (await asyncio.to_thread(driver.find_elements, "css selector", "#picker select"))[depth]
    await asyncio.to_thread(Select(element).select_by_value, code)
    await eventually(lambda: _script(driver, "return document.body.dataset.loads"),
                     f"the dashboard to load region {code}", timeout=30, interval=0.1,
                     until=lambda now: int(now) > loads)


async def _figure(driver: Any, key: str) -> str:
    return (await asyncio.to_thread(_page_cells, driver, "indicators"))[0][key]


async def test_the_dashboard_speaks_indonesian_unless_asked_for_english(served: str, browser: Any,
                                                                        maluku: Published) -> None:
    admin = tokens.admin()["Authorization"].removeprefix("Bearer ")
    await _load(browser, f"{served}/dashboard?token={admin}&region=8101&period={maluku.period}")
    assert await _script(browser, "return document.documentElement.lang") == "id"
    assert (await _text(browser, "h2"))[0].startswith("Indikator")
    headers = await _text(browser, "#indicators th")
    assert "Rumah tangga terdaftar" in headers and "Households registered" not in headers
    assert "Kabupaten/kota" in (await _text(browser, "#picker label"))[2]
    await _load(browser, f"{served}/dashboard?token={admin}&region=8101&period={maluku.period}&lang=en")
    assert (await _text(browser, "h2"))[0].startswith("Indicators")
    headers = await _text(browser, "#indicators th")
    assert "Households registered" in headers and "Rumah tangga terdaftar" not in headers


async def test_the_picker_walks_down_the_regions_the_caller_may_read(served: str, browser: Any,
                                                                     maluku: Published) -> None:
    admin = tokens.admin()["Authorization"].removeprefix("Bearer ")
    await _load(browser, f"{served}/dashboard?token={admin}&period={maluku.period}")
    # An admin starts from Indonesia; the provinces are offered below it, with names from the registry's events.
    assert await _options(browser, 0) == [""]
    assert "81" in await _options(browser, 1)
    assert "Maluku (81)" in (await _text(browser, "#picker select"))[1]
    await _pick(browser, 1, "81")
    assert (await asyncio.to_thread(_page_cells, browser, "indicators"))[0]["region_code"] == "81"
    assert await _options(browser, 2) == ["", "8101", "8171"]
    await _pick(browser, 2, "8101")
    assert (await _figure(browser, "coverage.households"), await _figure(browser, "region_code")) == ("9", "8101")
    await _pick(browser, 3, "810101")
    assert await _options(browser, 4) == ["", *sorted([SEPA, TAMILOUW])]
    await _pick(browser, 4, TAMILOUW)
    assert await _figure(browser, "coverage.households") == "6"
    await _pick(browser, 4, "")  # "(all of it)": the district again
    assert await _figure(browser, "region_code") == "810101"
    # A pembina of Maluku Tengah is offered Maluku Tengah and what lies in it, not Maluku nor Kota Ambon.
    pembina = tokens.pembina("8101")["Authorization"].removeprefix("Bearer ")
    await _load(browser, f"{served}/dashboard?token={pembina}&period={maluku.period}")
    assert await _options(browser, 0) == ["8101"]
    assert await _options(browser, 1) == ["", "810101"]


async def test_the_region_api_refuses_what_the_caller_may_not_read(reporting: httpx.AsyncClient,
                                                                   maluku: Published) -> None:
    roots = await reporting.get("/api/v1/regions", headers=tokens.pembina("81"))
    assert roots.json() == {"parent": None, "regions": [{"code": "81", "name": "Maluku", "level": "province"}]}
    refused = await reporting.get("/api/v1/regions", params={"parent": "8171"}, headers=tokens.pembina("8101"))
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    national = await reporting.get("/api/v1/regions", params={"parent": ""}, headers=tokens.pembina("81"))
    assert national.status_code == 403
    for bad in ("81x", "123", "\uff18\uff11"):  # fullwidth digits are digits to str.isdigit()
        invalid = await reporting.get("/api/v1/regions", params={"parent": bad}, headers=tokens.admin())
        assert invalid.status_code == 422 and invalid.headers["content-type"] == "application/problem+json", bad
    assert (await reporting.get("/api/v1/regions")).status_code == 401
    kader = await reporting.get("/api/v1/regions", headers=tokens.kader([maluku.world.posyandu_tamilouw]))
    assert [r["code"] for r in kader.json()["regions"]] == [TAMILOUW]
    page = await reporting.get("/dashboard", params={"refresh": "-1"})
    assert page.status_code == 422 and page.headers["content-type"] == "application/problem+json"
    page = await reporting.get("/dashboard")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "<script>" not in page.text
    assert 'data-refresh="60"' in page.text


YOGYAKARTA = ("kode,nama\n34,DI Yogyakarta\n34.01,Kulon Progo\n34.01.02,Wates\n34.01.02.2001,Giripeni\n"
              "34.02,Bantul\n34.02.02,Bambanglipuro\n34.02.02.2001,Sumbermulyo\n")
GIRIPENI, SUMBERMULYO = "3401022001", "3402022001"


async def _household_at(household: httpx.AsyncClient, posyandu: str, village: str) -> None:
    serial = 1000 + uuid.uuid4().int % 8000
    district = village[:6]
    head = {"name": "Suparman", "sex": "male", "birth_date": "1980-06-17", "relationship": "head",
            "nik": f"{district}1706{date(1980, 6, 17):%y}{serial:04d}"}
    made = await household.post("/api/v1/households", headers=tokens.kader([posyandu]), json={
        "kk_number": f"{district}0212{serial:06d}", "village_code": village, "posyandu_id": posyandu,
        "address": "Jl. Bantul No. 5", "rt": "002", "rw": "003", "members": [head]})
    assert made.status_code == 201, made.text


async def test_the_dashboard_follows_a_household_registered_meanwhile(
        live_served: str, browser: Any, registry: httpx.AsyncClient, household: httpx.AsyncClient,
        household_db: Any) -> None:
    imported = await registry.post("/api/v1/regions/import", content=YOGYAKARTA.encode(),
                                   headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text
    kulon_progo = await known_posyandu(registry, household_db, GIRIPENI)
    bantul = await known_posyandu(registry, household_db, SUMBERMULYO)
    await _household_at(household, kulon_progo, GIRIPENI)
    admin = tokens.admin()["Authorization"].removeprefix("Bearer ")
    period = date.today().strftime("%Y-%m")

    async def regions_known() -> bool:
        listed = httpx.AsyncClient(base_url=live_served)
        async with listed:
            found = (await listed.get("/api/v1/regions", params={"parent": "34"}, headers=tokens.admin())).json()
        return {"3401", "3402"} <= {r["code"] for r in found["regions"]}

    await eventually(regions_known, "the reporting service to learn DI Yogyakarta's regions", timeout=120)
    await _load(browser, f"{live_served}/dashboard?token={admin}&region=34&period={period}&refresh=1")
    # The picker changes the figures: Kulon Progo has the household registered, Bantul none yet.
    await _pick(browser, 2, "3401")
    # The figures follow the consumer: refreshed every second.
    await eventually(lambda: _figure(browser, "coverage.households"), "Kulon Progo's household in the figures",
                     timeout=60, interval=0.1, until=lambda figure: figure == "1")
    await _pick(browser, 2, "3402")
    assert await _figure(browser, "coverage.households") == "0"
    # A household registered in Bantul through the household API shows without a reload of the page.
    await _script(browser, "window.notReloaded = true")
    await _household_at(household, bantul, SUMBERMULYO)
    await eventually(lambda: _figure(browser, "coverage.households"), "Bantul's new household in the figures",
                     timeout=120, interval=0.1, until=lambda figure: figure == "1")
    assert await _script(browser, "return window.notReloaded") is True
    assert await _figure(browser, "region_code") == "3402"

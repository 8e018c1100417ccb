"""The dashboard, driven in headless Chromium over real HTTP, shows the numbers the API returns."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from deploy.local.embedded import free_port
from services.reporting.tests.conftest import Published
from services.reporting.tests.scenario import SEPA, TAMILOUW
from tests.support import tokens

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
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(reporting_app, host="127.0.0.1", port=port, lifespan="off",
                                           log_level="warning"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
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
    """Each row of a rendered table as {column key: text shown}."""
    rows: dict[int, dict[str, str]] = {}
    for cell in driver.find_elements("css selector", f"#{table_id} td"):
        rows.setdefault(int(cell.get_attribute("data-row")), {})[cell.get_attribute("data-key")] = cell.text
    return [rows[i] for i in sorted(rows)]


def _shown(value: Any, kind: str, suppressed: bool, threshold: int | None) -> str:
    if suppressed:
        return "x"
    if value is None:
        return "\u2014"
    return f"{value * 100:.1f}%" if kind == "rate" else str(value)


async def _load(driver: Any, url: str) -> None:
    await asyncio.to_thread(driver.get, url)
    for _ in range(200):
        state = await asyncio.to_thread(driver.execute_script, "return document.body.dataset.loaded")
        if state in ("true", "error"):
            assert state == "true", await asyncio.to_thread(lambda: driver.find_element("id", "status").text)
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the dashboard did not load")


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
    await _load(browser, f"{served}/dashboard?token={admin}&region=8101&period={maluku.period}")
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
    for _ in range(200):
        if await asyncio.to_thread(browser.execute_script, "return document.body.dataset.loaded") == "error":
            break
        await asyncio.sleep(0.1)
    status = await asyncio.to_thread(lambda: browser.find_element("id", "status").text)
    assert "limited to region 8171" in status

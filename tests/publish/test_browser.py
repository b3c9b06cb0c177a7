"""The dashboard in a real browser: Debian's headless Chromium driven through its matching chromedriver.

Runs wherever the browser is installed; `.ci/run` installs it and sets CRYPTOCAST_REQUIRE_BROWSER=1,
so in CI a missing browser fails instead of skipping. The page is checked both opened from disk
(file://, where fetch() is blocked) and served over HTTP as GitHub Pages serves it.
A screenshot of each is kept in tests/artifacts/ (uploaded by ci.yml).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import plots
from conftest import REPO

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = REPO / "tests" / "artifacts"

if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("CRYPTOCAST_REQUIRE_BROWSER") == "1":
        raise RuntimeError("CRYPTOCAST_REQUIRE_BROWSER=1 but chromium/chromedriver are not installed")
    pytest.skip("Debian's chromium and chromium-driver are not installed", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=390,2400"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """A plain static file server on loopback, like Pages: no server-side logic."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/index.html"


@pytest.fixture(params=["file", "http"])
def opened(request, browser, tmp_path) -> Iterator[tuple[webdriver.Chrome, dict, str]]:
    """Build the site from the test store, open it the given way; yields (browser, forecast.json, mode)."""
    out = tmp_path / "site"
    assert plots.main(["--out", str(out)]) == 0
    browser.get_log("browser")  # drop anything left from an earlier page
    server = None
    if request.param == "http":
        server, url = serve(out)
    else:
        url = out.joinpath("index.html").as_uri()
    try:
        browser.get(url)
        yield browser, json.loads((out / "forecast.json").read_text()), request.param
    finally:
        if server:
            server.shutdown()


def severe_console(browser: webdriver.Chrome) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def image_states(browser: webdriver.Chrome) -> list[list]:
    """[src, loaded, natural width, alt] of every image, after scrolling each into view (charts load lazily)."""
    for image in browser.find_elements("tag name", "img"):
        browser.execute_script("arguments[0].scrollIntoView();", image)
        WebDriverWait(browser, 10).until(lambda _, i=image: i.get_property("complete"))
    return browser.execute_script(
        "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth, i.alt]);")


def test_every_image_loads_with_alt_text_and_no_console_errors(site_home, opened):
    browser, doc, mode = opened
    images = image_states(browser)
    assert len(images) == len(doc["charts"]) >= 9
    broken = [src for src, complete, width, _ in images if not (complete and width > 0)]
    assert broken == []
    assert all(alt.strip() for *_, alt in images)
    assert severe_console(browser) == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.execute_script("window.scrollTo(0, 0);")
    browser.save_screenshot(str(ARTIFACTS / f"dashboard-{mode}.png"))


def test_horizon_selector_changes_the_headline(site_home, opened):
    browser, doc, _ = opened
    rows = {row["horizon"]: row for row in doc["forecast"]["rows"]}
    select = Select(browser.find_element("id", "horizon"))
    shown = int(select.first_selected_option.get_attribute("value"))
    assert browser.find_element("id", "h-target").text == rows[shown]["target_day"]
    before = browser.find_element("id", "h-point").text

    other = 10 if shown != 10 else 1
    select.select_by_value(str(other))

    assert browser.find_element("id", "h-target").text == rows[other]["target_day"]
    point = browser.find_element("id", "h-point").text
    assert point != before
    assert point == f"${rows[other]['point']:,.2f}"
    selected = browser.find_elements("css selector", "tr.selected")
    assert [tr.get_attribute("data-h") for tr in selected] == [str(other)]
    assert severe_console(browser) == []


def test_the_empty_store_page_renders_without_errors(isolated, opened):
    browser, doc, _ = opened
    assert doc["forecast"] is None
    assert "no forecast" in browser.find_element("tag name", "body").text.lower()
    assert all(complete and width > 0 for _, complete, width, _ in image_states(browser))
    assert severe_console(browser) == []

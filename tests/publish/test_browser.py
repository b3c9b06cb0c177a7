"""The dashboard in a real browser: Debian's headless Chromium driven through its matching chromedriver.

Runs wherever the browser is installed; `.ci/run` installs it and sets CRYPTOCAST_REQUIRE_BROWSER=1,
so in CI a missing browser fails instead of skipping. The page is checked at a phone's width (390
CSS px, emulated as a mobile device) and a desktop's (1280), both opened from disk (file://, where
fetch() is blocked) and served over HTTP as GitHub Pages serves it. A full-page screenshot of each
is kept in tests/artifacts/ (uploaded by ci.yml).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cryptocast.__main__ import main as cryptocast_main

from .conftest import build
from conftest import REPO

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = REPO / "tests" / "artifacts"
WIDTHS = (390, 1280)
MIN_TEXT_CSS_PX = 11

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
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def emulate(browser: webdriver.Chrome, width: int, height: int = 900) -> None:
    """A viewport `width` CSS px wide; below 600 a phone (its viewport meta tag is honoured), as Chrome's device mode.

    A headless window cannot be made narrower than 500 px, so narrow widths need the emulation.
    """
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": height, "deviceScaleFactor": 2 if width < 600 else 1,
                             "mobile": width < 600})


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """A plain static file server on loopback, like Pages: no server-side logic."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/index.html"


@contextmanager
def open_site(browser: webdriver.Chrome, out: Path, mode: str, width: int) -> Iterator[None]:
    """The site open at `width`; the page is left (for a blank one) before its server stops.

    Otherwise resizing the next test's viewport would make the old page's <picture>s fetch
    from a server that is gone, and those errors would land in the next test's console.
    """
    emulate(browser, width)
    browser.get_log("browser")  # drop anything left from an earlier page
    server = None
    if mode == "http":
        server, url = serve(out)
    else:
        url = out.joinpath("index.html").as_uri()
    try:
        browser.get(url)
        yield
    finally:
        browser.get("about:blank")
        if server:
            server.shutdown()


@pytest.fixture(params=[(mode, width) for mode in ("file", "http") for width in WIDTHS],
                ids=lambda p: f"{p[0]}-{p[1]}")
def opened(request, browser, shared) -> Iterator[tuple[webdriver.Chrome, dict, str, int]]:
    """The shared site opened the given way at the given width: (browser, forecast.json, mode, width)."""
    out = shared[0]
    mode, width = request.param
    with open_site(browser, out, mode, width):
        yield browser, json.loads((out / "forecast.json").read_text()), mode, width


def severe_console(browser: webdriver.Chrome) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def image_states(browser: webdriver.Chrome) -> list[dict]:
    """Every image after scrolling it into view (charts load lazily): the file shown, sizes and alt."""
    for image in browser.find_elements("tag name", "img"):
        browser.execute_script("arguments[0].scrollIntoView();", image)
        WebDriverWait(browser, 20).until(lambda _, i=image: i.get_property("complete"))
    return browser.execute_script(
        "return Array.from(document.images).map(i => ({file: i.currentSrc.split('/').pop(), complete: i.complete, "
        "natural: i.naturalWidth, shown: i.getBoundingClientRect().width, alt: i.alt}));")


def screenshot(browser: webdriver.Chrome, name: str, width: int) -> None:
    """The whole page, top to bottom, as a reader at this width sees it."""
    browser.execute_script("window.scrollTo(0, 0);")
    height = browser.execute_script("return document.documentElement.scrollHeight;")
    emulate(browser, width, min(height, 16000))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / name))


def test_fits_the_width_every_chart_loads_readable_and_no_console_errors(opened):
    browser, doc, mode, width = opened
    text_px = {file: px for chart in doc["charts"] for file, px in chart["smallest_text_px"].items()}
    for name in ("index", "details"):
        if name != "index":
            browser.find_element("id", "details-link").click()
        sizes = browser.execute_script("return [document.documentElement.scrollWidth, "
                                       "document.documentElement.clientWidth, window.innerWidth];")
        assert sizes[0] <= sizes[1] == width, f"{name}: horizontal scroll: {sizes}"
        cut = browser.execute_script("return Array.from(document.querySelectorAll('.scroll'))"
                                     ".filter(box => box.scrollWidth > box.clientWidth).map(box => box.firstChild.id);")
        assert cut == [], f"{name}: tables wider than the screen: {cut}"
        images = image_states(browser)
        expected = [c["narrow_file"] if width < 600 else c["file"] for c in doc["charts"] if c["page"] == name]
        assert [i["file"] for i in images] == expected
        assert all(i["complete"] and i["natural"] > 0 and i["alt"].strip() for i in images), images
        for image in images:
            shown_px = text_px[image["file"]] * image["shown"] / image["natural"]
            assert shown_px >= MIN_TEXT_CSS_PX, (image["file"], round(shown_px, 1))
        assert severe_console(browser) == []
        screenshot(browser, f"{name}-{mode}-{width}.png", width)
    names = {c["file"].removesuffix(".png") for c in doc["charts"]}
    assert {"forecast", "ranges", "scoreboard", "range_scores"} <= names  # the fan, coverage over time, the scores


FIRST_SCREEN = {390: 844, 1280: 900}  # an iPhone 12-15's viewport; a laptop's
MAIN_PAGE_MAX = 4000  # CSS px at 390: about five phone screens
# what the reader came for: the range sentence, each of its numbers, and the fan chart
ANSWER = ("answer-sentence", "a-low", "a-high", "a-pct", "a-95", "a-held")
NOMINAL = {"50%", "80%", "90%", "95%"}  # the ranges' names, not measurements


def bottoms(browser: webdriver.Chrome, ids: tuple[str, ...]) -> dict[str, float]:
    return browser.execute_script(
        "return Object.fromEntries(arguments[0].map(id => [id, document.getElementById(id)"
        ".getBoundingClientRect().bottom + window.scrollY]));", list(ids))


def test_the_answer_and_the_fan_come_first_on_a_short_page(opened):
    browser, doc, _, width = opened
    found = bottoms(browser, ANSWER)
    fan = browser.execute_script("var img = document.querySelector('#answer img'); return [img.currentSrc.split('/')"
                                 ".pop(), img.getBoundingClientRect().bottom + window.scrollY, "
                                 "img.getBoundingClientRect().width, document.querySelector('main').clientWidth];")
    assert fan[0].removesuffix(".png").removesuffix("-narrow") == "forecast"
    assert max(found.values()) <= FIRST_SCREEN[width] and fan[1] <= FIRST_SCREEN[width], (found, fan)
    assert fan[2] >= 0.9 * fan[3] if width < 600 else fan[2] >= 700  # the chart at the column's full width
    height = browser.execute_script("return document.documentElement.scrollHeight;")
    if width < 600:
        assert height <= MAIN_PAGE_MAX, height


def test_no_chart_on_the_main_page_repeats_another_and_every_number_appears_once(opened):
    browser, doc, _, width = opened
    images = image_states(browser)
    assert len(images) == 1 and images[0]["file"].startswith("forecast")  # one chart: nothing to repeat
    shown = browser.execute_script("return document.querySelector('main').innerText;")  # closed <details> excluded
    numbers = [n for n in re.findall(r"[-+]?\d[\d,]*\.\d+%?|\d+(?:\.\d+)?%", shown) if n not in NOMINAL]
    repeated = {n for n in numbers if numbers.count(n) > 1}
    assert numbers and not repeated, (repeated, shown)
    # each figure at one precision: prices in cents, changes and shares to a tenth of a percent
    assert all(re.fullmatch(r"[-+]?[\d,]+\.\d\d|[-+]?\d+\.\d%", n) for n in numbers), numbers


def test_the_selector_updates_the_answer(opened):
    browser, doc, _, _ = opened
    rows = {row["horizon"]: row for row in doc["forecast"]["rows"]}
    select = Select(browser.find_element("id", "horizon"))
    shown = int(select.first_selected_option.get_attribute("value"))
    assert browser.find_element("id", "a-target").text == rows[shown]["target_day"]
    before = browser.find_element("id", "a-high").text

    other = 1 if shown != 1 else 10
    select.select_by_value(str(other))

    row, last = rows[other], doc["forecast"]["last_close"]
    assert browser.find_element("id", "a-target").text == row["target_day"]
    high = browser.find_element("id", "a-high").text
    assert high != before and high == f"{row['upper_80']:,.2f}"
    assert browser.find_element("id", "a-low").text == f"{row['lower_80']:,.2f}"
    assert browser.find_element("id", "a-pct").text == f"{row['lower_80'] / last - 1:+.1%} to " \
                                                       f"{row['upper_80'] / last - 1:+.1%}"
    assert browser.find_element("id", "a-95").text == f"{row['lower_95']:,.2f} to {row['upper_95']:,.2f} {doc['unit']}"
    held = doc["held"][str(other)]
    where = "this site's published forecasts" if held["source"] == "published" else \
        "the backtest (no published forecast counts yet)"
    assert browser.find_element("id", "a-held").text == (f"How often such ranges held: {held['coverage_80']:.1%} of "
                                                          f"{held['n']} times 1 day ahead, in {where}.")
    browser.find_element("css selector", "#every-day summary").click()
    selected = browser.find_elements("css selector", "#forecast-table tr.selected")
    assert [tr.get_attribute("data-h") for tr in selected] == [str(other)]
    assert severe_console(browser) == []


@pytest.mark.parametrize("mode", ["file", "http"])
def test_the_csv_link_downloads_the_rows_export_writes(browser, shared, tmp_path, capsys, monkeypatch, mode):
    out, home = shared
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with open_site(browser, out, mode, WIDTHS[0]):
        browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        browser.find_element("css selector", "#every-day summary").click()
        link = browser.find_element("id", "csv")
        browser.execute_script("arguments[0].scrollIntoView();", link)
        link.click()
        WebDriverWait(browser, 20).until(lambda _: [p for p in downloads.iterdir() if p.suffix == ".csv"])
    monkeypatch.setenv("CRYPTOCAST_HOME", str(home))
    capsys.readouterr()
    assert cryptocast_main(["export", "solana_forecasts"]) == 0
    assert (downloads / "solana_forecasts.csv").read_text() == capsys.readouterr().out


def test_the_empty_store_page_renders_without_errors(isolated, browser, tmp_path):
    out = tmp_path / "site"
    assert build(out) == 0
    with open_site(browser, out, "file", WIDTHS[0]):
        assert "no forecast" in browser.find_element("tag name", "body").text.lower()
        assert all(i["complete"] and i["natural"] > 0 for i in image_states(browser))
        assert browser.execute_script("return document.documentElement.scrollWidth;") <= WIDTHS[0]
        assert severe_console(browser) == []

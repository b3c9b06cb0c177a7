#!/usr/bin/env python
"""The README's two screenshots of a built page: its first screen on a phone and on a desktop.

    .venv/bin/python tools/screenshots.py docs    # after the README's offline CSV recipe

Drives Debian's headless Chromium as tests/publish/test_browser.py does (a 390 CSS px phone at two
device pixels per CSS pixel; a 1280 x 800 desktop) and writes guide/img/page-phone.png and
page-desktop.png, reduced to 256 colours (a third of the bytes; text stays sharp).
"""

from __future__ import annotations

import argparse
import io
import shutil
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

REPO = Path(__file__).resolve().parents[1]
SHOTS = {"page-phone.png": (390, 844), "page-desktop.png": (1280, 800)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the folder plots.py wrote (docs)")
    parser.add_argument("--out", type=Path, default=REPO / "guide" / "img")
    args = parser.parse_args()
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        for name, (width, height) in SHOTS.items():
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                   {"width": width, "height": height, "deviceScaleFactor": 2 if width < 600 else 1,
                                    "mobile": width < 600})
            driver.get((args.site / "index.html").resolve().as_uri())
            png = Image.open(io.BytesIO(driver.get_screenshot_as_png()))
            png.convert("RGB").quantize(256).save(args.out / name, optimize=True)
            print(f"{args.out / name}: {png.size[0]}x{png.size[1]}")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()

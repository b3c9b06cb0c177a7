"""The static dashboard, from the stores alone: `index.html` (the answer), `details.html` (the modeller's
page), their charts, `forecast.json` and the forecasts as CSV.

gather (read the stores) → document (forecast.json) → figures (the charts) → page (the template)
→ output (all-or-nothing publish). The page references no external resource and works both
opened from disk (file://, where fetch() is blocked) and served by GitHub Pages: its script reads
the numbers from a copy of forecast.json embedded in the page, byte for byte the same text.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path

from cryptocast.features import FORECASTS
from cryptocast.publish.document import FORECASTS_CSV, forecast_document, json_text, scored_forecasts
from cryptocast.publish.figures import render_charts
from cryptocast.publish.gather import gather
from cryptocast.publish.output import prepare_directory, publish
from cryptocast.publish.page import render_details, render_page
from cryptocast.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_HORIZON = 5


def build_site(settings: Settings, out: Path, horizon: int = DEFAULT_HORIZON) -> None:
    """Gather, render in memory, then publish: nothing is written unless everything rendered."""
    started = time.monotonic()
    prepare_directory(out)  # fail before the rendering work if the site cannot be written there
    inputs = gather(settings)
    log.info("read %s; forecasts %d rows; model %s in %.2fs",
             ", ".join(f"{name} {g['rows']} rows" for name, g in inputs.groups.items() if name != FORECASTS.name),
             len(inputs.forecasts), f"{inputs.model.name} v{inputs.model.version}" if inputs.model else "none",
             time.monotonic() - started)
    scored = scored_forecasts(inputs)
    doc = forecast_document(inputs, scored, settings, horizon, dt.datetime.now(dt.UTC))
    rendered = render_charts(inputs, scored, doc)
    doc["charts"] = [chart.entry() for chart in rendered]
    payload = json_text(doc)
    index = render_page(doc, rendered, payload)
    details = render_details(doc, rendered)
    files = {name: png for chart in rendered for name, png in chart.files().items()} | {
        "forecast.json": payload.encode(), FORECASTS_CSV: inputs.forecasts_csv, "index.html": index.encode(),
        "details.html": details.encode(), ".nojekyll": b""}
    started = time.monotonic()
    publish(out, files)
    log.info("site: %d files, %d KB, written to %s in %.2fs", len(files), sum(map(len, files.values())) // 1024, out,
             time.monotonic() - started)

#!/usr/bin/env python
"""Build the dashboard: charts, index.html, forecast.json and the forecasts as CSV, from the store and registry.

Writes into DIR (default docs/) only after everything rendered, so a failure (an unreadable model
artifact, an unwritable directory) prints one line, exits non-zero and leaves the previous site.
"""

import argparse
import sys
from pathlib import Path

from cryptocast import cli
from cryptocast.publish import site


def _horizon(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days from 1 to 10")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser(__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs"), metavar="DIR",
                        help="where the site goes (docs): a new or empty folder, or one plots.py wrote before")
    parser.add_argument("--horizon", type=_horizon, default=site.DEFAULT_HORIZON, metavar="N",
                        help=f"extra hindcast chart at N days ahead, besides 1 and 10 (default {site.DEFAULT_HORIZON})")
    args = parser.parse_args(argv)
    return cli.execute(args, lambda settings: site.build_site(settings, args.out, args.horizon), "plots")


if __name__ == "__main__":
    sys.exit(main())

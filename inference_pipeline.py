#!/usr/bin/env python
"""Forecast SOL's close for the 10 days after the last complete day, with the production model.

Refuses (exit 1, one line) when the data is stale or has holes it cannot fill, or when the model
files are missing or corrupt. Re-running a day replaces only that day's forecast rows.
"""

import sys

from cryptocast import cli, inference


def main(argv: list[str] | None = None) -> int:
    args = cli.parser(__doc__).parse_args(argv)
    return cli.execute(args, inference.infer, "inference_pipeline")


if __name__ == "__main__":
    sys.exit(main())

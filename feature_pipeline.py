#!/usr/bin/env python
"""Bring every feature group up to the last complete UTC day before CRYPTOCAST_AS_OF.

Finds missing days anywhere in each group, fetches only those, validates and upserts them.
Running it twice adds nothing; days the upstream API never had are reported, not invented.
"""

import sys

from cryptocast import cli, ingest


def main(argv: list[str] | None = None) -> int:
    args = cli.parser(__doc__).parse_args(argv)
    return cli.execute(args, ingest.update, "feature_pipeline")


if __name__ == "__main__":
    sys.exit(main())

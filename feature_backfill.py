#!/usr/bin/env python
"""Load the full daily history of SOL, BTC and Fear & Greed into the feature store.

Each group comes from its CSV export when one is given, otherwise from the APIs (CryptoCompare
with CRYPTO_API_KEY, else Binance; alternative.me for Fear & Greed). Safe to re-run: rows are
upserted by day, and nothing is written unless every group validates. Rows already stored are
never changed unless --replace is given: then each changed day is logged, and the write is a commit
that `python -m cryptocast rollback` can undo.
"""

import sys
from pathlib import Path

from cryptocast import cli, ingest


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser(__doc__)
    parser.add_argument("--solana-csv", type=Path, metavar="FILE", help="CryptoCompare or Binance SOL export")
    parser.add_argument("--bitcoin-csv", type=Path, metavar="FILE", help="CryptoCompare or Binance BTC export")
    parser.add_argument("--fear-greed-csv", type=Path, metavar="FILE", help="Fear & Greed export")
    parser.add_argument("--replace", action="store_true",
                        help="let the rows change stored ones (logged per day; undo with `rollback`)")
    args = parser.parse_args(argv)
    csv_files = {
        group: path
        for group, path in (("solana", args.solana_csv), ("bitcoin", args.bitcoin_csv),
                            ("fear_greed", args.fear_greed_csv))
        if path is not None
    }
    return cli.execute(args, lambda settings: ingest.backfill(settings, csv_files, args.replace), "feature_backfill")


if __name__ == "__main__":
    sys.exit(main())

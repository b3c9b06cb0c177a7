#!/usr/bin/env python
"""Train the 10-day SOL forecaster, backtest it against naive baselines, and register it.

Walk-forward backtest over the last CRYPTOCAST_BACKTEST_DAYS days (refit every
CRYPTOCAST_REFIT_EVERY origins) for our LSTM, naive persistence, drift and the original system's
model; then a production fit on all data. The new version becomes production only if its mean
relative MAE vs naive is no worse than the current production version's.
"""

import sys

from cryptocast import cli, training


def main(argv: list[str] | None = None) -> int:
    args = cli.parser(__doc__).parse_args(argv)
    return cli.execute(args, training.train, "training_pipeline")


if __name__ == "__main__":
    sys.exit(main())

"""`python -m cryptocast status|export`: look inside the store without touching it."""

from __future__ import annotations

import argparse
import json
import sys

from cryptocast import cli
from cryptocast.errors import CryptocastError
from cryptocast.settings import Settings
from cryptocast.status import ALL_GROUPS, export_frame, format_status, status
from cryptocast.stores import open_feature_store


def _status(args: argparse.Namespace, settings: Settings) -> None:
    report = status(open_feature_store(settings), settings)
    print(json.dumps(report, indent=2) if args.json else format_status(report))


def _export(args: argparse.Namespace, settings: Settings) -> None:
    if args.group not in ALL_GROUPS:
        raise CryptocastError(f"unknown group '{args.group}'; known: {', '.join(ALL_GROUPS)}")
    frame = export_frame(open_feature_store(settings), ALL_GROUPS[args.group])
    if args.out:
        frame.to_csv(args.out, index=False)
    else:
        frame.to_csv(sys.stdout, index=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cryptocast", description="Inspect the cryptocast store.")
    commands = parser.add_subparsers(dest="command", required=True)
    status_cmd = commands.add_parser(
        "status", parents=[cli.common_flags()], help="backend, groups, versions, rows, days, holes and models",
        description="What the store holds: per feature group its version, rows, first and last day, the days "
                    "missing between them and how far it is behind the last complete day; then every registered "
                    "model version and which one is in production. Reads only; changes nothing.")
    status_cmd.add_argument("--json", action="store_true", help="machine-readable output (a stable contract)")
    export_cmd = commands.add_parser(
        "export", parents=[cli.common_flags()], help="dump a feature group as CSV",
        description="One feature group as CSV on stdout (or --out FILE.csv): its key (day or forecast_day) "
                    "first, dates as YYYY-MM-DD, forecast prices rounded to cents. Reads only; changes nothing.")
    export_cmd.add_argument("group", help=f"one of: {', '.join(ALL_GROUPS)}")
    export_cmd.add_argument("--out", metavar="FILE.csv", help="write here instead of stdout")
    args = parser.parse_args(argv)
    action = _status if args.command == "status" else _export
    return cli.execute(args, lambda settings: action(args, settings), args.command, quiet=True)


if __name__ == "__main__":
    sys.exit(main())

"""`python -m cryptocast status|export|doctor`: look inside the store, or check a backend end to end."""

from __future__ import annotations

import argparse
import json
import sys

from cryptocast import cli, doctor
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


def _doctor(args: argparse.Namespace, settings: Settings) -> None:
    doctor.doctor(settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Inspect the cryptocast store.")
    commands = parser.add_subparsers(dest="command", required=True)
    status_cmd = commands.add_parser("status", parents=[cli.common_flags()],
                                     help="backend, groups, versions, rows, days, holes and models")
    status_cmd.add_argument("--json", action="store_true", help="machine-readable output (a stable contract)")
    export_cmd = commands.add_parser("export", parents=[cli.common_flags()], help="dump a feature group as CSV")
    export_cmd.add_argument("group", help=f"one of: {', '.join(ALL_GROUPS)}")
    export_cmd.add_argument("--out", metavar="FILE.csv", help="write here instead of stdout")
    commands.add_parser("doctor", parents=[cli.common_flags()],
                        help="try every kind of call the pipeline makes on scratch objects, then delete them")
    args = parser.parse_args(argv)
    action = {"status": _status, "export": _export, "doctor": _doctor}[args.command]
    return cli.execute(args, lambda settings: action(args, settings), args.command, quiet=args.command != "doctor")


if __name__ == "__main__":
    sys.exit(main())

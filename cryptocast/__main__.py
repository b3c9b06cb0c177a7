"""`python -m cryptocast status|export|history|rollback|verify|doctor|health|hopsworks-reset`: look inside the
store, undo a write, check a backend end to end, read the model's latest health record, or start over on Hopsworks.

status, export, verify and health never change the store; rollback adds a commit (so it can be undone);
hopsworks-reset deletes cryptocast's groups and view on Hopsworks, only with its confirmation flag.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from pathlib import Path

from cryptocast import cli, commits, doctor, health, hopsworks_reset
from cryptocast.atomic import atomic_write_bytes
from cryptocast.errors import CryptocastError
from cryptocast.settings import Settings
from cryptocast.status import ALL_GROUPS, export_frame, format_status, status
from cryptocast.stores import open_feature_store
from cryptocast.verify import verify


def _status(args: argparse.Namespace, settings: Settings) -> None:
    report = status(open_feature_store(settings), settings)
    print(json.dumps(report, indent=2) if args.json else format_status(report))


def _export(args: argparse.Namespace, settings: Settings) -> None:
    if args.group not in ALL_GROUPS:
        raise CryptocastError(f"unknown group '{args.group}'; known: {', '.join(ALL_GROUPS)}")
    if args.out is not None and (not args.out or Path(args.out).is_dir()):
        raise CryptocastError(f"--out {args.out!r} must name a file (a CSV to write), not "
                              f"{'a directory' if args.out else 'nothing'}; omit --out to write to stdout")
    if args.out is not None and Path(args.out).resolve().is_relative_to(settings.home.resolve()):
        raise CryptocastError(f"--out {args.out!r} is inside the store ({settings.home}); export only reads it: "
                              "write the CSV elsewhere")
    if args.out is not None:
        _refuse_special_file(args.out)
    frame = export_frame(open_feature_store(settings), ALL_GROUPS[args.group])
    if args.out is None:
        frame.to_csv(sys.stdout, index=False)
        return
    try:
        atomic_write_bytes(Path(args.out), frame.to_csv(index=False).encode())
    except OSError as exc:
        raise CryptocastError(f"cannot write {args.out}: {exc.strerror or exc}") from None


def _refuse_special_file(out: str) -> None:
    """--out is a new path or a regular file: the atomic write replaces what is there, so a device (/dev/full,
    as root), a pipe or a symbolic link would be replaced by a plain file."""
    try:
        mode = os.lstat(out).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise CryptocastError(f"--out {out!r}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        kind = ("a symbolic link" if stat.S_ISLNK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise CryptocastError(f"--out {out!r} is {kind}: export writes a new file or replaces a regular one "
                              "(omit --out to write to stdout)")


def _history(args: argparse.Namespace, settings: Settings) -> None:
    store = commits.local_store(open_feature_store(settings), "history")
    print("\n".join(commits.history_lines(commits.find_group(store, args.group))))


def _rollback(args: argparse.Namespace, settings: Settings) -> None:
    store = commits.local_store(open_feature_store(settings), "rollback")
    print(commits.rollback(commits.find_group(store, args.group), args.to))


def _verify(args: argparse.Namespace, settings: Settings) -> None:
    print("\n".join(verify(settings)))


def _doctor(args: argparse.Namespace, settings: Settings) -> None:
    doctor.doctor(settings)


def _health(args: argparse.Namespace, settings: Settings) -> None:
    rows = health.latest(open_feature_store(settings))
    print(json.dumps(health.as_json(rows), indent=2) if args.json else "\n".join(health.format_lines(rows)))


def _hopsworks_reset(args: argparse.Namespace, settings: Settings) -> None:
    hopsworks_reset.reset(settings, args.yes_delete_cryptocast_groups, sys.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = cli.Parser(prog="python -m cryptocast", description="Inspect the cryptocast store.")
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
    history_cmd = commands.add_parser("history", parents=[cli.common_flags()],
                                      help="every commit of a group, newest first (local backend)")
    history_cmd.add_argument("group", help=f"one of: {', '.join(ALL_GROUPS)}, or <group>_v<version>")
    rollback_cmd = commands.add_parser("rollback", parents=[cli.common_flags()],
                                       help="make a group's rows of an earlier commit live again (local backend)")
    rollback_cmd.add_argument("group", help=f"one of: {', '.join(ALL_GROUPS)}, or <group>_v<version>")
    rollback_cmd.add_argument("--to", type=int, required=True, metavar="N",
                              help="the commit (see history); -1 starts a group with no intact version empty")
    commands.add_parser("verify", parents=[cli.common_flags()],
                        help="check every stored file against its recorded checksums (local backend)")
    commands.add_parser("doctor", parents=[cli.common_flags()],
                        help="try every kind of call the pipeline makes on scratch objects, then delete them")
    health_cmd = commands.add_parser(
        "health", parents=[cli.common_flags()], help="the latest model health record, one line per check",
        description="The newest day's model_health record (written by inference_pipeline.py): live scores of "
                    "matured forecasts against the backtest's range, input drift and frozen inputs; each check "
                    "with its statistic, threshold, window and verdict (ok, fail, unknown). Reads only.")
    health_cmd.add_argument("--json", action="store_true", help="machine-readable output (a stable contract)")
    reset_cmd = commands.add_parser(
        "hopsworks-reset", parents=[cli.common_flags()],
        help="delete cryptocast's own feature groups and view on Hopsworks, to start over",
        description=f"Deletes, on Hopsworks, {', '.join(hopsworks_reset.targets())} with their rows, and nothing "
                    "else (not the model registry). For groups left in another format or schema: see "
                    "guide/hopsworks.md.")
    reset_cmd.add_argument(hopsworks_reset.CONFIRM, action="store_true", help="really delete them")
    args = parser.parse_args(argv)
    action = {"status": _status, "export": _export, "history": _history, "rollback": _rollback, "verify": _verify,
              "doctor": _doctor, "health": _health, "hopsworks-reset": _hopsworks_reset}[args.command]
    return cli.execute(args, lambda settings: action(args, settings), args.command,
                       quiet=args.command not in ("rollback", "doctor", "hopsworks-reset"))


if __name__ == "__main__":
    sys.exit(main())

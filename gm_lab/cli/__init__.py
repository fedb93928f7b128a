"""`gm-lab`: the command line of gm_lab. Each command group lives in its own module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gm_lab import __version__
from gm_lab.cli import costs, data, evolve, lab, nas, predict, probe, proxies, rerun
from gm_lab.errors import GmLabError

COMMAND_GROUPS = (data, probe, proxies, costs, evolve, rerun, lab, predict, nas)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gm-lab",
        description=(
            "GreenMachine Lab: evolve zero-cost NAS proxies on NATS-Bench. Data is read from "
            "$GM_LAB_DATA (laid out like shared/data: nats_bench/, images/); caches go to "
            "$GM_LAB_CACHE."
        ),
    )
    parser.add_argument("--version", action="version", version=f"gm_lab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


def expressions_may_start_with_minus(argv: Sequence[str]) -> list[str]:
    """`gm-lab score -naswot` means the expression "-naswot", not an option: gm-lab has no
    single-dash options but -h, so a single-dash word is protected from argparse by a leading
    space (which the expression parser ignores). `--` before it works as well."""
    return [
        f" {a}" if a.startswith("-") and not a.startswith("--") and a != "-h" else a for a in argv
    ]


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(expressions_may_start_with_minus(argv))
    args.argv = ["gm-lab", *argv]  # the command as run, for the results' provenance
    try:
        return int(args.run(args) or 0)
    except GmLabError as exc:
        print(f"gm-lab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gm-lab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

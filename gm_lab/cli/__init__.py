"""`gm-lab`: the command line of gm_lab. Each command group lives in its own module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gm_lab import __version__
from gm_lab.cli import data, evolve, lab, probe
from gm_lab.errors import GmLabError

COMMAND_GROUPS = (data, probe, evolve, lab)


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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

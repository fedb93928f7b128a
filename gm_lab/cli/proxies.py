"""`gm-lab proxies`: every registered proxy with what it needs, its cost class and reference."""

from __future__ import annotations

import argparse
import json
import textwrap


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "proxies",
        help="list the registered proxies (needs, cost class, reference)",
        description=(
            "List every proxy gm_lab can score: gm_lab's own and those registered by installed "
            "plug-ins (entry point group gm_lab.proxies), cheapest first. 'shared' proxies "
            "come from the probe's shared passes; 'standalone' ones run their own passes, "
            "only when an expression or a search uses them."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run_proxies)


def run_proxies(args: argparse.Namespace) -> int:
    from gm_lab.plugins import PROXIES

    specs = sorted(PROXIES.specs(), key=lambda s: (s.needs.rank, s.name))
    if args.json:
        out = {"proxies": [s.describe() for s in specs], "load_errors": PROXIES.load_errors}
        print(json.dumps(out, indent=2))
        return 0
    width = max(len(s.name) for s in specs)
    print(f"{'proxy':<{width}}  {'kind':<10}  {'sign':>4}  {'cost class':<26}  reference")
    for s in specs:
        kind = "standalone" if s.standalone else "shared"
        ref = textwrap.shorten(s.reference, 70, placeholder="...")
        sign = "+" if s.sign > 0 else "-"
        print(f"{s.name:<{width}}  {kind:<10}  {sign:>4}  {s.needs.cost_class:<26}  {ref}")
    for name, why in PROXIES.load_errors.items():
        print(f"(plug-in {name!r} failed to load: {why})")
    return 0

"""`gm-lab rerun RESULT.json`: repeat the command a result records and say whether the numbers
match.

A result's `provenance` block (gm_lab.provenance.run_provenance) holds the command as run. It is
parsed by gm-lab's own argument parser, never evaluated: only `gm-lab score`, `gm-lab evolve`
and `gm-lab data info` are repeated; options that write files (`--save`, `--checkpoint`) are
dropped, so a rerun never overwrites the result it checks; `--resume` is refused (the checkpoint
has moved on since). The command runs again in this process with `--json`, and every number,
flag and text of the new result is compared with the recorded one (times, energy, cache paths,
probe counts and notes excepted). Exit status: 0 all match, 1 some differ (or the repeated command
failed), 2 a result that cannot be repeated.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import shlex
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gm_lab.cli.checks import finite_non_negative
from gm_lab.errors import GmLabError

REPEATABLE = ("score", "evolve", "data info")
WRITES = ("--save", "--checkpoint")  # dropped: a rerun writes no file
IGNORED_ANYWHERE = {"seconds", "probed", "reused", "cache", "note"}  # how it ran, not what
IGNORED_AT = {  # top-level keys (or key paths) that name this run, not its numbers
    ("provenance",),
    ("source",),
    ("sources",),
    ("config", "checkpoint_dir"),
    ("config", "workers"),
    ("config", "scheduler"),
    ("costs", "source"),  # where the pass costs came from (a path when measured here)
    ("costs", "about"),
    ("usage",),  # wall and CPU seconds and energy of the run (gm_lab.energy): differ every run
    ("best_cost", "source"),  # as ("costs", "source")
    ("cost", "source"),  # gm-lab score's cost: as ("costs", "source")
}
ENVIRONMENT = (  # provenance entries that explain differing numbers
    ("gm_lab", "version"),
    ("gm_lab", "commit"),
    ("gm_lab", "dirty"),
    ("probe_version",),
    ("versions", "python"),
    ("versions", "torch"),
    ("versions", "numpy"),
    ("versions", "scipy"),
    ("versions", "deap"),
    ("data", "sha256"),
    ("data", "truth_sha256"),
)

KeyPath = tuple[str | int, ...]


class NotRepeatableError(GmLabError):
    """The file is no result gm-lab rerun can repeat (the message says why)."""


def register(commands: argparse._SubParsersAction) -> None:
    rerun = commands.add_parser(
        "rerun",
        help="repeat the command a --json result records and compare the numbers",
        description=(
            "Read the command recorded in RESULT.json's provenance (gm-lab score, evolve or "
            "data info), run it again with --json (never writing --save or --checkpoint files) "
            "and print every number that differs, with the headline ones: field, recorded, "
            "now, match. Also says whether gm_lab's commit, the package versions or the data "
            "differ from the recorded run. Exit 0: all match; 1: some differ; 2: the file "
            "cannot be repeated."
        ),
    )
    rerun.add_argument("result", type=Path, metavar="RESULT.json", help="a --json result")
    rerun.add_argument(
        "--tolerance",
        type=finite_non_negative,
        default=1e-6,
        help="relative tolerance of a number (default 1e-6)",
    )
    rerun.add_argument(
        "--fresh-cache",
        action="store_true",
        help="probe again into a temporary cache instead of reusing the probe cache",
    )
    rerun.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    rerun.set_defaults(run=run_rerun)


# ---- the command ---------------------------------------------------------------------------------
def load_result(path: Path) -> dict[str, Any]:
    """The JSON object of a result file (NotRepeatableError if it is none)."""
    try:
        document = json.loads(Path(path).read_text())
    except OSError as exc:
        raise NotRepeatableError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise NotRepeatableError(f"{path} is not JSON (a --json result of gm-lab)") from None
    if not isinstance(document, dict):
        raise NotRepeatableError(f"{path} is not a gm-lab result (no JSON object)")
    return document


def repeat_command(result: dict[str, Any], name: str = "the result") -> list[str]:
    """The recorded command, checked and made safe to repeat: arguments after "gm-lab", with
    --json and without the options that write files. NotRepeatableError says why not."""
    provenance = result.get("provenance")
    command = provenance.get("command") if isinstance(provenance, dict) else None
    if not isinstance(provenance, dict) or "command" not in provenance:
        raise NotRepeatableError(
            f"{name} records no provenance (no command to repeat): it comes from an older "
            "gm_lab or from the Python API"
        )
    if (
        not isinstance(command, list)
        or not all(isinstance(a, str) for a in command)
        or command[:1] != ["gm-lab"]
    ):
        raise NotRepeatableError(
            f"{name} records {_shown(command)}, not a gm-lab command: nothing is repeated"
        )
    argv = _without_writes(command[1:])
    args = _parse(argv)
    what = "data info" if args.command == "data" and args.data_command == "info" else args.command
    if what not in REPEATABLE:
        raise NotRepeatableError(
            f"gm-lab rerun repeats gm-lab score, evolve and data info; {name} records "
            f"`{shlex.join(command[:3])} ...`"
        )
    if what == "evolve" and args.resume is not None:
        raise NotRepeatableError(
            f"{name} comes from `gm-lab evolve --resume`: its checkpoint has moved on since; "
            "repeat the command that started the search instead"
        )
    if any(getattr(args, dest, None) is not None for dest in ("save", "checkpoint")):
        raise NotRepeatableError(
            f"{name} records an abbreviated --save or --checkpoint option; write it in full"
        )
    return argv if args.json else [*argv, "--json"]


def _without_writes(argv: list[str]) -> list[str]:
    out, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "--":
            return out + argv[i:]
        if arg in WRITES:
            skip = True
            continue
        if arg.split("=", 1)[0] in WRITES:
            continue
        out.append(arg)
    return out


def _parse(argv: list[str]) -> argparse.Namespace:
    """The recorded command parsed as gm-lab parses it (argparse's complaint, if any, becomes
    a NotRepeatableError)."""
    from gm_lab.cli import build_parser, expressions_may_start_with_minus

    complaint = io.StringIO()
    try:
        with contextlib.redirect_stderr(complaint), contextlib.redirect_stdout(io.StringIO()):
            return build_parser().parse_args(expressions_may_start_with_minus(argv))
    except SystemExit:
        lines = complaint.getvalue().strip().splitlines() or ["(no message)"]
        why = re.sub(r"^gm-lab[\w -]*: error: ", "", lines[-1])
        raise NotRepeatableError(
            f"the recorded command `gm-lab {shlex.join(argv)}` does not parse: {why}"
        ) from None


def _shown(command: Any) -> str:
    text = shlex.join(command) if isinstance(command, list) else json.dumps(command)
    return f"`{text[:80]}`"


def run_again(argv: list[str], fresh_cache: bool) -> tuple[int, dict[str, Any] | None]:
    """Run `gm-lab ARGV` in this process (its messages go to stderr, as they would); its exit
    status and JSON result. `fresh_cache`: probe into a temporary cache, removed afterwards."""
    from gm_lab.cli import main
    from gm_lab.paths import CACHE_ENV

    out = io.StringIO()
    before = os.environ.get(CACHE_ENV)
    with tempfile.TemporaryDirectory(prefix="gm-lab-rerun-") as scratch:
        if fresh_cache:
            os.environ[CACHE_ENV] = scratch
        try:
            with contextlib.redirect_stdout(out):
                code = main(argv)
        except Exception:  # a bug of the repeated command: show it, compare nothing
            traceback.print_exc()
            code = 1
        finally:
            if fresh_cache and before is None:
                del os.environ[CACHE_ENV]
            elif fresh_cache:
                os.environ[CACHE_ENV] = before
    if code != 0:
        return code, None
    try:
        return 0, json.loads(out.getvalue())
    except ValueError:
        return 1, None


def run_rerun(args: argparse.Namespace) -> int:
    recorded = load_result(args.result)
    argv = repeat_command(recorded, str(args.result))
    log = sys.stderr if args.json else sys.stdout
    print(f"repeating: gm-lab {shlex.join(argv)}", file=log, flush=True)
    code, now = run_again(argv, args.fresh_cache)
    if now is None:
        print(
            f"gm-lab rerun: the repeated command failed (exit {code}); nothing to compare",
            file=sys.stderr,
        )
        return 2 if code == 2 else 1
    rows = compare(recorded, now, args.tolerance)
    environment = environment_changes(recorded["provenance"], now.get("provenance") or {})
    differ = [r for r in rows if not r.match]
    shown = [r for r in rows if r.headline or not r.match]
    if args.json:
        provenance = {**(now.get("provenance") or {}), "command": getattr(args, "argv", None)}
        print(
            json.dumps(
                {
                    "result": str(args.result),
                    "command": ["gm-lab", *argv],
                    "match": not differ,
                    "compared": len(rows),
                    "differ": len(differ),
                    "tolerance": args.tolerance,
                    "fields": [r.to_dict() for r in shown],
                    "environment": environment,
                    "provenance": provenance,
                }
            )
        )
    else:
        print(table(shown))
        verdict = (
            "all match"
            if not differ
            else f"{len(differ)} differ: " + ", ".join(r.field for r in differ[:5])
        )
        print(f"\ncompared {len(rows)} fields: {verdict} (relative tolerance {args.tolerance:g})")
        print(environment_line(environment, recorded["provenance"]))
    return 1 if differ else 0


# ---- comparing -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    field: str
    recorded: Any
    now: Any
    match: bool
    headline: bool
    detail: str = ""  # for lists: how many values differ

    def to_dict(self) -> dict[str, Any]:
        out = {"field": self.field, "recorded": self.recorded, "now": self.now}
        return {**out, "match": self.match, "detail": self.detail}


_MISSING = object()


def compare(recorded: dict[str, Any], now: dict[str, Any], tolerance: float) -> list[Row]:
    """One row per field of the recorded result (a list of plain values is one field)."""
    fresh = dict(_leaves(now))
    rows = []
    for path, label, value in _labelled_leaves(recorded):
        other = fresh.get(path, _MISSING)
        match, detail = _same(value, other, tolerance)
        headline = len(path) == 1 or (len(path) == 2 and path[0] == "best")
        shown = None if other is _MISSING else other
        rows.append(Row(label, value, shown, match, headline, detail))
    return rows


def _ignored(path: KeyPath) -> bool:
    return any(path[: len(p)] == p for p in IGNORED_AT) or any(
        key in IGNORED_ANYWHERE for key in path if isinstance(key, str)
    )


def _is_plain(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _leaves(value: Any, path: KeyPath = ()) -> list[tuple[KeyPath, Any]]:
    return [(p, v) for p, _, v in _labelled_leaves(value, path)]


def _labelled_leaves(
    value: Any, path: KeyPath = (), label: str = ""
) -> list[tuple[KeyPath, str, Any]]:
    """(path, readable name, value) of every compared field: plain values, and lists of plain
    values as one field. A list element that names an expression or a split says so."""
    if _ignored(path):
        return []
    if isinstance(value, dict):
        out = []
        for key, item in value.items():
            name = f"{label}.{key}" if label else str(key)
            out += _labelled_leaves(item, (*path, str(key)), name)
        return out
    if isinstance(value, list) and not all(_is_plain(v) for v in value):
        out = []
        for i, item in enumerate(value):
            out += _labelled_leaves(item, (*path, i), f"{label}[{_element_name(item, i)}]")
        return out
    return [(path, label, value)]


def _element_name(item: Any, index: int) -> str:
    if isinstance(item, dict):
        if isinstance(item.get("expr"), str):
            return f"{index}: {item['expr'][:30]}"
        if "dataset" in item and "split" in item:
            return f"{index}: {item['dataset']}/{item['split']}"
    return str(index)


def _same(a: Any, b: Any, tolerance: float) -> tuple[bool, str]:
    if b is _MISSING:
        return False, "missing now"
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return False, f"{len(a)} values recorded, {len(b)} now"
        bad = [(x, y) for x, y in zip(a, b, strict=True) if not _same_value(x, y, tolerance)]
        if not bad:
            return True, ""
        gaps = [abs(x - y) for x, y in bad if _number(x) and _number(y)]
        worst = f", largest difference {max(gaps):.3g}" if gaps else ""
        return False, f"{len(bad)} of {len(a)} differ{worst}"
    return _same_value(a, b, tolerance), ""


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same_value(a: Any, b: Any, tolerance: float) -> bool:
    if _number(a) and _number(b):
        return math.isclose(a, b, rel_tol=tolerance, abs_tol=1e-12)
    return type(a) is type(b) and a == b


def environment_changes(recorded: dict[str, Any], now: dict[str, Any]) -> list[dict[str, Any]]:
    """What differs between the recorded run's provenance and the repeated one's."""
    changes = []
    for path in ENVIRONMENT:
        before, after = _get(recorded, path), _get(now, path)
        if before != after:
            changes.append({"what": ".".join(path), "recorded": before, "now": after})
    return changes


def _get(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


# ---- text ----------------------------------------------------------------------------------------
def table(rows: list[Row], width: int = 24) -> str:
    name = max([len("field"), *(len(r.field) for r in rows)])
    name = min(name, 60)
    lines = [f"{'field':<{name}}  {'recorded':<{width}}  {'now':<{width}}  match"]
    for row in rows:
        match = "yes" if row.match else "NO" + (f" ({row.detail})" if row.detail else "")
        field = row.field if len(row.field) <= name else row.field[: name - 3] + "..."
        lines.append(
            f"{field:<{name}}  {_cell(row.recorded, width):<{width}}  "
            f"{_cell(row.now, width):<{width}}  {match}"
        )
    return "\n".join(lines)


def _cell(value: Any, width: int) -> str:
    if isinstance(value, list):
        text = f"{len(value)} values"
    elif isinstance(value, bool):
        text = json.dumps(value)
    elif isinstance(value, float):
        text = f"{value:.10g}"
    else:
        text = "null" if value is None else str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def environment_line(changes: list[dict[str, Any]], recorded: dict[str, Any]) -> str:
    if not changes:
        commit = _get(recorded, ("gm_lab", "commit"))
        dirty = _get(recorded, ("gm_lab", "dirty"))
        version = _get(recorded, ("gm_lab", "version"))
        at = f"commit {commit[:10]}" if commit else f"gm_lab {version}"
        note = " (with uncommitted changes: the code may still differ)" if dirty else ""
        return f"same {at}{note}, probe version, package versions and data as recorded"
    parts = [f"{c['what']} {_short(c['recorded'])} -> {_short(c['now'])}" for c in changes]
    return "differs from the recorded run (may explain differences): " + "; ".join(parts)


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    text = "null" if value is None else str(value)
    return text[:12] if len(text) == 64 or len(text) == 40 else text  # digests and commits

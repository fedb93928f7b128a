"""Where a benchmark script's figures come from, as the CLI records it for its `--json` results
(`gm_lab.provenance.run_provenance`, issue #17 §5): gm_lab's version and git commit, the probe
version, Python/torch/numpy/scipy/deap versions, the benchmark table's fingerprint, space,
datasets, seeds and the command that repeats the run.

- `record(...)`: the `"provenance"` block of a script's JSON record;
- `header(...)`: the same block as the one line a script that only prints starts its output
  with ("provenance: gm_lab 0.1.0 commit <sha> | probe <version> | ...").

The command is `["python", "benchmarks/<script>.py", *arguments]`, the script's path relative to
the repository root, from which every benchmark script is run. Against a gm_lab older than
`gm_lab.provenance.run_provenance` (probe_speed.py --probe-only with PYTHONPATH=<its checkout>),
`header` says so and names that gm_lab instead.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gm_lab.benchmark import Benchmark

ROOT = Path(__file__).resolve().parents[1]


def command(script: str, argv: Sequence[str] | None = None) -> list[str]:
    """The command line that repeats this run from the repository root: "python", the script
    (`__file__` of the caller) relative to the root, then `argv` (default: `sys.argv[1:]`)."""
    path = Path(script).resolve()
    shown = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
    return ["python", shown, *(sys.argv[1:] if argv is None else argv)]


def record(
    script: str,
    space: str,
    datasets: Sequence[str],
    seeds: dict[str, Any],
    argv: Sequence[str] | None = None,
    bench: Benchmark | None = None,
    final_test: str | None = None,
    probe: bool = True,
) -> dict[str, Any]:
    """`run_provenance` of this run of `script` (see `command`); `bench`: the benchmark the
    figures came from (loaded if None); `final_test`: "excluded" or "included" (whether the
    samples could take the final test set, gm_lab.sampling); `probe`: record the probe version
    (False for a script that runs no probe code)."""
    from gm_lab.provenance import run_provenance

    return run_provenance(
        command(script, argv), space, datasets, seeds, bench, probe, final_test=final_test
    )


def header(
    script: str,
    space: str,
    datasets: Sequence[str],
    seeds: dict[str, Any],
    argv: Sequence[str] | None = None,
    bench: Benchmark | None = None,
    final_test: str | None = None,
) -> str:
    """One line for the top of a script's printed output: `record`, in short."""
    try:
        import gm_lab.provenance as provenance
    except ImportError:
        provenance = None
    if not hasattr(provenance, "run_provenance"):
        import gm_lab

        return (
            f"provenance: gm_lab {getattr(gm_lab, '__version__', '?')} from "
            f"{Path(gm_lab.__file__).parent} predates gm_lab.provenance (not recorded) | "
            f"command: {shlex.join(command(script, argv))}"
        )
    return describe(record(script, space, datasets, seeds, argv, bench, final_test))


def describe(block: dict[str, Any]) -> str:
    """A provenance block (`record`) as one line."""
    source = block["gm_lab"]
    commit = source.get("commit") or "unknown (not a git checkout)"
    dirty = " (uncommitted changes)" if source.get("dirty") else ""
    versions = " ".join(f"{name} {v}" for name, v in block["versions"].items() if v)
    data = block.get("data") or {}
    table = (data.get("sha256") or "?")[:12]
    seeds = ", ".join(f"{k}={v}" for k, v in block["seeds"].items()) or "none"
    parts = [
        f"provenance: gm_lab {source['version']} commit {commit}{dirty}",
        f"probe {block['probe_version'] or 'not run'}",
        versions,
        f"{block['space']} {','.join(block['datasets']) or '-'} (table sha256 {table})",
        f"seeds {seeds}",
    ]
    if block.get("final_test"):
        parts.append(f"final test set {block['final_test']}")
    parts.append(f"command: {shlex.join(block['command'])}")
    return " | ".join(parts)


def gm_lab_json(argv: Sequence[str]) -> dict[str, Any]:
    """`gm-lab ARGV --json` run in this process (what the command-line user runs, same code
    path); its JSON result. SystemExit naming the command if it fails."""
    import contextlib
    import io
    import json

    from gm_lab.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*argv, "--json"])
    if code != 0:
        raise SystemExit(f"gm-lab {shlex.join(argv)} failed with exit code {code}")
    return json.loads(out.getvalue())

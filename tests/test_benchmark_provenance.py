"""The benchmark scripts record where their figures come from (issue #17 §5): a script that only
prints starts with a provenance line, a JSON record carries `run_provenance`'s block
(benchmarks/_provenance.py), and quality.py keeps its samples off the final test set unless
`--use-final-test`."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gm_lab import __version__
from gm_lab.provenance import package_versions, probe_version

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"


def test_a_printing_benchmark_starts_with_its_provenance() -> None:
    args = ["--n", "20", "--exprs", "10", "--seed", "3"]
    done = subprocess.run(
        [sys.executable, "benchmarks/expr_throughput.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    first, *rest = done.stdout.splitlines()
    assert rest and "expressions" in rest[0]  # the figures follow
    assert first.startswith(f"provenance: gm_lab {__version__} commit ")
    if (REPO / ".git").exists():
        assert re.search(r" commit [0-9a-f]{40}\b", first), first
    versions = package_versions()
    assert f"probe {probe_version()} |" in first
    assert f"torch {versions['torch']}" in first and f"numpy {versions['numpy']}" in first
    assert "seeds synthetic_data=3, expressions=3 |" in first
    command = first.split(" | command: ", 1)[1]
    assert shlex.split(command) == ["python", "benchmarks/expr_throughput.py", *args]


@pytest.fixture
def scripts(monkeypatch):
    """benchmarks/ importable, as it is for the scripts run from there."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import _provenance

    return _provenance


def test_a_record_carries_run_provenance(scripts, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["/anywhere/quality.py", "evolve", "--seeds", "0"])
    script = str(BENCHMARKS / "quality.py")
    block = scripts.record(script, "tss", ["cifar10"], {"sample": 0}, final_test="excluded")
    assert block["command"] == ["python", "benchmarks/quality.py", "evolve", "--seeds", "0"]
    assert block["gm_lab"]["version"] == __version__ and "commit" in block["gm_lab"]
    assert block["probe_version"] == probe_version()
    assert block["versions"] == package_versions()
    assert block["seeds"] == {"sample": 0} and block["final_test"] == "excluded"
    assert set(block["data"]["truth_sha256"]) == {"cifar10"}
    line = scripts.describe(block)
    assert "final test set excluded" in line
    assert line.endswith("command: python benchmarks/quality.py evolve --seeds 0")
    explicit = scripts.record(script, "tss", [], {}, argv=["literature"], probe=False)
    assert explicit["command"][2:] == ["literature"] and explicit["probe_version"] is None


def test_quality_keeps_its_samples_off_the_final_test_set(scripts) -> None:
    from quality import build_parser, make_plan

    from gm_lab.benchmark import Benchmark
    from gm_lab.sampling import final_test_indices

    bench = Benchmark.load("tss", progress=False)
    final = final_test_indices("tss")
    small = ["probe", "--search", "50", "--heldout", "20", "--random", "300"]
    plan = make_plan(bench, build_parser().parse_args(small))
    old = make_plan(bench, build_parser().parse_args([*small, "--use-final-test"]))
    assert plan.final_test == "excluded" and old.final_test == "included"
    for dataset in plan.samples:
        assert not np.intersect1d(plan.indices(dataset), final).size
    assert np.intersect1d(old.random.indices, final).size  # 1,000 of 15,625: some are drawn


def test_cheap_goal_picks_by_search_tau_and_compares_with_classics_no_dearer(scripts) -> None:
    from terminal_sets import cheap_goal

    def row(expr: str, ratio: float, search: float, heldout: float) -> dict:
        return {"expr": expr, "cost_ratio": ratio, "search_kendall": search,
                "heldout_kendall": heldout}  # fmt: skip

    front = [row("cheap", 0.5, 0.80, 0.74), row("mid", 0.9, 0.84, 0.70), row("dear", 2.0, 0.9, 0.9)]
    classic = [row("fwd", 0.4, 0.7, 0.60), row("one_bwd", 0.9, 0.8, 0.72), row("big", 3, 0.8, 0.8)]
    goal = cheap_goal(front, classic)  # "dear" costs > 1 x; "mid" has the best search tau
    assert (goal["expr"], goal["best_rival"], goal["met"]) == ("mid", "one_bwd", False)
    classic[1]["heldout_kendall"] = 0.69  # "mid" now beats all at <= 0.9 x
    assert cheap_goal(front, classic)["met"] is True
    assert cheap_goal([row("dear", 2.0, 0.9, 0.9)], classic) == {"expr": None, "met": False}

"""`gm-lab probe` and `gm-lab score` as users run them: real subprocesses, real probe, batch 8."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from gm_lab.benchmark import Benchmark
from gm_lab.probe.cache import cache_folder
from gm_lab.probe.record import ProbeConfig
from gm_lab.sampling import draw_sample

SMALL = ["--batch-size", "8", "--sample", "random", "--seed", "3"]
CLI = [sys.executable, "-m", "gm_lab.cli"]


def gm_lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=180)


def record_stamps(folder: Path) -> dict[str, tuple[int, int]]:
    """Finished records of a cache folder: name -> (inode, mtime_ns)."""
    files = (folder / "records").glob("*.rec") if folder.is_dir() else []
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "workers"), [(signal.SIGKILL, "1"), (signal.SIGINT, "2")], ids=["sigkill", "sigint"]
)
def test_probe_interrupted_mid_run_resumes_with_only_the_rest(sig: int, workers: str):
    # ImageNet16-120 (16x16 inputs, a recorded stand-in here) keeps each probe cheap; enough
    # architectures that the signal lands mid-run even when 2 workers probe 4 per second
    n, dataset = 16, "ImageNet16-120"
    args = ["probe", "--dataset", dataset, *SMALL, "--n", str(n)]
    folder = cache_folder(ProbeConfig(dataset=dataset, batch_size=8))  # fresh GM_LAB_CACHE
    cmd = [*CLI, *args, "--workers", workers]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell runs background jobs with SIGINT ignored, and children inherit that: give
        # the CLI the default disposition a user's terminal gives it (Ctrl-C interrupts)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while len(record_stamps(folder)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    done = record_stamps(folder)
    assert 2 <= len(done) < n, f"kill came too late or too early: {len(done)} of {n} finished"

    second = gm_lab(*args, "--workers", "1")  # the cache does not depend on the backend
    assert second.returncode == 0, second.stderr
    assert f"probed {n - len(done)}, reused {len(done)} of {n} architectures" in second.stdout
    assert str(folder) in second.stdout
    after = record_stamps(folder)
    assert len(after) == n
    assert all(after[name] == stamp for name, stamp in done.items()), "a finished arch was redone"


@pytest.mark.slow
def test_score_json_matches_scipy_and_reuses_the_cache(tss_table: Path):
    args = ["score", "grad_norm", *SMALL, "--n", "6", "--workers", "1", "--json"]
    out = gm_lab(*args)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    bench = Benchmark.from_table(tss_table, "tss")
    accuracy = bench.accuracy("cifar10")
    assert result["indices"] == draw_sample(accuracy, "random", 6, seed=3).indices.tolist()
    assert result["proxy"] == "grad_norm" and result["n"] == 6 == len(result["scores"])
    scores, truth = np.array(result["scores"]), accuracy[result["indices"]]
    assert result["kendall"] == pytest.approx(stats.kendalltau(scores, truth)[0], abs=1e-12)
    assert result["spearman"] == pytest.approx(stats.spearmanr(scores, truth)[0], abs=1e-12)
    assert result["sample"]["kind"] == "random" and result["probed"] == 6
    assert result["inputs"]["source"].startswith("cifar10-test")  # the minibatch's provenance
    assert result["standin_images"] == {}  # CIFAR-10's own images

    again = json.loads(gm_lab(*args).stdout)
    assert again["reused"] == 6 and again["probed"] == 0
    assert again["scores"] == result["scores"] and again["kendall"] == result["kendall"]


def test_score_unknown_proxy_lists_the_valid_ones():
    out = gm_lab("score", "no_such_proxy", "--n", "5")
    assert out.returncode == 2
    assert "unknown proxy 'no_such_proxy'" in out.stderr and "grad_norm" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


@pytest.mark.slow
def test_probe_reports_a_stand_in_minibatch():
    out = gm_lab("probe", "--dataset", "ImageNet16-120", *SMALL, "--n", "3", "--workers", "0")
    assert out.returncode == 0, out.stderr
    assert "probed 3, reused 0 of 3 architectures" in out.stdout
    assert "stand-in images: CIFAR-10 (cifar10-test" in out.stdout  # shared or embedded pack
    assert "-as-ImageNet16-120)" in out.stdout
    scored = gm_lab("score", "naswot", "--dataset", "ImageNet16-120", *SMALL, "--n", "3", "--json")
    assert scored.returncode == 0, scored.stderr
    result = json.loads(scored.stdout)
    assert result["reused"] == 3  # the probes just made
    assert result["standin_images"] == {"ImageNet16-120": "stand-in images: CIFAR-10"}


@pytest.mark.slow
def test_probe_json_reports_the_run_and_what_it_used():
    sample = ["--batch-size", "8", "--sample", "random", "--seed", "11", "--n", "3"]
    args = ["probe", *sample, "--workers", "0", "--json"]  # a seed no other test draws
    first = gm_lab(*args)
    assert first.returncode == 0, first.stderr
    run = json.loads(first.stdout)
    assert (run["probed"], run["reused"], run["n"]) == (3, 0, 3)
    assert run["config"]["batch_size"] == 8 and run["cache"].endswith(run["config"]["key"])
    usage = run["usage"]
    assert usage["cpu_s"] > 0 and usage["wall_s"] >= run["seconds"] > 0
    assert usage["energy"]["joules"] > 0 and usage["energy"]["method"] in {"rapl", "estimate"}
    again = json.loads(gm_lab(*args).stdout)
    assert (again["probed"], again["reused"]) == (0, 3)


def test_probe_and_score_are_documented_in_help():
    out = gm_lab("--help")
    assert "probe" in out.stdout and "score" in out.stdout
    assert "--scheduler" in gm_lab("probe", "--help").stdout

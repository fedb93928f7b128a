"""Results carry their provenance, and `gm-lab rerun RESULT.json` repeats them: a real score and a
real (tiny) search repeat to the same numbers; a changed number, no provenance or a command that
is not a repeatable gm-lab one are told apart by the exit status and one clear line."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from gm_lab.cli import main
from gm_lab.sampling import Sample, final_test_indices

# ImageNet16-120 (16x16 inputs, stand-in images here) keeps each probe cheap; the search below
# draws exactly the score's sample (random, 4, seed 0), so it probes nothing new.
TINY = ["--dataset", "ImageNet16-120", "--sample", "random", "--n", "4"]
PROBE = ["--batch-size", "8", "--workers", "0"]
# --full-probe: full records, which the search below reuses (a lazy score keeps only naswot)
SCORE = ["score", "naswot", *TINY, *PROBE, "--full-probe", "--json"]


def run(*argv: str) -> tuple[int, str, str]:
    """`gm-lab ARGV` in this process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rerun-cache")


@pytest.fixture(scope="module")
def scored(cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `gm-lab score --json` result on disk."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GM_LAB_CACHE", str(cache))
        code, out, err = run(*SCORE)
    assert code == 0, err
    path = tmp_path_factory.mktemp("results") / "score.json"
    path.write_text(out)
    return path


@pytest.fixture(autouse=True)
def _shared_cache(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GM_LAB_CACHE", str(cache))


def test_score_result_carries_its_provenance(scored: Path) -> None:
    result = json.loads(scored.read_text())
    provenance = result["provenance"]
    assert provenance["command"] == ["gm-lab", *SCORE]
    assert provenance["space"] == "tss" and provenance["datasets"] == ["ImageNet16-120"]
    assert provenance["seeds"] == {"sample": 0, "probe": 0}
    assert provenance["final_test"] == "excluded" and provenance["probe_version"]
    assert set(provenance["versions"]) == {"python", "torch", "numpy", "scipy", "deap"}
    assert provenance["gm_lab"]["version"] and "commit" in provenance["gm_lab"]
    assert len(provenance["data"]["sha256"]) == 64
    assert set(provenance["data"]["truth_sha256"]) == {"ImageNet16-120"}
    assert result["inputs"]["source"].endswith("-as-ImageNet16-120")  # the minibatch's own
    assert not set(result["indices"]) & set(final_test_indices("tss").tolist())


def test_rerun_of_a_score_matches(scored: Path) -> None:
    code, out, err = run("rerun", str(scored))
    assert code == 0, err
    assert "kendall" in out and "all match" in out
    assert "NO" not in out.split("compared")[0]


def test_rerun_of_a_search_matches_and_writes_no_file(tmp_path: Path, scored: Path) -> None:
    saved, folder = tmp_path / "result.json", tmp_path / "checkpoint"
    evolve = ["evolve", *TINY, "--heldout-n", "0", "--pop", "4", "--gens", "1", *PROBE]
    code, _, err = run(*evolve, "--save", str(saved), "--checkpoint", str(folder))
    assert code == 0, err
    result = json.loads(saved.read_text())
    assert result["provenance"]["seeds"] == {"sample": 0, "gp": 0, "probe": 0}
    assert result["probe"]["ImageNet16-120"]["probed"] == 0  # the score's very architectures
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}

    code, out, err = run("rerun", str(saved), "--fresh-cache", "--json")  # probes again
    assert code == 0, err
    report = json.loads(out)
    assert report["match"] and report["differ"] == 0 and report["compared"] > 50
    fields = {row["field"]: row for row in report["fields"]}
    assert fields["best.fitness"]["match"] and fields["best.expr"]["recorded"]
    assert "--save" not in report["command"] and "--checkpoint" not in report["command"]
    assert report["provenance"]["command"] == [
        "gm-lab",
        "rerun",
        str(saved),
        "--fresh-cache",
        "--json",
    ]
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def test_a_changed_number_is_named_and_exits_1(
    scored: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = json.loads(scored.read_text())
    tampered = json.loads(scored.read_text())
    tampered["kendall"] = (tampered["kendall"] or 0.0) + 0.01
    tampered["scores"][1] *= 1.001
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(tampered))
    monkeypatch.setattr("gm_lab.cli.rerun.run_again", lambda argv, fresh: (0, original))
    code, out, _ = run("rerun", str(path))
    assert code == 1
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert rows["kendall"].rstrip().endswith("NO")
    assert "NO (1 of 4 differ" in rows["scores"]
    assert rows["spearman"].rstrip().endswith("yes")
    assert "2 differ: kendall, scores" in out


def _edited(scored: Path, tmp_path: Path, change) -> Path:
    result = json.loads(scored.read_text())
    change(result)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(result))
    return path


def _command(argv):
    return lambda result: result["provenance"].__setitem__("command", argv)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("provenance"), "records no provenance"),
        (lambda r: r.__setitem__("provenance", {"source": "x"}), "records no provenance"),
        (_command(["sh", "-c", "echo hi"]), "`sh -c 'echo hi'`, not a gm-lab command"),
        (_command(["gm-lab", "probe", "--n", "4"]), "repeats gm-lab score, evolve and data info"),
        (_command(["gm-lab", "evolve", "--resume", "d"]), "from `gm-lab evolve --resume`"),
        (_command(["gm-lab", "score", "--no-such"]), "does not parse"),
        (_command("gm-lab score naswot"), "not a gm-lab command"),
    ],
    ids=["none", "image-provenance", "shell", "probe", "resume", "bad-option", "a-string"],
)
def test_a_result_that_cannot_be_repeated_exits_2(scored, tmp_path, change, message) -> None:
    code, out, err = run("rerun", str(_edited(scored, tmp_path, change)))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("gm-lab: error: ") and message in err


def test_a_file_that_is_no_result_exits_2(tmp_path: Path) -> None:
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "text.json").write_text("not json")
    for name, message in [
        ("list.json", "not a gm-lab result"),
        ("text.json", "is not JSON"),
        ("missing.json", "cannot read"),
    ]:
        code, _, err = run("rerun", str(tmp_path / name))
        assert code == 2 and message in err and err.count("\n") == 1


def test_score_on_the_final_test_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--final-test` scores the final test set (here 3 of its architectures, to stay fast) and
    every classic proxy on it, and says so in the provenance."""
    few = final_test_indices("tss")[:3]
    monkeypatch.setattr(
        "gm_lab.cli.probe.final_test_sample",
        lambda accuracy: Sample(indices=np.array(few), kind="final-test", seed=0),
    )
    argv = ["score", "naswot", "--dataset", "ImageNet16-120", "--final-test", *PROBE, "--json"]
    code, out, err = run(*argv)
    assert code == 0, err
    result = json.loads(out)
    assert result["indices"] == few.tolist() and result["sample"]["kind"] == "final-test"
    assert result["provenance"]["final_test"] == "scored"
    assert result["provenance"]["seeds"]["sample"] is None
    assert result["classic"]["naswot"]["kendall"] == result["kendall"]

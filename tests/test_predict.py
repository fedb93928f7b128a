"""Accuracy predictors (issue #16): gm_lab.predict and `gm-lab predict`. Small and fast: the
data-free `arch` features need no probe; one small `proxies` run probes a handful."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gm_lab.benchmark import Benchmark
from gm_lab.cli import main
from gm_lab.metrics import kendall
from gm_lab.predict import (
    Features,
    PredictorFileError,
    arch_features,
    fit_predictor,
    load,
    split,
    train_and_evaluate,
)
from gm_lab.predict.model import META_NAME
from gm_lab.sampling import SampleSizeError, final_test_indices


@pytest.fixture(scope="module")
def bench() -> Benchmark:
    return Benchmark.load("tss", progress=False)


def _features(bench: Benchmark, dataset: str = "cifar10"):
    def features(indices: np.ndarray) -> Features:
        names, values = arch_features("tss", dataset, [bench.arch(int(i)) for i in indices])
        return Features(np.asarray(indices), names, values)

    return features


def test_the_forest_learns_a_planted_target(bench: Benchmark):
    """accuracy = 3 x (3x3 convs) + (1x1 convs) + noise: the forest must rank held-out archs
    by the noise-free target almost perfectly."""
    rng = np.random.default_rng(0)
    indices = rng.choice(bench.n_archs, 500, replace=False)
    data = _features(bench)(indices)
    col = {n: i for i, n in enumerate(data.names)}
    clean = (
        3 * data.values[:, col["count_nor_conv_3x3"]] + data.values[:, col["count_nor_conv_1x1"]]
    )
    noisy = clean + rng.normal(0, 0.3, len(clean))
    for model in ("rf", "gbm"):
        predictor = fit_predictor(
            model, "tss", "cifar10", "arch", data.names, data.values[:300], noisy[:300],
            indices[:300], params={"n_estimators": 100},
        )  # fmt: skip
        assert kendall(predictor.predict(data.values[300:]), clean[300:]) > 0.9, model


def test_split_is_disjoint_reproducible_and_off_the_final_test_set(bench: Benchmark):
    accuracy = bench.accuracy("cifar10")
    a, b = split(accuracy, 200, 300, seed=4), split(accuracy, 200, 300, seed=4)
    assert np.array_equal(a.train, b.train) and np.array_equal(a.heldout, b.heldout)
    assert len(a.train) == 200 and len(a.heldout) == 300
    assert not np.intersect1d(a.train, a.heldout).size
    both = np.concatenate([a.train, a.heldout])
    assert not np.intersect1d(both, final_test_indices("tss")).size
    assert not np.array_equal(split(accuracy, 200, 300, seed=5).train, a.train)
    with pytest.raises(SampleSizeError, match="exceeds the 14,625 labelled"):
        split(accuracy, 14_000, 1_000)


@pytest.mark.parametrize("model", ["rf", "gbm"])
def test_save_and_load_give_identical_predictions(bench: Benchmark, tmp_path: Path, model: str):
    accuracy = bench.accuracy("cifar10")
    features = _features(bench)
    run = train_and_evaluate(
        "tss", "cifar10", accuracy, features, split(accuracy, 60, 80, seed=1), model, "arch", 1,
        params={"n_estimators": 50},
    )  # fmt: skip
    path = run.predictor.save(tmp_path / "p.gmp")
    again = load(path, space="tss", dataset="cifar10")
    heldout = features(run.split.heldout)
    assert np.array_equal(again.predict(heldout.columns(again.feature_names)), run.predicted)
    assert np.array_equal(again.train_indices, run.split.train)
    assert again.feature_names == run.predictor.feature_names and again.model == model
    assert again.versions["numpy"] and again.seed == 1


@pytest.fixture(scope="module")
def saved_rf(bench: Benchmark, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = _features(bench)(np.arange(40))
    accuracy = bench.accuracy("cifar10")[:40]
    predictor = fit_predictor(
        "rf", "tss", "cifar10", "arch", data.names, data.values, accuracy, np.arange(40),
        params={"n_estimators": 5},
    )  # fmt: skip
    return predictor.save(tmp_path_factory.mktemp("rf") / "rf.gmp")


def _rewrite(src: Path, dst: Path, meta_change=None, blob: bytes | None = None) -> Path:
    with zipfile.ZipFile(src) as archive:
        meta = json.loads(archive.read(META_NAME))
        blob_name = next(n for n in archive.namelist() if n != META_NAME)
        old_blob = archive.read(blob_name)
    if meta_change:
        meta_change(meta)
    with zipfile.ZipFile(dst, "w") as archive:
        archive.writestr(META_NAME, json.dumps(meta))
        archive.writestr(blob_name, old_blob if blob is None else blob)
    return dst


def test_foreign_newer_tampered_or_untrusted_files_are_refused(saved_rf: Path, tmp_path: Path):
    with pytest.raises(PredictorFileError, match="predicts tss/cifar10, not tss/cifar100"):
        load(saved_rf, space="tss", dataset="cifar100")
    newer = _rewrite(saved_rf, tmp_path / "newer.gmp", lambda m: m.update(format=99))
    with pytest.raises(PredictorFileError, match="newer than this gm_lab reads"):
        load(newer)
    older = _rewrite(saved_rf, tmp_path / "older.gmp", lambda m: m.update(format=1))
    with pytest.raises(PredictorFileError, match=r"from an older gm_lab .* train it again"):
        load(older)
    tampered = _rewrite(saved_rf, tmp_path / "t.gmp", blob=b"not the model")
    with pytest.raises(PredictorFileError, match="checksum"):
        load(tampered)
    (tmp_path / "junk.gmp").write_bytes(b"junk")
    with pytest.raises(PredictorFileError, match="not a gm_lab predictor file"):
        load(tmp_path / "junk.gmp")

    # skops files whose checksum is right: a type outside the trusted list, another model
    import hashlib

    import skops.io as sio
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    def swapped(blob: bytes, name: str) -> Path:
        sha = hashlib.sha256(blob).hexdigest()
        return _rewrite(saved_rf, tmp_path / name, lambda m: m.update(blob_sha256=sha), blob)

    import lightgbm

    foreign = lightgbm.LGBMRegressor(n_estimators=2, verbose=-1).fit(np.eye(8), np.arange(8.0))
    with pytest.raises(PredictorFileError, match=r"outside the trusted list: .*lightgbm"):
        load(swapped(sio.dumps(foreign), "u.gmp"))
    with pytest.raises(PredictorFileError, match="is a Pipeline, not a random forest"):
        load(swapped(sio.dumps(make_pipeline(FunctionTransformer(np.exp))), "p.gmp"))


def test_cli_json_shape_and_saved_predictor(bench: Benchmark, tmp_path: Path, capsys):
    path = tmp_path / "p.gmp"
    args = ["predict", "--train-n", "40", "--heldout-n", "60", "--seed", "2", "--model", "gbm"]
    assert main([*args, "--json", "--save", str(path)]) == 0
    result = json.loads(capsys.readouterr().out)
    train, heldout = result["train_indices"], result["heldout_indices"]
    assert len(train) == 40 and len(heldout) == 60 and not set(train) & set(heldout)
    assert [p["index"] for p in result["predictions"]] == heldout
    assert {"kendall", "spearman", "mae", "rmse", "protocol", "provenance"} <= set(result)
    assert -1 <= result["kendall"] <= 1 and result["mae"] > 0 and result["rmse"] >= result["mae"]
    assert result["provenance"]["command"][:2] == ["gm-lab", "predict"]
    assert result["provenance"]["final_test"] == "excluded" and result["probe"] is None
    predictor = load(path, "tss", "cifar10")
    assert predictor.train_indices.tolist() == train
    heldout_features = _features(bench)(np.array(heldout))
    predicted = predictor.predict(heldout_features.columns(predictor.feature_names))
    assert predicted.tolist() == pytest.approx([p["predicted"] for p in result["predictions"]])
    assert predictor.fingerprint["truth_sha256"]["cifar10"]

    # the human-readable form names the protocol and the four figures
    assert main(args) == 0
    out = capsys.readouterr().out
    for word in ("Kendall tau", "Spearman rho", "MAE", "RMSE", "disjoint"):
        assert word in out


def test_cli_bad_input_is_one_clear_line_and_overwrites_nothing(tmp_path: Path, capsys):
    assert main(["predict", "--train-n", "14000", "--heldout-n", "1000"]) == 2
    err = capsys.readouterr().err
    assert "exceeds the 14,625 labelled architectures" in err and len(err.splitlines()) == 1
    keep = tmp_path / "keep.gmp"
    keep.write_bytes(b"precious")
    assert main(["predict", "--train-n", "40", "--save", str(keep)]) == 2
    assert "exists; add --force" in capsys.readouterr().err and keep.read_bytes() == b"precious"
    assert main(["predict", "--seed", "-1"]) == 2
    assert "--seed must be 0 or more" in capsys.readouterr().err
    assert main(["predict", "--curve", "--save", str(tmp_path / "x.gmp")]) == 2
    assert "does not go with --curve" in capsys.readouterr().err


def test_cli_curve_reports_mean_and_std_per_size(monkeypatch, capsys):
    monkeypatch.setattr("gm_lab.cli.predict.curve_sizes", lambda accuracy, heldout_n: [25, 50])
    assert main(["predict", "--curve", "--seeds", "2", "--heldout-n", "50", "--model", "gbm",
                 "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert [row["train_n"] for row in result["curve"]] == [25, 50]
    assert all(len(row["runs"]) == 2 and row["kendall"]["n"] == 2 for row in result["curve"])
    assert all(row["kendall"]["std"] >= 0 for row in result["curve"])


def test_cli_proxy_features_probe_what_the_cache_lacks(capsys):
    args = ["predict", "--features", "all", "--train-n", "8", "--heldout-n", "4", "--json",
            "--batch-size", "8", "--workers", "0", "--model", "gbm",
            "--expr", "naswot + grad_norm"]  # fmt: skip
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["probe_run"]["probed"] == 12
    names = result["feature_names"]
    assert "proxy_grad_norm" in names and "proxy_sed_like" in names and "params" in names
    assert any(n.startswith("layers_mean_") for n in names)
    assert result["provenance"]["seeds"]["probe"] == 0
    assert names[-1] == "expr:naswot + grad_norm"  # an evolved proxy's score as a feature
    assert main(["predict", "--expr", "log("]) == 2  # refused before any probe
    assert capsys.readouterr().err.count("error") == 1


def test_tune_is_a_seeded_search_on_the_training_rows_alone(capsys):
    assert main(["predict", "--train-n", "30", "--heldout-n", "20", "--model", "gbm", "--tune",
                 "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    from gm_lab.predict.model import TUNE_GRID

    assert [c["params"] for c in result["tuning"]] == TUNE_GRID["gbm"]
    best = max(result["tuning"], key=lambda c: c["kendall"])
    assert all(result["params"][k] == v for k, v in best["params"].items())
    assert main(["predict", "--train-n", "5", "--heldout-n", "20", "--tune"]) == 2
    assert "--tune needs at least 6 training architectures" in capsys.readouterr().err


def test_cli_load_judges_a_saved_predictor_off_its_training_set(saved_rf: Path, capsys):
    args = ["predict", "--load", str(saved_rf), "--heldout-n", "30", "--top", "2", "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["heldout_indices"]) == 30 and min(result["heldout_indices"]) >= 40
    assert (
        len(result["top"]) == 2 and result["top"][0]["predicted"] >= result["top"][1]["predicted"]
    )
    assert result["train_n"] == 40 and -1 <= result["kendall"] <= 1
    assert main(["predict", "--load", str(saved_rf), "--dataset", "cifar100"]) == 2
    assert "predicts tss/cifar10, not tss/cifar100" in capsys.readouterr().err
    assert main(["predict", "--load", str(saved_rf), "--save", "x.gmp"]) == 2
    assert "--load judges a saved predictor" in capsys.readouterr().err


def test_the_engine_and_the_command_import_neither_torch_nor_scikit_learn():
    import subprocess
    import sys

    code = (
        "import sys, gm_lab.predict, gm_lab.cli.predict; "
        "print(sorted(m for m in ('torch', 'sklearn', 'lightgbm', 'skops') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("model", ["rf", "gbm"])
def test_features_beyond_float32_range_keep_their_order(model: str) -> None:
    """synflow reaches ~1e40 on TSS: the trees (float32 inside) must still split on it."""
    from gm_lab.predict import fit_predictor

    rng = np.random.default_rng(0)
    exponent = rng.uniform(30, 60, 200)
    values = np.column_stack([10.0**exponent, -(10.0**exponent), rng.normal(size=200)])
    accuracy = 50 + exponent  # the huge feature alone orders the accuracies
    predictor = fit_predictor(
        model, "tss", "cifar10", "proxies", ["huge", "negative_huge", "noise"],
        values[:150], accuracy[:150], np.arange(150), seed=0,
    )  # fmt: skip
    predicted = predictor.predict(values[150:])
    assert np.isfinite(predicted).all()
    assert kendall(predicted, accuracy[150:]) > 0.8

"""Accuracy predictors: a regressor on architecture features that predicts test accuracy (%).

Two models, seeded, with defaults that work from 25 to a few thousand labelled architectures:
- `rf`: scikit-learn's RandomForestRegressor (GreenFactory's choice);
- `gbm`: LightGBM's LGBMRegressor (gradient-boosted trees). Chosen over XGBoost because its
  wheel is small and self-contained, it trains fast on two cores, it handles NaN features
  natively, and it saves a model in its own plain-text format, which loads back without running
  any code (no pickle).

A trained `Predictor` is saved to one file (`save`) and loaded back (`load`) without unpickling:
the file is a zip of `predictor.json` (format number, space, dataset, model kind, feature set and
feature names, training indices, seed, hyper-parameters, the data fingerprint of
`gm_lab.provenance`, package versions, SHA-256 of the model blob) and the model blob: for `rf`
a skops file loaded with an explicit list of trusted types (anything else is refused), for
`gbm` LightGBM's text model. A file of a newer format, of another space or dataset, tampered or
not a predictor raises `PredictorFileError`.

scikit-learn, LightGBM and skops are imported only when a model is made, trained or loaded.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from gm_lab.errors import GmLabError
from gm_lab.predict.features import check_feature_set

MODELS: tuple[str, ...] = ("rf", "gbm")
FILE_FORMAT = 2  # 2: the models see `model_input(features)`
META_NAME = "predictor.json"
BLOB_NAMES = {"rf": "model.skops", "gbm": "model.lightgbm.txt"}
# The only types a saved random forest may hold beyond skops' defaults (numpy, builtins).
TRUSTED_RF_TYPES = ("sklearn.tree._tree.Tree",)
KIND = "gm_lab accuracy predictor"


class PredictorError(GmLabError, ValueError):
    """A predictor cannot be made or used as asked."""


class PredictorFileError(GmLabError, ValueError):
    """A predictor file cannot be loaded: not one, newer format, another space/dataset, or
    tampered (the message says which)."""


def default_params(model: str) -> dict[str, Any]:
    """The defaults of each model, chosen once on CIFAR-10 development splits (seeds 11 and 12,
    train-n 100 and 400; not the benchmark's seeds, never the final test set)."""
    if model == "rf":
        return {"n_estimators": 300, "max_features": 0.5, "min_samples_leaf": 1}
    if model == "gbm":  # min_child_samples 2: small label budgets (25-100) need small leaves
        return {
            "n_estimators": 600,
            "learning_rate": 0.05,
            "num_leaves": 15,
            "min_child_samples": 2,
            "subsample": 1.0,
            "colsample_bytree": 0.5,
            "reg_lambda": 1.0,
        }
    raise PredictorError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")


# The small grid `tune` searches (each on top of `default_params`).
TUNE_GRID: dict[str, list[dict[str, Any]]] = {
    "rf": [
        {"max_features": f, "min_samples_leaf": leaf} for f in (0.33, 0.5, 1.0) for leaf in (1, 3)
    ],
    "gbm": [
        {"learning_rate": lr, "num_leaves": leaves} for lr in (0.03, 0.1) for leaves in (7, 15, 31)
    ],
}


def tune(
    model: str,
    values: np.ndarray,
    accuracy: np.ndarray,
    seed: int = 0,
    folds: int = 3,
    grid: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A small seeded k-fold search over `grid` (default `TUNE_GRID[model]`) on the training
    rows alone: the parameters with the best mean Kendall tau on the validation folds (the first
    of equals), and every candidate's scores."""
    from gm_lab.metrics import kendall

    values = model_input(values)
    accuracy = np.asarray(accuracy, dtype=float)
    if len(accuracy) < 2 * folds:
        raise PredictorError(
            f"--tune needs at least {2 * folds} training architectures for {folds}-fold "
            f"validation, got {len(accuracy)}"
        )
    default_params(model)  # names an unknown model
    order = np.random.default_rng([seed, 2]).permutation(len(accuracy))
    parts = np.array_split(order, folds)
    table = []
    for candidate in grid if grid is not None else TUNE_GRID[model]:
        taus = []
        for k, valid in enumerate(parts):
            train = np.concatenate([p for j, p in enumerate(parts) if j != k])
            estimator = make_estimator(model, seed, candidate).fit(values[train], accuracy[train])
            taus.append(kendall(np.asarray(estimator.predict(values[valid])), accuracy[valid]))
        table.append({"params": dict(candidate), "kendall": float(np.nanmean(taus))})
    best = max(range(len(table)), key=lambda i: (np.nan_to_num(table[i]["kendall"], nan=-2), -i))
    return {**default_params(model), **table[best]["params"]}, table


def model_input(values: np.ndarray) -> np.ndarray:
    """sign(x)·log(1 + |x|) of every feature value, what the models are fitted on.

    Why: scikit-learn's trees cast to float32, where proxies such as synflow (~1e40 on TSS)
    overflow to inf; the transform is monotone, so tree models split exactly as on the raw
    values, and it is elementwise, so training and prediction see the same function.
    """
    values = np.asarray(values, dtype=float)
    return np.sign(values) * np.log1p(np.abs(values))


def make_estimator(model: str, seed: int, params: dict[str, Any] | None = None) -> Any:
    """A fresh, seeded estimator of kind `model` (single-threaded: reproducible, and polite on
    shared machines)."""
    merged = {**default_params(model), **(params or {})}
    if model == "rf":
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(random_state=seed, n_jobs=1, **merged)
    import lightgbm

    return lightgbm.LGBMRegressor(
        random_state=seed, n_jobs=1, verbose=-1, deterministic=True, **merged
    )


@dataclass
class Predictor:
    """A trained accuracy predictor and what it was trained on."""

    model: str
    space: str
    dataset: str
    feature_set: str
    feature_names: list[str]
    train_indices: np.ndarray
    seed: int
    params: dict[str, Any]
    estimator: Any = field(repr=False)
    fingerprint: dict[str, Any] | None = None
    versions: dict[str, str | None] = field(default_factory=dict)

    def predict(self, values: np.ndarray) -> np.ndarray:
        """Predicted test accuracy (%) of feature rows `values` (columns: `feature_names`)."""
        values = np.asarray(values, dtype=float)
        if values.ndim != 2 or values.shape[1] != len(self.feature_names):
            raise PredictorError(
                f"expected {len(self.feature_names)} feature columns, got shape {values.shape}"
            )
        return np.asarray(self.estimator.predict(model_input(values)), dtype=float)

    def importances(self) -> dict[str, float]:
        """Feature importances, normalised to sum 1 (impurity for rf, gain for gbm)."""
        if self.model == "gbm":
            raw = np.asarray(_booster(self.estimator).feature_importance("gain"), dtype=float)
        else:
            raw = np.asarray(self.estimator.feature_importances_, dtype=float)
        total = raw.sum()
        raw = raw / total if total > 0 else raw
        return dict(zip(self.feature_names, (float(v) for v in raw), strict=True))

    # ---- file ---------------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "format": FILE_FORMAT,
            "model": self.model,
            "space": self.space,
            "dataset": self.dataset,
            "feature_set": self.feature_set,
            "feature_names": list(self.feature_names),
            "train_indices": [int(i) for i in self.train_indices],
            "seed": int(self.seed),
            "params": self.params,
            "fingerprint": self.fingerprint,
            "versions": self.versions or model_versions(),
        }

    def save(self, path: Path | str) -> Path:
        """Write the predictor to `path` (atomically: a failed save leaves any old file)."""
        path = Path(path)
        blob = _dump_estimator(self.model, self.estimator)
        meta = {**self.meta(), "blob_sha256": hashlib.sha256(blob).hexdigest()}
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(META_NAME, json.dumps(meta, indent=1))
            archive.writestr(BLOB_NAMES[self.model], blob)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(buffer.getvalue())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path


def fit_predictor(
    model: str,
    space: str,
    dataset: str,
    feature_set: str,
    feature_names: list[str],
    values: np.ndarray,
    accuracy: np.ndarray,
    train_indices: np.ndarray,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    fingerprint: dict[str, Any] | None = None,
) -> Predictor:
    """Train a `model` predictor on feature rows `values` (of `train_indices`) and their test
    accuracy (%)."""
    check_feature_set(feature_set)
    values = np.asarray(values, dtype=float)
    accuracy = np.asarray(accuracy, dtype=float)
    if values.shape != (len(train_indices), len(feature_names)) or accuracy.shape != (
        len(train_indices),
    ):
        raise PredictorError(
            f"features {values.shape}, accuracy {accuracy.shape} and {len(train_indices)} "
            f"training indices x {len(feature_names)} features do not match"
        )
    if not np.isfinite(accuracy).all():
        raise PredictorError(
            "training accuracy holds NaN: train only on architectures with results"
        )
    if len(np.unique(train_indices)) != len(train_indices):
        raise PredictorError("training indices repeat an architecture")
    merged = {**default_params(model), **(params or {})}
    estimator = make_estimator(model, seed, merged)
    estimator.fit(model_input(values), accuracy)
    if model == "gbm":  # keep only the booster: what the file holds and what load gives back
        estimator = _GbmModel(estimator.booster_)
    return Predictor(
        model=model,
        space=space,
        dataset=dataset,
        feature_set=feature_set,
        feature_names=list(feature_names),
        train_indices=np.asarray(train_indices, dtype=np.int64),
        seed=seed,
        params=merged,
        estimator=estimator,
        fingerprint=fingerprint,
        versions=model_versions(),
    )


class _GbmModel:
    """A LightGBM booster with the `predict` of an estimator (what a loaded file gives)."""

    def __init__(self, booster: Any):
        self.booster = booster

    def predict(self, values: np.ndarray) -> np.ndarray:
        return self.booster.predict(values)


def _booster(estimator: Any) -> Any:
    return estimator.booster


def _dump_estimator(model: str, estimator: Any) -> bytes:
    if model == "gbm":
        return _booster(estimator).model_to_string().encode()
    import skops.io as sio

    return sio.dumps(estimator)


def model_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in ("gm_lab", "numpy", "scikit-learn", "lightgbm", "skops"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def read_meta(path: Path | str) -> dict[str, Any]:
    """The metadata of a predictor file, checked (format, kind), without loading its model."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            meta = json.loads(archive.read(META_NAME))
    except FileNotFoundError:
        raise PredictorFileError(f"{path}: no such predictor file") from None
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PredictorFileError(f"{path} is not a gm_lab predictor file ({exc})") from None
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise PredictorFileError(f"{path} is not a gm_lab predictor file")
    fmt = meta.get("format")
    if not isinstance(fmt, int) or fmt > FILE_FORMAT:
        raise PredictorFileError(
            f"{path} has predictor format {fmt!r}, newer than this gm_lab reads ({FILE_FORMAT}): "
            "upgrade gm_lab"
        )
    if fmt < FILE_FORMAT:
        raise PredictorFileError(
            f"{path} has predictor format {fmt}, from an older gm_lab whose models saw the raw "
            f"features (this one reads format {FILE_FORMAT}): train it again"
        )
    if meta.get("model") not in MODELS:
        raise PredictorFileError(f"{path}: unknown model {meta.get('model')!r}")
    return meta


def load(path: Path | str, space: str | None = None, dataset: str | None = None) -> Predictor:
    """Load a predictor file, refusing one of another `space`/`dataset` (when given), of a newer
    format, tampered, or holding types outside the trusted list; never unpickles."""
    path = Path(path)
    meta = read_meta(path)
    for key, want in (("space", space), ("dataset", dataset)):
        if want is not None and meta.get(key) != want:
            raise PredictorFileError(
                f"{path} predicts {meta.get('space')}/{meta.get('dataset')}, not "
                f"{space or meta.get('space')}/{dataset or meta.get('dataset')}"
            )
    model = meta["model"]
    with zipfile.ZipFile(path) as archive:
        try:
            blob = archive.read(BLOB_NAMES[model])
        except KeyError:
            raise PredictorFileError(f"{path} holds no {model} model") from None
    if hashlib.sha256(blob).hexdigest() != meta.get("blob_sha256"):
        raise PredictorFileError(f"{path}: the model does not match its checksum (tampered?)")
    try:
        estimator = _load_estimator(model, blob)
    except PredictorFileError:
        raise
    except Exception as exc:  # a malformed blob: whatever the library raises
        raise PredictorFileError(f"{path}: the {model} model cannot be read ({exc})") from None
    return Predictor(
        model=model,
        space=meta["space"],
        dataset=meta["dataset"],
        feature_set=meta["feature_set"],
        feature_names=list(meta["feature_names"]),
        train_indices=np.asarray(meta["train_indices"], dtype=np.int64),
        seed=int(meta["seed"]),
        params=dict(meta["params"]),
        estimator=estimator,
        fingerprint=meta.get("fingerprint"),
        versions=dict(meta.get("versions") or {}),
    )


def _load_estimator(model: str, blob: bytes) -> Any:
    if model == "gbm":
        import lightgbm

        return _GbmModel(lightgbm.Booster(model_str=blob.decode()))
    import skops.io as sio

    untrusted = sio.get_untrusted_types(data=blob)
    refused = [t for t in untrusted if t not in TRUSTED_RF_TYPES]
    if refused:
        raise PredictorFileError(
            f"the model holds types outside the trusted list: {', '.join(refused)}; refused"
        )
    estimator = sio.loads(blob, trusted=list(untrusted))
    from sklearn.ensemble import RandomForestRegressor

    if not isinstance(estimator, RandomForestRegressor):
        raise PredictorFileError(f"the model is a {type(estimator).__name__}, not a random forest")
    return estimator

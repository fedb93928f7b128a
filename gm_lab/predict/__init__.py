"""Accuracy predictors (issue #16, GreenFactory-style): a regressor trained on N labelled
architectures' features that predicts the test accuracy (%) of any other architecture.

- `gm_lab.predict.features`: data-free architecture features (`arch`), probe-cache features
  (`proxies`), or both (`all`);
- `gm_lab.predict.model`: random forest (`rf`) or LightGBM (`gbm`), seeded; `Predictor.save` /
  `load` without unpickling (skops with trusted types, LightGBM's text model);
- `gm_lab.predict.protocol`: disjoint random train / held-out samples, Kendall tau, Spearman
  rho, MAE, RMSE; the learning curve, run by run (`learning_curve`, `curve_table`).

Importing this package imports neither torch nor scikit-learn (they load when used).
"""

from gm_lab.predict.features import (
    FEATURE_SETS,
    ArchFeatureSource,
    FeatureError,
    Features,
    arch_features,
    build_features,
    probe_features,
)
from gm_lab.predict.model import (
    MODELS,
    Predictor,
    PredictorError,
    PredictorFileError,
    fit_predictor,
    load,
    read_meta,
)
from gm_lab.predict.protocol import (
    CURVE_SIZES,
    CurvePoint,
    Split,
    curve_table,
    learning_curve,
    scores,
    split,
    train_and_evaluate,
)

__all__ = [
    "CURVE_SIZES",
    "FEATURE_SETS",
    "MODELS",
    "ArchFeatureSource",
    "CurvePoint",
    "FeatureError",
    "Features",
    "Predictor",
    "PredictorError",
    "PredictorFileError",
    "Split",
    "arch_features",
    "build_features",
    "curve_table",
    "fit_predictor",
    "learning_curve",
    "load",
    "probe_features",
    "read_meta",
    "scores",
    "split",
    "train_and_evaluate",
]

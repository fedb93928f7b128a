"""JupyterLab widgets: a thin, live view on the engine (gm_lab.evolution, gm_lab.expressions,
gm_lab.predict).

Each widget works alone and inside `Lab`; none of the engine imports this package. Front ends are
anywidget ESM bundles (js/ -> gm_lab/widgets/static), so nothing is fetched at run time.

- `ExpressionEditor`: an expression as a tree; click to replace, delete, wrap; undo/redo; text.
- `CorrelationScatter`: proxy score against accuracy, τ/ρ, brushing, PNG/SVG export.
- `StratifiedSampleView`: the space's accuracy distribution, bins, and what samples took.
- `SearchDashboard`: start/pause/resume/step/stop, progress, curves, hall of fame, best tree.
- `ProxyExplorer`: edit any proxy and see it rescored at once, next to a baseline.
- `PredictorView`: train an accuracy predictor in the background; predicted vs true, feature
  importances, the learning curve.
- `NasChart`: zero-cost NAS picks per method among the candidates, accuracy against latency.
- `Lab`: all of them on one search.
"""

from gm_lab.widgets.dashboard import SearchDashboard
from gm_lab.widgets.explorer import ProxyExplorer
from gm_lab.widgets.lab import Lab
from gm_lab.widgets.nas import NasChart
from gm_lab.widgets.predictor import PredictorView
from gm_lab.widgets.scatter import CorrelationScatter
from gm_lab.widgets.strata import StratifiedSampleView
from gm_lab.widgets.tree_editor import ExpressionEditor
from gm_lab.widgets.vega import VegaChart

__all__ = [
    "CorrelationScatter",
    "ExpressionEditor",
    "Lab",
    "NasChart",
    "PredictorView",
    "ProxyExplorer",
    "SearchDashboard",
    "StratifiedSampleView",
    "VegaChart",
]

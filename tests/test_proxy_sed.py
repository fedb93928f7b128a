"""sed_like (gm_lab/proxies/sed.py): hand-computed values of the Gaussian model on small cells,
an independent re-implementation for pool-free cells, the paper's monotonicity statements on
real cells, the registered proxy through a ProxyContext (all 15,625 cells in seconds), and a
torch-free import."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
import time

import numpy as np
import pytest

from gm_lab.plugins import PROXIES, Need, ProxyContext
from gm_lab.proxies import sed
from gm_lab.proxies.sed import (
    block_entropies,
    box_filter,
    canonical_cells,
    cell_index,
    parse_cell,
    relu_correlation,
    sed_like_score,
    sed_like_table,
    window_ratio,
)

NAMES = {
    "n": "none",
    "sk": "skip_connect",
    "c1": "nor_conv_1x1",
    "c3": "nor_conv_3x3",
    "p": "avg_pool_3x3",
}


def cell(e10: str, e20: str, e21: str, e30: str, e31: str, e32: str) -> str:
    """A TSS arch string from short op names, edges in arch-string order."""
    o = [NAMES[x] for x in (e10, e20, e21, e30, e31, e32)]
    return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"


BEST = cell("c3", "c3", "c3", "sk", "c3", "c3")  # CIFAR-100's best TSS cell (index 9930)
D_STEM = 27 * 16 / (27 + 16 + 1)  # Wishart ratio of the stem: 27 white inputs, 16 channels


def blocks(arch: str) -> np.ndarray:
    return block_entropies(np.array([parse_cell(arch)]))[:, 0]


# ---- an independent implementation for pool-free cells (spatially white everywhere) --------


def wishart(n: float, c: int) -> float:
    return n * c / (n + c + 1)


def mix(parts: list[tuple[float, float]], c: int) -> float:
    """Participation ratio of a sum of independent parts (variance, ratio)."""
    total = sum(v for v, _ in parts)
    own = sum(v * v / d for v, d in parts if v > 0)
    cross = total * total - sum(v * v for v, _ in parts)
    return total * total / (own + cross / c)


def naive_pool_free(arch: str) -> list[float]:
    """H_loc of the 17 blocks, each conv edge its own source, by plain loops. Without pooling
    every field stays spatially white (the ReLU maps correlation 0 to 0), so m = 9 and only the
    variances and channel ratios move."""
    ops = [op for op, _ in (edge.split("~") for edge in arch.replace("+", "").split("|") if edge)]
    assert "avg_pool_3x3" not in ops
    edges = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
    v, d, c = 1.0, D_STEM, 16
    out = []

    def run_cell(v0: float, d0: float) -> tuple[float, float]:
        sources = [(v0, d0)]  # source variance, channel ratio
        nodes = [{0: 1.0}]  # node -> {source: coefficient (number of skip paths)}
        for k in (1, 2, 3):
            node: dict[int, float] = {}
            for (i, kk), op in zip(edges, ops, strict=True):
                if kk != k or op == "none":
                    continue
                if op == "skip_connect":
                    for s, a in nodes[i].items():
                        node[s] = node.get(s, 0.0) + a
                    continue
                parts = [(a * a * sources[s][0], sources[s][1]) for s, a in nodes[i].items()]
                if sum(p for p, _ in parts) == 0:
                    continue  # a conv of a dead node is dead
                n = mix(parts, c) * (9 if op == "nor_conv_3x3" else 1)
                sources.append((1.0, wishart(n, c)))
                node[len(sources) - 1] = 1.0
            nodes.append(node)
        parts = [(a * a * sources[s][0], sources[s][1]) for s, a in nodes[3].items()]
        total = sum(p for p, _ in parts)
        return total, (mix(parts, c) if total > 0 else math.nan)

    for stage in range(3):
        for _ in range(5):
            v, d = run_cell(v, d)
            out.append(math.log(9 * d) if v > 0 else -math.inf)
        if stage < 2:
            c *= 2
            if v == 0:
                out.append(-math.inf)
                continue
            d_b = wishart(9 * wishart(9 * d, c), c)  # two 3x3 ReLU-conv-BN
            v_sc = v / 4 / 3  # 2x2 average of a white field, 1x1 conv at init variance 1/(3 fan-in)
            v, d = 1.0 + v_sc, mix([(1.0, d_b), (v_sc, wishart(d, c))], c)
            out.append(math.log(9 * d))
    return out


# ---- hand values --------------------------------------------------------------------------


def test_gaussian_building_blocks_by_hand() -> None:
    """A 3x3 average of white noise: variance 1/9, r(1,0) = 2/3, r(1,1) = 4/9, r(2,0) = 1/3,
    r(2,2) = 1/9 (overlaps of two 3x3 windows), window ratio 81/(3 + 2·2·4/9 + 2·1/9)² = 81/25;
    white noise has ratio 9. ReLU correlations: κ(0) = 0, κ(1) = 1, κ(-1) = -1/(π-1)."""
    white = np.zeros((sed.LAGS + 1, sed.LAGS + 1, 1), np.float32)
    white[0, 0] = 1.0
    assert box_filter(white)[:2, :2, 0] == pytest.approx(np.full((2, 2), 1 / 9))  # Cov(Px, x)
    pooled = box_filter(box_filter(white))[:, :, 0]  # Cov(Px, Px)
    assert pooled[0, 0] == pytest.approx(1 / 9)
    corr = pooled / pooled[0, 0]
    assert corr[1, 0] == pytest.approx(2 / 3) and corr[0, 1] == pytest.approx(2 / 3)
    assert corr[1, 1] == pytest.approx(4 / 9)
    assert corr[2, 0] == pytest.approx(1 / 3) and corr[2, 2] == pytest.approx(1 / 9)
    assert corr[3, 0] == 0.0
    assert window_ratio(white)[0] == pytest.approx(9.0)
    assert window_ratio(corr[:, :, None])[0] == pytest.approx(81 / 25, rel=1e-6)
    assert relu_correlation(np.array([0.0, 1.0, -1.0])) == pytest.approx(
        [0.0, 1.0, -1 / (math.pi - 1)]
    )


def test_all_none_cell_is_dead() -> None:
    """No path from input to output: the network's output is constant, H_loc = -inf."""
    assert np.all(np.isneginf(blocks(cell("n", "n", "n", "n", "n", "n"))))
    assert sed_like_score(cell("c3", "c3", "c3", "n", "n", "n")) == -math.inf


def test_all_skip_cell_by_hand() -> None:
    """node1 = x, node2 = 2x, node3 = 4x: the field is copied, so the first stage keeps the
    stem's white field with d = 27·16/44 and H_loc = ln(9 d) after each of its five cells."""
    h = blocks(cell("sk", "sk", "sk", "sk", "sk", "sk"))
    assert h[:5] == pytest.approx([math.log(9 * D_STEM)] * 5, rel=1e-6)


def test_single_conv_chain_by_hand() -> None:
    """0 -3x3-> 1 -3x3-> 2 -3x3-> 3: three Wishart steps d <- 9d·16/(9d + 17) per cell."""
    d = D_STEM
    expected = []
    for _ in range(5):
        for _ in range(3):
            d = wishart(9 * d, 16)
        expected.append(math.log(9 * d))
    h = blocks(cell("c3", "n", "c3", "n", "n", "c3"))
    assert h[:5] == pytest.approx(expected, rel=1e-6)


def test_pool_chain_by_hand() -> None:
    """node3 = P x0: after j cells the field is P^j of white noise, separable with the 1-D
    autocorrelation a = f^{*2j} (f = [1,1,1]/3); the window ratio is 81 / S² with
    S = Σ_{l=-2..2} (3-|l|) (a(l)/a(0))², and the channels are untouched (d = stem's)."""
    h = blocks(cell("p", "n", "sk", "n", "n", "sk"))
    f = np.ones(3) / 3
    expected = []
    for j in range(1, 6):
        a = np.array([1.0])
        for _ in range(2 * j):
            a = np.convolve(a, f)
        centre = len(a) // 2
        rho = a[centre - 2 : centre + 3] / a[centre]
        s = sum((3 - abs(lag)) * rho[lag + 2] ** 2 for lag in range(-2, 3))
        expected.append(math.log(D_STEM * 81 / s**2))
    assert h[:5] == pytest.approx(expected, rel=1e-5)
    assert expected[0] == pytest.approx(math.log(D_STEM * 81 / 25))


@pytest.mark.parametrize(
    "arch",
    [
        cell("sk", "sk", "sk", "sk", "sk", "sk"),
        cell("c3", "n", "c3", "n", "n", "c3"),
        cell("c1", "c1", "c1", "c1", "c1", "c1"),
        cell("c3", "c3", "c3", "sk", "c3", "c1"),  # CIFAR-10's best TSS cell (index 6111)
        BEST,
        cell("sk", "c1", "n", "sk", "c3", "sk"),
        cell("n", "c3", "sk", "n", "sk", "n"),
    ],
)
def test_pool_free_cells_match_an_independent_implementation(arch: str) -> None:
    """All 17 blocks, reductions included, against the plain-loop version (one source per conv
    edge instead of one per node, lists instead of arrays)."""
    assert blocks(arch) == pytest.approx(naive_pool_free(arch), rel=1e-5)
    assert sed_like_score(arch) == pytest.approx(np.mean(naive_pool_free(arch)), rel=1e-5)


# ---- the paper's statements on real cells ---------------------------------------------------


@pytest.mark.parametrize("edge", [0, 1, 2, 4, 5])
def test_pooling_and_small_kernels_lower_the_score(edge: int) -> None:
    """Replacing any 3x3 conv of the best cell by a 3x3 average pool, or by a 1x1 conv, lowers
    the score (the paper: large pooling kernels and small convolution kernels decrease local
    entropy)."""
    ops = ["c3", "c3", "c3", "sk", "c3", "c3"]
    base = sed_like_score(BEST)
    for worse in ("p", "c1"):
        changed = list(ops)
        changed[edge] = worse
        assert sed_like_score(cell(*changed)) < base - 1e-4


def test_each_skip_beyond_the_first_lowers_the_score() -> None:
    """From the best cell (one skip) replace its convs by skips one by one: the score falls at
    every step down to the all-skip cell."""
    chain = [
        BEST,
        cell("c3", "c3", "c3", "sk", "c3", "sk"),
        cell("c3", "c3", "c3", "sk", "sk", "sk"),
        cell("c3", "sk", "c3", "sk", "sk", "sk"),
        cell("sk", "sk", "c3", "sk", "sk", "sk"),
        cell("sk", "sk", "sk", "sk", "sk", "sk"),
    ]
    scores = [sed_like_score(a) for a in chain]
    assert all(a > b for a, b in itertools.pairwise(scores)), scores


def test_a_first_skip_raises_a_second_lowers() -> None:
    """Adding one skip to a skip-free cell raises the score (a new independent source); adding a
    second skip of the same input lowers it (that input's share grows quadratically)."""
    none = sed_like_score(cell("c3", "n", "c3", "n", "c3", "c3"))
    one = sed_like_score(cell("c3", "sk", "c3", "n", "c3", "c3"))
    two = sed_like_score(cell("c3", "sk", "c3", "sk", "c3", "c3"))
    assert one > none > two


# ---- parsing, equivalent cells, registration ------------------------------------------------


def all_archs() -> list[str]:
    short = {op: key for key, op in NAMES.items()}
    return [cell(*(short[sed.OPS[c]] for c in codes)) for codes in sed.all_cells()]


def test_parse_cell_and_index_cover_the_space() -> None:
    """Every cell's string parses back to its position in the enumeration (a bijection onto
    0..5^6-1); a real benchmark string parses; malformed strings raise."""
    assert [cell_index(parse_cell(a)) for a in all_archs()] == list(range(15625))
    index0 = (  # NATS-Bench TSS architecture 0
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|"
        "skip_connect~2|"
    )
    assert parse_cell(index0) == (4, 2, 1, 2, 1, 1)
    for bad in ("", "|none~0|", BEST.replace("~2", "~1"), BEST.replace("skip", "skipx"), 3):
        with pytest.raises(ValueError):
            parse_cell(bad)


def test_equivalent_cells_score_the_same() -> None:
    """Ops on edges that cannot reach the output are ignored: the table has 9,445 distinct
    canonical cells (the NAS-Bench-201 de-duplicated count), and a cell and its canonical form
    get the same score."""
    codes = sed.all_cells()
    canonical = canonical_cells(codes)
    assert len(np.unique(canonical, axis=0)) == 9445
    dangling = cell("c3", "p", "c1", "sk", "n", "n")  # node 2 is unused: its ops don't matter
    trimmed = cell("c3", "n", "n", "sk", "n", "n")
    assert sed_like_score(dangling) == sed_like_score(trimmed)


def test_registered_proxy_scores_all_cells_in_seconds() -> None:
    """Through ProxyContext (no network, no images): the whole space in under 10 s of CPU time,
    the table computed inside the timing (CPU time, as the shared test machine's load would
    dominate a wall-clock figure); same value for every dataset; equal to the direct
    computation of one cell."""
    spec = PROXIES["sed_like"]
    assert spec.needs is Need.ARCHITECTURE and spec.sign == 1 and spec.standalone
    archs = all_archs()
    sed_like_table.cache_clear()
    cpu, wall = time.process_time(), time.perf_counter()
    values = np.array(
        [
            spec.compute(ProxyContext(arch=a, space="tss", dataset="cifar10", num_classes=10))
            for a in archs
        ]
    )
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert cpu < 10.0, f"{cpu:.1f} s CPU ({wall:.1f} s wall) for all 15,625 cells"
    assert not np.isnan(values).any() and np.isfinite(values).sum() > 15000
    ctx = ProxyContext(arch=BEST, space="tss", dataset="ImageNet16-120", num_classes=120)
    assert spec.compute(ctx) == values[cell_index(parse_cell(BEST))]
    assert spec.compute(ctx) == pytest.approx(sed_like_score(BEST), abs=1e-5)
    assert spec.spaces == {"tss"}  # elsewhere the probe records NaN, searches leave it out
    from gm_lab.probe.probe import ProxyUnavailableWarning, score_proxy

    sss = ProxyContext(arch="8:16:24:32:40", space="sss", dataset="cifar10", num_classes=10)
    with pytest.warns(ProxyUnavailableWarning, match="defined on tss, not sss"):
        assert np.isnan(score_proxy(spec, sss))


def test_import_is_torch_free() -> None:
    code = "import gm_lab.proxies.sed, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)

"""AZ-NAS components (gm_lab/proxies/az_nas.py) and the log-rank assembly (gm_lab/aggregate.py):
closed-form expressivity, progressivity and trainability on hand-made tensors and tiny blocks,
an identity block, the official procedure re-run literally on a real TSS network, the registered
proxies through a ProxyContext (one pass for the three), and torch-free imports."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.stats import rankdata
from torch import nn

from gm_lab.aggregate import log_rank_sum
from gm_lab.networks import build_network
from gm_lab.plugins import PROXIES, Need, ProxyContext
from gm_lab.proxies import az_nas as A
from gm_lab.proxies.vkdnw import kaiming_normal_fanin_init

# a real TSS cell with convolutions and no pooling, so the passes stay quick on CPU
REAL_ARCH = (
    "|nor_conv_1x1~0|+|none~0|skip_connect~1|+|nor_conv_3x3~0|skip_connect~1|skip_connect~2|"
)
# node 3 = node 0 + zeros: every searched cell passes the gradient unchanged
IDENTITY_ARCH = "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"


def entropy(p: list[float]) -> float:
    return -sum(x * math.log(x + A.PROB_EPS) for x in p)


# ---- expressivity and progressivity ---------------------------------------------------------


def test_expressivity_of_a_hand_made_feature_map() -> None:
    """Four positions (B=1, 2×2) holding ±a·u and ±b·v, u, v = (1, ±1)/√2, plus an offset the
    centring removes: covariance = (a²/2) u uᵀ + (b²/2) v vᵀ, eigenvalues a²/2, b²/2, so with
    a² = 3, b² = 1, p = (3/4, 1/4)."""
    a, b = math.sqrt(3.0), 1.0
    u = torch.tensor([1.0, 1.0]) / math.sqrt(2)
    v = torch.tensor([1.0, -1.0]) / math.sqrt(2)
    offset = torch.tensor([5.0, -2.0])
    pixels = torch.stack([a * u, -a * u, b * v, -b * v]) + offset  # [4 positions, 2 channels]
    feature = pixels.T.reshape(1, 2, 2, 2)
    assert A.feature_entropy(feature) == pytest.approx(entropy([0.75, 0.25]), abs=1e-7)
    # the same map in channels_last, and a batch of two copies: the same covariance
    assert A.feature_entropy(feature.contiguous(memory_format=torch.channels_last)) == (
        pytest.approx(entropy([0.75, 0.25]), abs=1e-7)
    )
    assert A.feature_entropy(torch.cat([feature, feature])) == pytest.approx(
        entropy([0.75, 0.25]), abs=1e-7
    )


def test_expressivity_rank_deficient_and_zero_maps() -> None:
    """A third channel equal to the first minus the second has a zero eigenvalue, which adds
    nothing: 3 channels (x, y, x − y) with x, y uncorrelated of equal variance have covariance
    eigenvalues 3σ², σ², 0, so p = (3/4, 1/4, 0). An all-zero map is NaN (0/0)."""
    x = torch.tensor([1.0, -1.0, 0.0, 0.0])
    y = torch.tensor([0.0, 0.0, 1.0, -1.0])
    feature = torch.stack([x, y, x - y]).reshape(1, 3, 2, 2)
    assert A.feature_entropy(feature) == pytest.approx(entropy([0.75, 0.25, 0.0]), abs=1e-7)
    assert math.isnan(A.feature_entropy(torch.zeros(2, 4, 3, 3)))


def test_progressivity_of_a_known_sequence() -> None:
    assert A.progressivity([1.0, 3.0, 2.5, 4.0]) == pytest.approx(-0.5)
    assert A.progressivity(np.array([0.0, 1.0, 3.0])) == pytest.approx(1.0)


# ---- trainability -----------------------------------------------------------------------------

# Rademacher g_out over 4 positions, 2 channels, whose rows are orthogonal: G_outᵀG_out / 4 = I
ORTHO = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
W = torch.tensor([[2.0, 1.0], [1.0, 2.0]])  # singular values 3 and 1


def conv1x1(weight: torch.Tensor, stride: int = 1) -> nn.Conv2d:
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], 1, stride=stride, bias=False)
    with torch.no_grad():
        conv.weight.copy_(weight.view(*weight.shape, 1, 1))
    return conv


def test_sigma_of_a_linear_block() -> None:
    """f_out = W f_in per position: g_in = Wᵀ g_out, so M = Wᵀ (G_outᵀG_out / 4) = Wᵀ and
    σ = 3, the block scores −3 − 1/3 + 2."""
    f_in = torch.randn(1, 2, 2, 2, requires_grad=True)
    g_out = ORTHO.T.reshape(1, 2, 2, 2)
    score = A.block_trainability(f_in, conv1x1(W)(f_in), g_out)
    assert score == pytest.approx(-3.0 - 1.0 / (3.0 + A.SIGMA_EPS) + 2.0, abs=1e-6)
    assert A.sigma_score(1.0) == pytest.approx(0.0, abs=1e-5)


def test_sigma_of_downsampling_blocks_uses_pixel_unshuffle() -> None:
    """A stride-2 1×1 convolution: g_in is Wᵀ g_out at the even positions and 0 elsewhere, so
    after pixel-unshuffle M holds Wᵀ in the rows of offset (0, 0) and zeros: σ = 3 again.
    A 2×2 average pool of one channel spreads g_out/4 over the 4 offsets: M = (¼, ¼, ¼, ¼)ᵀ
    (G_outᵀG_out / N = 1 for ±1 noise), σ = ‖M‖ = ½."""
    f_in = torch.randn(1, 2, 4, 4, requires_grad=True)
    g_out = ORTHO.T.reshape(1, 2, 2, 2)
    (g_in,) = torch.autograd.grad(conv1x1(W, stride=2)(f_in), f_in, g_out)
    assert A.gradient_sigma(g_in, g_out) == pytest.approx(3.0, abs=1e-6)

    f_in = torch.randn(2, 1, 6, 6, requires_grad=True)
    f_out = nn.AvgPool2d(2, 2)(f_in)
    g_out = A.rademacher_like(f_out, torch.Generator().manual_seed(0))
    (g_in,) = torch.autograd.grad(f_out, f_in, g_out, retain_graph=True)
    assert A.gradient_sigma(g_in, g_out) == pytest.approx(0.5, abs=1e-6)
    assert A.block_trainability(f_in, f_out, g_out) == pytest.approx(A.sigma_score(0.5))


def test_identity_block_is_minus_infinity_and_an_unused_input_is_not_an_error() -> None:
    f_in = torch.randn(2, 3, 4, 4, requires_grad=True)
    g_out = A.rademacher_like(f_in, torch.Generator().manual_seed(1))
    assert A.block_trainability(f_in, f_in + f_in.mul(0.0), g_out) == -math.inf  # skip + none
    rows = g_out.permute(0, 2, 3, 1).reshape(-1, 3).double().numpy()
    twice = 2 * np.linalg.norm(rows.T @ rows / len(rows), ord=2)  # g_in = 2 g_out
    assert A.block_trainability(f_in, 2 * f_in, g_out) == pytest.approx(A.sigma_score(twice))
    constant = torch.ones(2, 3, 4, 4, requires_grad=True) * 1.0  # does not depend on f_in
    assert A.block_trainability(f_in, constant, g_out) == pytest.approx(A.sigma_score(0.0))


def test_rademacher_noise() -> None:
    g = A.rademacher_like(torch.empty(64, 16, 8, 8), torch.Generator().manual_seed(0))
    assert set(g.unique().tolist()) == {-1.0, 1.0}
    assert abs(float(g.mean())) < 0.02
    again = A.rademacher_like(torch.empty(64, 16, 8, 8), torch.Generator().manual_seed(0))
    assert torch.equal(g, again)


# ---- the official procedure, literally --------------------------------------------------------


def reference_az_nas(model: nn.Module, input_: torch.Tensor, generator: torch.Generator) -> dict:
    """The official `compute_nas_score` of cvlab-yonsei/AZ-NAS (NB201), line by line after
    `init_model` and the input draw, with `extract_cell_features` inlined and the Bernoulli
    draws taken from `generator` (the official code uses the global RNG)."""
    model.train()
    layer_features = []
    feature = model.stem(input_)
    feature.retain_grad()
    layer_features.append(feature)
    for cell in model.cells:
        feature = cell(feature)
        feature.retain_grad()
        layer_features.append(feature)

    expressivity_scores = []
    for i in range(len(layer_features)):
        feat = layer_features[i].detach().clone()
        b, c, h, w = feat.size()
        feat = feat.permute(0, 2, 3, 1).contiguous().view(b * h * w, c)
        m = feat.mean(dim=0, keepdim=True)
        feat = feat - m
        sigma = torch.mm(feat.transpose(1, 0), feat) / (feat.size(0))
        s = torch.linalg.eigvalsh(sigma)
        prob_s = s / s.sum()
        score = (-prob_s) * torch.log(prob_s + 1e-8)
        expressivity_scores.append(score.sum().item())
    expressivity_scores = np.array(expressivity_scores)
    progressivity = np.min(expressivity_scores[1:] - expressivity_scores[:-1])
    expressivity = np.sum(expressivity_scores)

    scores = []
    for i in reversed(range(1, len(layer_features))):
        f_out = layer_features[i]
        f_in = layer_features[i - 1]
        g_out = torch.ones_like(f_out) * 0.5
        g_out = (torch.bernoulli(g_out, generator=generator) - 0.5) * 2
        g_in = torch.autograd.grad(
            outputs=f_out, inputs=f_in, grad_outputs=g_out, retain_graph=False
        )[0]
        if g_out.size() == g_in.size() and torch.all(g_in == g_out):
            scores.append(-np.inf)
        else:
            if g_out.size(2) != g_in.size(2) or g_out.size(3) != g_in.size(3):
                bo, co, ho, wo = g_out.size()
                bi, ci, hi, wi = g_in.size()
                stride = int(hi / ho)
                g_in = nn.PixelUnshuffle(stride)(g_in)
            bo, co, ho, wo = g_out.size()
            bi, ci, hi, wi = g_in.size()
            g_out = g_out.permute(0, 2, 3, 1).contiguous().view(bo * ho * wo, co)
            g_in = g_in.permute(0, 2, 3, 1).contiguous().view(bi * hi * wi, ci)
            mat = torch.mm(g_in.transpose(1, 0), g_out) / (bo * ho * wo)
            if mat.size(0) < mat.size(1):
                mat = mat.transpose(0, 1)
            s = torch.linalg.svdvals(mat)
            scores.append(-s.max().item() - 1 / (s.max().item() + 1e-6) + 2)
    trainability = np.mean(scores)
    return {
        "expressivity": float(expressivity) if not np.isnan(expressivity) else -np.inf,
        "progressivity": float(progressivity) if not np.isnan(progressivity) else -np.inf,
        "trainability": float(trainability) if not np.isnan(trainability) else -np.inf,
    }


def bernoulli_like(t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return (torch.bernoulli(torch.full(t.shape, 0.5), generator=generator) - 0.5) * 2


@pytest.mark.parametrize("arch", [REAL_ARCH, IDENTITY_ARCH])
def test_matches_the_official_procedure(arch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same network, input and noise (Bernoulli draws in the official order) through the
    official code and ours: the same three components (ours in float64 for the small matrices,
    so to float32 rounding), −∞ trainability for the identity cell."""
    generator = torch.Generator().manual_seed(3)
    inputs = torch.randn(8, 3, 16, 16, generator=generator)  # small, to stay quick
    net = kaiming_normal_fanin_init(build_network("tss", arch, 10, 0), generator)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    expected = reference_az_nas(net, inputs, torch.Generator().manual_seed(7))
    net.load_state_dict(state)  # the reference's train-mode forward moved the BN running stats
    monkeypatch.setattr(A, "rademacher_like", bernoulli_like)
    ours = A.az_nas_scores(net, inputs, torch.Generator().manual_seed(7))
    assert ours.expressivity == pytest.approx(expected["expressivity"], rel=1e-5)
    assert ours.progressivity == pytest.approx(expected["progressivity"], rel=1e-4, abs=1e-5)
    assert ours.trainability == pytest.approx(expected["trainability"], rel=1e-5)
    assert len(ours.entropies) == 18 and len(ours.block_scores) == 17
    if arch == IDENTITY_ARCH:
        assert ours.trainability == -math.inf
        assert sum(s == -math.inf for s in ours.block_scores) == 15  # every searched cell
        assert math.isfinite(ours.expressivity)


# ---- the registered proxies -----------------------------------------------------------------


def context(arch: str, dataset: str = "cifar10", num_classes: int = 10) -> ProxyContext:
    return ProxyContext(
        arch=arch,
        space="tss",
        dataset=dataset,
        num_classes=num_classes,
        seed=0,
        images=torch.randn(64, 3, 32, 32),
        labels=torch.zeros(64, dtype=torch.int64),
        build=lambda: build_network("tss", arch, num_classes, 0),
    )


def test_registered_proxies_run_one_pass_on_a_real_tss_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    A._MEMO.clear()
    passes = []
    compute = A._compute
    monkeypatch.setattr(A, "_compute", lambda ctx: passes.append(ctx.arch) or compute(ctx))
    ctx = context(REAL_ARCH)
    values = {name: PROXIES[name].compute(ctx) for name in A_NAMES}
    assert passes == [REAL_ARCH]  # one pass for the three
    assert all(math.isfinite(v) for v in values.values()), values
    assert PROXIES["az_trainability"].compute(ctx) == values["az_trainability"]
    assert passes == [REAL_ARCH]  # still one: read from the memo
    assert 0 < values["az_expressivity"] <= 18 * math.log(64)  # ≤ log C per feature map
    for name in A_NAMES:
        spec = PROXIES[name]
        assert spec.needs is Need.BACKWARD and spec.sign == 1 and spec.standalone
        assert "AZ-NAS" in spec.summary and "cvlab-yonsei/AZ-NAS" in spec.reference
    assert "az_complexity" not in PROXIES and "flops" in PROXIES  # s_C is the flops proxy


def test_identity_architecture_gives_minus_infinity_through_the_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On ImageNet16-120 (16×16 Gaussian input, which keeps this quick)."""
    A._MEMO.clear()
    ctx = context(IDENTITY_ARCH, "ImageNet16-120", 120)
    sizes = []
    randn = torch.randn
    monkeypatch.setattr(torch, "randn", lambda *a, **k: sizes.append(a) or randn(*a, **k))
    assert PROXIES["az_trainability"].compute(ctx) == -math.inf
    assert math.isfinite(PROXIES["az_expressivity"].compute(ctx))
    assert sizes == [(64, 3, 16, 16)]


def test_input_resolution_follows_the_dataset() -> None:
    assert A.input_resolution("cifar10") == 32
    assert A.input_resolution("cifar100") == 32
    assert A.input_resolution("ImageNet16-120") == 16
    assert A.input_resolution("imagenet16") == 16


A_NAMES = ("az_expressivity", "az_progressivity", "az_trainability")


# ---- the log-rank assembly -------------------------------------------------------------------


def test_log_rank_sum_by_hand() -> None:
    """N = 4. Column 1 (1, 2, 2, 3): ranks 1, 2.5, 2.5, 4 (the tie averaged); column 2
    (30, 10, 20, 40): ranks 3, 1, 2, 4."""
    got = log_rank_sum([np.array([1.0, 2.0, 2.0, 3.0]), np.array([30.0, 10.0, 20.0, 40.0])])
    expected = [
        math.log(1 / 4) + math.log(3 / 4),
        math.log(2.5 / 4) + math.log(1 / 4),
        math.log(2.5 / 4) + math.log(2 / 4),
        0.0,
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    # the official notebook's expression, over four components
    cols = [np.random.default_rng(k).normal(size=50) for k in range(4)]
    official = sum(np.log(rankdata(c) / 50) for c in cols)
    np.testing.assert_allclose(log_rank_sum(cols), official)


def test_log_rank_sum_minus_infinity_nan_and_errors() -> None:
    """−∞ and NaN share the lowest ranks: (−∞, NaN, 0, 5) → ranks 1.5, 1.5, 3, 4."""
    got = log_rank_sum([np.array([-np.inf, np.nan, 0.0, 5.0])])
    np.testing.assert_allclose(got, np.log(np.array([1.5, 1.5, 3.0, 4.0]) / 4))
    assert log_rank_sum([np.array([])]).shape == (0,)
    with pytest.raises(ValueError, match="at least one"):
        log_rank_sum([])
    with pytest.raises(ValueError, match="one value per architecture"):
        log_rank_sum([np.zeros(3), np.zeros(4)])


def test_imports_are_torch_free() -> None:
    code = (
        "import sys, gm_lab.aggregate, gm_lab.proxies.az_nas; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

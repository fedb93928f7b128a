"""SWAP and regularised SWAP (gm_lab/proxies/swap.py): patterns counted by hand on a tiny
network, the official counting procedure re-run literally, the re-initialisation, the
regularisation factor and constants, the registered proxies through a ProxyContext, and a
torch-free import."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from gm_lab.inputs import load_minibatch
from gm_lab.networks import OP_NAMES, build_network, count_params, genotype_to_str
from gm_lab.plugins import PROXIES, Need, ProxyContext
from gm_lab.proxies import swap as S

# a real TSS cell with one convolution and no pooling, so the official unique-rows procedure
# and the re-draws stay quick on CPU
REAL_ARCH = "|nor_conv_1x1~0|+|none~0|skip_connect~1|+|none~0|skip_connect~1|skip_connect~2|"


class Tiny(nn.Module):
    """Conv 1×1 (1 → 2 channels, weights +1 and −1) → ReLU, the same ReLU once more on the
    same tensor, then flatten → Linear → ReLU on a 2-D input (not counted)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1, bias=False)
        self.relu = nn.ReLU()
        self.again = nn.ReLU()
        self.fc = nn.Linear(4, 3)
        self.relu_2d = nn.ReLU()
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        a = self.relu(y)
        self.again(y)  # the same tensor: the same patterns again
        return self.relu_2d(self.fc(a.flatten(1)))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """1 torch thread, as the probe's workers: 2 threads on 2 contended cores crawl."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_patterns_counted_by_hand() -> None:
    """3 samples, 1 channel, 1×2 pixels [p0, p1]: (1, 2), (−1, 3), (2, −1).
    Channel +1: p0 → (1,0,1), p1 → (1,1,0); channel −1: p0 → (0,1,0), p1 → (0,0,1): 4 patterns.
    With (1, 2), (−1, −3), (2, 1): +1 gives (1,0,1) twice, −1 gives (0,1,0) twice: 2 patterns."""
    x = torch.tensor([[1.0, 2.0], [-1.0, 3.0], [2.0, -1.0]]).view(3, 1, 1, 2)
    assert S.activation_pattern_count(Tiny(), x) == 4
    x = torch.tensor([[1.0, 2.0], [-1.0, -3.0], [2.0, 1.0]]).view(3, 1, 1, 2)
    assert S.activation_pattern_count(Tiny(), x) == 2


def test_zero_activations_are_one_pattern_and_no_relu_counts_zero() -> None:
    x = torch.zeros(5, 1, 1, 2)
    assert S.activation_pattern_count(Tiny(), x) == 1  # every neuron is 0 on every sample
    assert S.activation_pattern_count(nn.Conv2d(1, 2, 1), x) == 0


def reference_swap(net: nn.Module, inputs: torch.Tensor) -> int:
    """The official SampleWiseActivationPatterns / SWAP.forward of pym1024/SWAP, line by line:
    ReLU outputs of 4-D inputs, concatenated per sample, sign, transpose, unique rows."""
    inter_feature = []

    def hook_in_forward(module, input, output):
        if isinstance(input, tuple) and len(input[0].size()) == 4:
            inter_feature.append(output.detach())

    handles = [
        m.register_forward_hook(hook_in_forward)
        for _, m in net.named_modules()
        if isinstance(m, nn.ReLU)
    ]
    with torch.no_grad():
        net.forward(inputs)
        activations = torch.cat([f.reshape(inputs.size(0), -1) for f in inter_feature], 1)
        activations = torch.sign(activations).T
        count = torch.unique(activations, dim=0).size(0)
    for h in handles:
        h.remove()
    return count


@pytest.mark.parametrize("batch", [7, 16, 30, 60])  # 2^B table, packed codes, unique rows
def test_counting_paths_match_the_official_procedure(batch: int) -> None:
    torch.manual_seed(batch)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 1), nn.ReLU(inplace=True)
    )
    x = torch.randn(batch, 3, 3, 3)
    assert S.activation_pattern_count(net, x) == reference_swap(net, x)


def test_redraws_are_seeded_and_a_prefix_does_not_depend_on_their_number() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
    x = torch.randn(16, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    three = S.swap_pattern_counts(net, x, 3, 5)
    two = S.swap_pattern_counts(net, x, 2, 5)
    assert two == three[:2]
    draws = [torch.randn(5, generator=S.draw_generator(seed, k)) for seed, k in [(5, 0), (5, 1)]]
    assert not torch.equal(*draws)  # each re-draw is another network
    again = torch.randn(5, generator=S.draw_generator(5, 0))
    assert torch.equal(draws[0], again)
    assert not torch.equal(torch.randn(5, generator=S.draw_generator(6, 0)), again)


@pytest.fixture(scope="module")
def batch():
    return load_minibatch("cifar10", 64, 0)


def test_one_redraw_matches_the_official_procedure_on_a_tss_network(batch) -> None:
    images = batch.images[:16].contiguous()
    net = S.gaussian_reinit_(build_network("tss", REAL_ARCH, 10, 0), torch.Generator())
    assert S.activation_pattern_count(net, images) == reference_swap(net, images)


def test_gaussian_reinit() -> None:
    net = build_network("tss", REAL_ARCH, 10, 0)
    S.gaussian_reinit_(net, torch.Generator().manual_seed(0))
    weights = torch.cat(
        [
            m.weight.detach().flatten()
            for m in net.modules()
            if isinstance(m, (nn.Conv2d, nn.Linear))
        ]
    )
    assert abs(float(weights.mean())) < 0.02 and abs(float(weights.std()) - 1) < 0.02
    assert all(not m.bias.detach().any() for m in net.modules() if isinstance(m, nn.Linear))
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
    # the same seed gives the same weights, whatever the memory format
    other = build_network("tss", REAL_ARCH, 10, 1).to(memory_format=torch.channels_last)
    S.gaussian_reinit_(other, torch.Generator().manual_seed(0))
    for a, b in zip(net.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b)


def test_regular_factor_closed_form() -> None:
    assert S.regular_factor(1_500_000, 1500.0, 100.0) == 1.0
    assert S.regular_factor(1_510_000, 1500.0, 100.0) == pytest.approx(math.exp(-1.0))
    assert S.regular_factor(1_480_000, 1500.0, 200.0) == pytest.approx(math.exp(-2.0))


def all_archs(space: str) -> list[str]:
    """Every architecture of `space`: 5^6 TSS cells, 8^5 SSS widths."""
    if space == "tss":
        return [
            genotype_to_str((((a, 0),), ((b, 0), (c, 1)), ((d, 0), (e, 1), (f, 2))))
            for a, b, c, d, e, f in itertools.product(OP_NAMES, repeat=6)
        ]
    return [":".join(map(str, c)) for c in itertools.product(range(8, 65, 8), repeat=5)]


@pytest.mark.parametrize("space", ["tss", "sss"])
def test_regularisation_constants_from_the_search_space(space: str) -> None:
    """μ = the largest network's thousands of parameters, σ = 2·variance over the space."""
    for classes in (10, 100, 120):
        sizes = np.array([count_params(space, a, classes) for a in all_archs(space)]) / 1e3
        mu, sigma = S.regularisation_constants(space, classes)
        assert mu == pytest.approx(sizes.max(), rel=1e-12)
        assert sigma == pytest.approx(2 * sizes.var(), rel=1e-9)
    assert S.regularisation_constants("tss", 10)[0] == pytest.approx(1531.546)


def context(batch, arch: str = REAL_ARCH) -> ProxyContext:
    return ProxyContext(
        arch=arch,
        space="tss",
        dataset="cifar10",
        num_classes=10,
        seed=0,
        images=batch.images,
        labels=batch.labels,
        build=lambda: build_network("tss", arch, 10, 0),
    )


def test_registered_proxies_on_a_real_tss_architecture(batch, monkeypatch) -> None:
    monkeypatch.setattr(S, "SWAP_DRAWS", 2)  # keep the test short; the count is a parameter
    for name in ("swap", "swap_reg"):
        spec = PROXIES[name]
        assert spec.needs is Need.FORWARD and spec.standalone and spec.sign == 1
    value = PROXIES["swap"].compute(context(batch))
    counts = S.swap_pattern_counts(
        build_network("tss", REAL_ARCH, 10, 0),
        batch.images[:16],
        2,
        0,
    )
    assert np.isfinite(value) and 1 <= value <= 2**16
    assert value == sum(counts) / 2
    # the classifier is re-drawn too but not hooked: the same value for 100 classes
    wide = context(batch)
    wide.num_classes = 100
    wide.build = lambda: build_network("tss", REAL_ARCH, 100, 0)
    assert PROXIES["swap"].compute(wide) == value
    reg = PROXIES["swap_reg"].compute(context(batch))
    mu, sigma = S.regularisation_constants("tss", 10)
    factor = S.regular_factor(count_params("tss", REAL_ARCH, 10), mu, sigma)
    assert np.isfinite(reg) and reg == pytest.approx(value * factor, rel=1e-12)


def test_import_is_torch_free() -> None:
    code = "import gm_lab.proxies.swap, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)

"""MeCo_opt (gm_lab/proxies/meco_opt.py): closed-form values on hand-built networks, the
official procedure re-run literally on a TSS network, the registered proxy through a
ProxyContext, and a torch-free import."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.linalg import hadamard
from torch import nn

from gm_lab.inputs import load_minibatch
from gm_lab.networks import build_network
from gm_lab.plugins import PROXIES, Need, ProxyContext
from gm_lab.proxies.meco_opt import meco_opt_score

REAL_ARCH = (
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
)


def orthogonal_channels(c: int) -> torch.Tensor:
    """[1, c, 4, 8]: c zero-mean, mutually orthogonal ±1 maps (rows 1..c of a 32×32
    Hadamard matrix), so any subset of them has correlation matrix I."""
    rows = torch.tensor(hadamard(32)[1 : c + 1], dtype=torch.float32)
    return rows.reshape(1, c, 4, 8)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """1 torch thread, as the probe's workers: 2 threads on 2 contended cores crawl."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_closed_form_on_a_hand_built_network() -> None:
    """Identity on 17 uncorrelated channels: λ_min(I) = 1, term 17/8. A 1×1 conv making
    out_i = √ρ·z_0 + √(1−ρ)·z_{i+1}: corr = (1−ρ)I + ρJ, λ_min = 1 − ρ, term 16/8·(1 − ρ),
    whichever 8 channels are drawn. The pooled output (one position per channel) and the
    Sequential returning it add nothing."""
    rho = 0.25
    conv = nn.Conv2d(17, 16, 1, bias=False)
    with torch.no_grad():
        weight = torch.zeros(16, 17)
        weight[:, 0] = math.sqrt(rho)
        weight[torch.arange(16), torch.arange(1, 17)] = math.sqrt(1 - rho)
        conv.weight.copy_(weight[:, :, None, None])
    net = nn.Sequential(nn.Identity(), conv, nn.AdaptiveAvgPool2d(1))
    expected = 17 / 8 * 1.0 + 16 / 8 * (1 - rho)
    for seed in (0, 1, 2):
        got = meco_opt_score(net, orthogonal_channels(17), torch.Generator().manual_seed(seed))
        assert got == pytest.approx(expected, rel=1e-5)


def test_fewer_than_eight_channels_use_them_all() -> None:
    """4 uncorrelated channels: all 4 are used, scale 4/4, λ_min = 1; the Sequential sees
    the same map again (its own draw), so 2 in all."""
    net = nn.Sequential(nn.Identity())
    got = meco_opt_score(net, orthogonal_channels(4), torch.Generator().manual_seed(0))
    assert got == pytest.approx(2.0, rel=1e-6)


def test_perfectly_correlated_channels_give_zero() -> None:
    """Every channel a positive multiple of one map: corr = J (rank 1), λ_min = 0."""
    base = orthogonal_channels(1)
    x = torch.cat([base * (i + 1) for i in range(12)], dim=1)
    got = meco_opt_score(nn.Sequential(nn.Identity()), x, torch.Generator().manual_seed(0))
    assert got == pytest.approx(0.0, abs=1e-5)


def reference_meco_opt(net: nn.Module, image: torch.Tensor, generator: torch.Generator) -> float:
    """The official `get_score(measure='meco_opt')` of HamsterMimi/MeCo, line by line, with
    the channel draw taken from `generator` (the official code uses random.sample) and the
    one-position maps skipped without a draw (the official code draws and adds 0)."""
    result_list = []

    def forward_hook(module, data_input, data_output):
        fea = data_output[0].clone().detach()
        n = torch.tensor(fea.shape[0])
        fea = fea.reshape(n, -1)
        if fea.shape[1] < 2:
            return
        idxs = torch.randperm(int(n), generator=generator)[:8]
        fea = fea[idxs, :]
        corr = torch.corrcoef(fea)
        corr[torch.isnan(corr)] = 0
        corr[torch.isinf(corr)] = 0
        values = torch.linalg.eig(corr)[0]
        result = torch.min(torch.real(values)) * n / 8
        result_list.append(result)

    handles = [m.register_forward_hook(forward_hook) for _, m in net.named_modules()]
    with torch.no_grad():
        net(image)
    for h in handles:
        h.remove()
    results = torch.tensor(result_list)
    results = results[torch.logical_not(torch.isnan(results))]
    results = results[torch.logical_not(torch.isinf(results))]
    return torch.sum(results).item()


@pytest.fixture(scope="module")
def batch():
    return load_minibatch("cifar10", 64, 0)


def test_matches_the_official_procedure_on_a_tss_network(batch) -> None:
    image = batch.images[:1].contiguous()
    ours = meco_opt_score(
        build_network("tss", REAL_ARCH, 10, 0), image, torch.Generator().manual_seed(3)
    )
    ref = reference_meco_opt(
        build_network("tss", REAL_ARCH, 10, 0), image, torch.Generator().manual_seed(3)
    )
    assert np.isfinite(ours)
    assert ours == pytest.approx(ref, rel=1e-4, abs=1e-4)


def context(batch, seed: int = 0) -> ProxyContext:
    return ProxyContext(
        arch=REAL_ARCH,
        space="tss",
        dataset="cifar10",
        num_classes=10,
        seed=seed,
        images=batch.images,
        labels=batch.labels,
        build=lambda: build_network("tss", REAL_ARCH, 10, 0),
    )


def test_registered_proxy_on_a_real_tss_architecture(batch) -> None:
    spec = PROXIES["meco_opt"]
    assert spec.needs is Need.FORWARD and spec.standalone and spec.sign == 1
    value = spec.compute(context(batch))
    assert np.isfinite(value) and value != 0.0
    assert spec.compute(context(batch)) == value  # seeded: the same draw every time
    expected = meco_opt_score(
        build_network("tss", REAL_ARCH, 10, 0),
        batch.images[:1].contiguous(),
        torch.Generator().manual_seed(0),
    )
    assert value == pytest.approx(expected, rel=1e-12)
    assert spec.compute(context(batch, seed=1)) != value  # another seed, another draw


def test_import_is_torch_free() -> None:
    code = "import gm_lab.proxies.meco_opt, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)

"""VKDNW and VKDNW_single (gm_lab/proxies/vkdnw.py): the Jacobian and the Fisher matrix
against a naive per-sample, per-class `torch.autograd.grad` loop and against the official
`vmap(jacrev(functional_call))` on tiny networks, the Cholesky-type factor, the decile entropy
on hand-made spectra, ℵ, the registered proxies on a real TSS architecture through a
ProxyContext, and a torch-free import."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from gm_lab.inputs import load_minibatch
from gm_lab.networks import build_network
from gm_lab.plugins import PROXIES, Need, ProxyContext
from gm_lab.proxies import vkdnw as vkdnw_module
from gm_lab.proxies.vkdnw import (
    cholesky_factor,
    decile_entropy,
    fisher_matrix,
    kaiming_normal_fanin_init,
    logit_jacobian,
    num_param_tensors,
    selected_indices,
    smoothed_probabilities,
    vkdnw_score,
)

LIGHT_ARCH = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|skip_connect~1|none~2|"


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread (the machine's cores are shared; more threads only contend)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_net(seed: int = 0, classes: int = 5) -> nn.Module:
    """Conv(bias) → BN → ReLU → Conv(no bias) → BN → ReLU → pool → Linear: 9 parameter tensors,
    BN running statistics moved off (0, 1) so eval mode matters."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, classes),
    )
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return net.eval()


def inputs(n: int = 6, size: int = 8, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def naive_jacobian(
    net: nn.Module, x: torch.Tensor, tensors: int, per_tensor: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """J[n, k, :] from one forward of sample n alone and one autograd.grad per class k w.r.t.
    every parameter, then the selected scalars picked out (repeats kept)."""
    params = list(net.named_parameters())[:tensors]
    picks = [torch.linspace(0, p.numel() - 1, per_tensor).long() for _, p in params]
    logits, rows = [], []
    for n in range(x.shape[0]):
        out = net(x[n : n + 1])[0]
        logits.append(out.detach())
        per_class = []
        for k in range(out.shape[0]):
            grads = torch.autograd.grad(out[k], [p for _, p in params], retain_graph=True)
            picked = [g.reshape(-1)[i] for g, i in zip(grads, picks, strict=True)]
            per_class.append(torch.cat(picked))
        rows.append(torch.stack(per_class))
    return torch.stack(logits), torch.stack(rows)


def official_jacobian(model: nn.Module, x: torch.Tensor, p_count: int, params_grad_len: int):
    """The official `get_jacobian_index` (vmap over samples of jacrev of a functional_call),
    with the in-place write into the parameter replaced by an out-of-place index_put."""
    named = list(model.named_parameters())
    indices = [torch.linspace(0, v.numel() - 1, steps=p_count).long() for _, v in named]
    params_grad = {k: v.flatten()[i].detach() for i, (k, v) in zip(indices, named, strict=True)}
    params_grad = dict(list(params_grad.items())[:params_grad_len])
    base = {k: v.detach() for k, v in named}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def jacobian_sample(sample):
        def compute_prediction(tmp):
            params = dict(base)
            for i, (k, v) in zip(indices, tmp.items(), strict=False):
                params[k] = base[k].flatten().index_put((i,), v).reshape(base[k].shape)
            return functional_call(model, (params, buffers), (sample.unsqueeze(0),)).squeeze(0)

        return jacrev(compute_prediction)(params_grad)

    out = vmap(jacobian_sample)(x)
    return torch.cat([torch.flatten(v, start_dim=2) for v in out.values()], dim=2)


def official_cholesky(output: torch.Tensor) -> torch.Tensor:
    """The official `cholesky_covariance`, line by line (float32, float16 α)."""
    alpha = torch.tensor(0.05, dtype=torch.float16)
    prob = torch.nn.functional.softmax(output, dim=1) * (1 - alpha) + alpha / output.shape[1]
    q = torch.ones_like(prob) - torch.cumsum(prob, dim=1)
    q[:, -1] = torch.zeros_like(q[:, -1])
    q_shift = torch.roll(q, shifts=1, dims=1)
    q_shift[:, 0] = torch.ones_like(q_shift[:, 0])
    d = torch.sqrt(prob * q / q_shift)
    L = -torch.matmul(torch.unsqueeze(prob, dim=2), 1 / torch.transpose(q.unsqueeze(2), 1, 2))
    L = torch.nan_to_num(L, neginf=0.0)
    eye = torch.eye(L.shape[1], dtype=output.dtype).repeat(L.shape[0], 1, 1)
    L = L * (1 - eye) + eye
    upper = torch.triu(torch.ones(L.shape[1], L.shape[2]), diagonal=1).repeat(L.shape[0], 1, 1)
    L = L * (1 - upper)
    return torch.matmul(L, torch.diag_embed(d))


@pytest.mark.parametrize(("tensors", "per_tensor"), [(128, 1), (7, 3), (9, 5)])
def test_jacobian_matches_a_naive_loop(tensors: int, per_tensor: int) -> None:
    """All 9 or the first 7 tensors; 1, 3 or 5 scalars each (5 scalars of a 4-element tensor
    repeat index 0, as `linspace(0, 3, 5).long()` does: the column appears twice)."""
    net, x = tiny_net(), inputs()
    logits, jac = logit_jacobian(net, x, tensors, per_tensor)
    ref_logits, ref_jac = naive_jacobian(net, x, tensors, per_tensor)
    assert jac.shape == (6, 5, min(tensors, 9) * per_tensor)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(jac, ref_jac, rtol=1e-4, atol=1e-6)
    assert jac.abs().max() > 1e-3
    assert all(p.requires_grad for p in net.parameters())  # unfrozen again


def test_jacobian_matches_the_official_vmap_jacrev() -> None:
    net, x = tiny_net(seed=3), inputs(seed=4)
    _, jac = logit_jacobian(net, x, 128, 2)
    torch.testing.assert_close(jac, official_jacobian(net, x, 2, 128), rtol=1e-4, atol=1e-6)


def test_fisher_matches_naive_loop_and_official_factor() -> None:
    """F = mean_n (L_n J_n)ᵀ(L_n J_n) with J from the naive loop and L from the official
    float32 `cholesky_covariance`."""
    net, x = tiny_net(seed=5), inputs(n=7, seed=6)
    logits, jac = logit_jacobian(net, x, 128, 1)
    ref_logits, ref_jac = naive_jacobian(net, x, 128, 1)
    lj = official_cholesky(ref_logits) @ ref_jac
    expected = (lj.transpose(1, 2) @ lj).mean(0).double()
    got = fisher_matrix(logits, jac)
    assert got.shape == (9, 9)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-7 * float(expected.abs().max()))


def test_cholesky_factor_is_a_factor_of_the_multinomial_covariance() -> None:
    """For p summing to 1: L lower triangular and L Lᵀ = diag(p) − p pᵀ; the smoothed p keeps the
    official float16 constants (0.9501953125, fp16(0.05/K))."""
    logits = torch.randn(4, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    p = torch.softmax(logits, dim=1)
    L = cholesky_factor(p)
    assert torch.equal(L, torch.tril(L))
    cov = torch.diag_embed(p) - p.unsqueeze(2) * p.unsqueeze(1)
    torch.testing.assert_close(L @ L.transpose(1, 2), cov, rtol=1e-10, atol=1e-12)
    smooth = smoothed_probabilities(logits)
    alpha = torch.tensor(0.05, dtype=torch.float16)
    torch.testing.assert_close(smooth, p * 0.9501953125 + float(alpha / 7), rtol=0, atol=1e-15)
    official = official_cholesky(logits.float())
    torch.testing.assert_close(cholesky_factor(smooth).float(), official, rtol=1e-4, atol=1e-6)


def test_decile_entropy_on_hand_made_spectra() -> None:
    """0..10: the deciles (linear interpolation) are 1..9, q̃_i = i/45. Equal values: log 9.
    One non-zero eigenvalue among many zeros: every decile 0, entropy 0."""
    expected = -sum(i / 45 * math.log(i / 45 + 1e-10) for i in range(1, 10))
    shuffled = torch.tensor([3.0, 0, 10, 7, 1, 9, 2, 8, 5, 4, 6])
    assert decile_entropy(shuffled) == pytest.approx(expected, rel=1e-9)
    assert decile_entropy(torch.full((20,), 2.5)) == pytest.approx(math.log(9), rel=1e-8)
    spike = torch.zeros(50)
    spike[0] = 4.0
    assert decile_entropy(spike) == pytest.approx(0.0, abs=1e-12)


def test_score_matches_the_official_pipeline_in_float32() -> None:
    """The whole official `compute_nas_score` after initialisation (float32 throughout, naive J,
    torch.svd, torch.quantile at arange(0.1, 1, 0.1)) against vkdnw_score."""
    net, x = tiny_net(seed=7, classes=10), inputs(n=12, seed=8)
    ref_logits, ref_jac = naive_jacobian(net, x, 128, 2)
    lj = official_cholesky(ref_logits) @ ref_jac
    fisher = (lj.transpose(1, 2) @ lj).mean(0)
    lambdas = torch.svd(fisher).S
    quantiles = torch.quantile(lambdas, torch.arange(0.1, 1.0, 0.1))
    temp = quantiles / (torch.linalg.norm(quantiles, ord=1).item() + 1e-10)
    expected = -(temp * torch.log(temp + 1e-10)).sum().item()
    assert vkdnw_score(net, x, 128, 2) == pytest.approx(expected, rel=1e-3)


def test_vkdnw_score_sets_eval_mode_and_is_nan_when_undefined() -> None:
    net, x = tiny_net(), inputs()
    net.train()
    value = vkdnw_score(net, x)
    assert not net.training and np.isfinite(value) and 0.0 <= value <= math.log(9) + 1e-9
    assert math.isnan(vkdnw_score(net, x, tensors=0))  # empty θ_sub
    with torch.no_grad():
        net[-1].weight[0, 0] = float("nan")
    assert math.isnan(vkdnw_score(net, x))


def test_aleph_counts_parameter_tensors() -> None:
    """Tiny net: conv weight+bias, BN γ/β, conv weight, BN γ/β, linear weight+bias = 9 (BN
    buffers not counted). TSS: 21 + 45 per conv edge, every tensor counted."""
    assert num_param_tensors(tiny_net()) == 9
    assert [name for name, _ in selected_indices(tiny_net(), tensors=3)] == [
        "0.weight",
        "0.bias",
        "1.weight",
    ]
    for arch, convs in [
        ("|none~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|none~1|skip_connect~2|", 0),
        (LIGHT_ARCH, 1),
        ("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|none~2|", 3),
        (
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|"
            "nor_conv_1x1~1|nor_conv_3x3~2|",
            6,
        ),
    ]:
        assert num_param_tensors(build_network("tss", arch, 10, 0)) == 21 + 45 * convs


def test_kaiming_fan_in_initialisation() -> None:
    net = tiny_net()
    kaiming_normal_fanin_init(net, torch.Generator().manual_seed(0))
    assert torch.all(net[0].bias == 0) and torch.all(net[-1].bias == 0)
    assert torch.all(net[1].weight == 1) and torch.all(net[1].bias == 0)
    assert net[1].running_var.max() > 1.0  # buffers untouched
    wide = nn.Conv2d(64, 256, 3)
    kaiming_normal_fanin_init(wide, torch.Generator().manual_seed(0))
    assert float(wide.weight.detach().std()) == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.02)


@pytest.fixture(scope="module")
def batch():
    return load_minibatch("cifar10", 64, 0)


def context(batch, seed: int = 0) -> ProxyContext:
    return ProxyContext(
        arch=LIGHT_ARCH,
        space="tss",
        dataset="cifar10",
        num_classes=10,
        seed=seed,
        images=batch.images,
        labels=batch.labels,
        build=lambda: build_network("tss", LIGHT_ARCH, 10, 0),
    )


def test_registered_proxies_on_a_real_tss_architecture(batch) -> None:
    """Finite, in [0, log 9]; vkdnw_single = ℵ + vkdnw (ℵ = 21 + 45·1 here), from one pass."""
    for name in ("vkdnw", "vkdnw_single"):
        spec = PROXIES[name]
        assert spec.needs is Need.BACKWARD and spec.standalone and spec.sign == 1
    value = PROXIES["vkdnw"].compute(context(batch))
    assert np.isfinite(value) and 0.0 < value <= math.log(9) + 1e-9
    assert PROXIES["vkdnw_single"].compute(context(batch)) == 66 + value


def test_the_shared_pass_is_reused_only_for_the_same_computation(batch, monkeypatch) -> None:
    calls = []

    def fake_score(net, inputs):
        calls.append(float(inputs.sum()))
        return 0.5

    monkeypatch.setattr(vkdnw_module, "vkdnw_score", fake_score)
    monkeypatch.setattr(vkdnw_module, "_LAST", [])  # the real memo is restored afterwards
    other = "|nor_conv_1x1~0|+|skip_connect~0|none~1|+|none~0|skip_connect~1|none~2|"
    other_ctx = context(batch)
    other_ctx.arch, other_ctx.build = other, lambda: build_network("tss", other, 10, 0)
    assert PROXIES["vkdnw"].compute(context(batch)) == 0.5
    assert PROXIES["vkdnw_single"].compute(context(batch)) == 66.5
    assert len(calls) == 1
    assert PROXIES["vkdnw_single"].compute(context(batch, seed=1)) == 66.5
    assert PROXIES["vkdnw"].compute(other_ctx) == 0.5
    assert PROXIES["vkdnw"].compute(context(batch)) == 0.5
    assert len(calls) == 4 and calls[0] == calls[2] == calls[3] != calls[1]


def test_seeded_input_and_initialisation(batch) -> None:
    """The same seed gives the same noise input and weights; another seed, others. The input
    has the images' resolution but not their values."""
    net0, x0 = vkdnw_module._prepared(context(batch))
    net0b, x0b = vkdnw_module._prepared(context(batch))
    net1, x1 = vkdnw_module._prepared(context(batch, seed=1))
    assert x0.shape == (64, 3, 32, 32) and torch.equal(x0, x0b) and not torch.equal(x0, x1)
    assert not torch.allclose(x0, batch.images.float())
    w0, w0b, w1 = (n.stem[0].weight for n in (net0, net0b, net1))
    assert torch.equal(w0, w0b) and not torch.equal(w0, w1)
    assert float(w0.detach().std()) == pytest.approx(math.sqrt(2 / 27), rel=0.3)


def test_import_is_torch_free() -> None:
    code = "import gm_lab.proxies.vkdnw, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)

"""The probe: per-layer statistics, classic proxies, shared passes, determinism, degenerate nets.

Batch 16 throughout for speed; records that several tests read are computed once per module.
"""

from __future__ import annotations

import bz2
import copy
import math
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gm_lab.inputs import gaussian_minibatch
from gm_lab.networks import build_network, count_params
from gm_lab.plugins import STATISTICS
from gm_lab.probe import (
    PROBE_VERSION,
    ProbeConfig,
    ProbeRecord,
    default_inputs,
    probe_architecture,
)
from gm_lab.probe.probe import shared_proxies
from gm_lab.probe.products import grasp_exact, relu_code_kernel
from gm_lab.probe.statistics import LayerBundle, compute_statistics, layer_facts
from gm_lab.proxies._common import weighted_layers
from gm_lab.proxies.epe_nas import epe_nas_score
from gm_lab.proxies.jacov import jacov_score
from gm_lab.proxies.meco import meco_score, min_eigenvalues
from gm_lab.proxies.naswot import naswot_score
from gm_lab.proxies.synflow import synflow_score
from gm_lab.proxies.zico import zico_from_gradients, zico_score

BATCH = 16
# Every op of this cell reaches the output, so every weight gets a gradient.
REAL_ARCH = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
)
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
OFFICIAL = {  # the archs of the official sample shipped with the test data
    0: "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
    "+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    11: "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|",
    284: "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|none~0|nor_conv_1x1~1|none~2|",
}


@pytest.fixture(scope="module")
def config() -> ProbeConfig:
    return ProbeConfig(space="tss", dataset="cifar10", batch_size=BATCH, seed=0)


@pytest.fixture(scope="module")
def inputs(config: ProbeConfig) -> tuple:
    batch, noise = default_inputs(config)  # the embedded default's real CIFAR-10 images
    assert batch.source.startswith("cifar10-test") and not batch.is_standin
    return batch, noise


@pytest.fixture(scope="module")
def record(config: ProbeConfig, inputs: tuple) -> ProbeRecord:
    return probe_architecture(3, REAL_ARCH, config, *inputs)


def _n_conv_linear(net: nn.Module) -> int:
    return sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in net.modules())


# ---- the statistics ------------------------------------------------------------------------------


def test_registry_has_at_least_30_named_statistics() -> None:
    names = list(STATISTICS.names())
    assert len(names) >= 30
    assert names == list(STATISTICS) and len(set(names)) == len(names)
    assert all(n.endswith("_l") for n in names)
    for required in ("snip_l", "grad_norm_l", "l2_norm_l", "plain_l", "fisher_l", "macs_l"):
        assert required in names
    assert all(STATISTICS[n].doc for n in names), "every statistic says what it measures"


def test_every_statistic_has_one_finite_value_per_layer(record: ProbeRecord) -> None:
    net = build_network("tss", REAL_ARCH, 10, 0)
    assert record.n_layers == _n_conv_linear(net) == 53
    assert len(set(record.layer_names)) == record.n_layers
    assert record.layer_names[0] == "stem.0" and record.layer_names[-1] == "classifier"
    assert sorted(record.layer_stats) == sorted(list(STATISTICS.names()))
    for name, values in record.layer_stats.items():
        assert values.dtype == np.float64 and values.shape == (record.n_layers,), name
        assert np.all(np.isfinite(values)), name


def test_statistics_of_a_known_layer() -> None:
    """Hand-computable values for a 2×2 linear layer."""
    layer = nn.Linear(2, 2, bias=False)
    w = torch.tensor([[1.0, -2.0], [3.0, 0.0]])
    g = torch.tensor([[0.5, 0.5], [-1.0, 2.0]])
    a = torch.tensor([[1.0, -1.0], [2.0, 0.0]])
    da = torch.tensor([[0.5, 1.0], [-1.0, 3.0]])
    facts = layer_facts("fc", layer, (2, 2), 0.0)
    stats = compute_statistics([LayerBundle(facts, W=w, G=g, A=a, dA=da, A_noise=2 * a)])
    value = {k: float(v[0]) for k, v in stats.items()}
    assert value["snip_l"] == pytest.approx(0.5 + 1.0 + 3.0 + 0.0)
    assert value["plain_l"] == pytest.approx(0.5 - 1.0 - 3.0 + 0.0)
    assert value["grad_norm_l"] == pytest.approx(math.sqrt(0.25 + 0.25 + 1 + 4))
    assert value["l2_norm_l"] == pytest.approx(math.sqrt(14.0))
    assert value["log_snip_l"] == pytest.approx(math.log(0.5) + math.log(3.0) + math.log(1e-20))
    assert value["w_std_l"] == pytest.approx(float(w.std(correction=0)))
    assert value["w_abs_max_l"] == 3.0 and value["g_abs_max_l"] == 2.0
    assert value["g_snr_l"] == pytest.approx(1.0 / float(g.std(correction=0)))
    assert value["a_active_l"] == 0.5 and value["an_active_l"] == 0.5
    assert value["a_da_l"] == pytest.approx(0.5 + 1.0 + 2.0 + 0.0)
    # fisher (linear): ½ Σ_c mean_n (A·dA)² = ½ [((0.5)² + (-2)²)/2 + ((-1)² + 0²)/2]
    assert value["fisher_l"] == pytest.approx(0.5 * ((0.25 + 4) / 2 + (1 + 0) / 2))
    assert value["an_a_std_ratio_l"] == pytest.approx(2.0)
    assert value["numel_l"] == 4 and value["fan_in_l"] == 2 and value["macs_l"] == 4


def test_a_missing_tensor_makes_its_statistics_nan_not_an_error() -> None:
    facts = layer_facts("fc", nn.Linear(2, 2), (1, 2), 0.0)
    stats = compute_statistics([LayerBundle(facts, W=torch.ones(2, 2))])
    assert stats["l2_norm_l"][0] == 2.0
    assert math.isnan(stats["snip_l"][0]) and math.isnan(stats["an_mean_l"][0])


# ---- proxies that are sums of statistics ---------------------------------------------------------


def test_record_has_every_proxy(record: ProbeRecord) -> None:
    assert list(record.proxies) == list(shared_proxies())
    assert len(shared_proxies()) == 15
    assert all(math.isfinite(v) for v in record.proxies.values()), record.proxies


@pytest.mark.parametrize(
    ("proxy", "stat"),
    [
        ("snip", "snip_l"),
        ("grad_norm", "grad_norm_l"),
        ("l2_norm", "l2_norm_l"),
        ("plain", "plain_l"),
        ("fisher", "fisher_l"),
        ("flops", "macs_l"),
    ],
)
def test_proxy_is_exactly_the_sum_of_its_statistic(record: ProbeRecord, proxy: str, stat: str):
    assert record.proxies[proxy] == float(np.sum(record.layer_stats[stat]))


def test_sum_proxies_match_a_direct_foresight_style_computation(
    record: ProbeRecord, config: ProbeConfig, inputs: tuple
) -> None:
    batch, _ = inputs
    net = build_network("tss", REAL_ARCH, 10, 0)
    loss = nn.functional.cross_entropy(net(batch.images), batch.labels)
    loss.backward()
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        snip = sum(float((m.weight * m.weight.grad).abs().sum()) for m in layers)
        grad_norm = sum(float(m.weight.grad.norm()) for m in layers)
        l2 = sum(float(m.weight.norm()) for m in layers)
    assert record.proxies["snip"] == pytest.approx(snip, rel=1e-4)
    assert record.proxies["grad_norm"] == pytest.approx(grad_norm, rel=1e-4)
    assert record.proxies["l2_norm"] == pytest.approx(l2, rel=1e-6)


@pytest.mark.parametrize(
    ("space", "arch", "dataset"),
    [
        ("tss", REAL_ARCH, "cifar10"),
        ("tss", ALL_NONE, "cifar100"),
        ("sss", "8:16:24:32:40", "cifar10"),
    ],
)
def test_params_equals_count_params(space: str, arch: str, dataset: str) -> None:
    config = ProbeConfig(space=space, dataset=dataset, batch_size=2, input_kind="gaussian")
    record = probe_architecture(0, arch, config, proxies=["params", "flops"])
    classes = {"cifar10": 10, "cifar100": 100}[dataset]
    assert record.proxies["params"] == count_params(space, arch, classes)


def test_flops_of_tiny_layers_by_hand() -> None:
    conv = layer_facts("c", nn.Conv2d(3, 8, 3, padding=1, bias=False), (1, 8, 32, 32), 0.0)
    assert conv.macs == 8 * 32 * 32 * (3 * 3 * 3)  # 221,184
    strided = layer_facts(
        "s", nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), (4, 32, 16, 16), 0
    )
    assert strided.macs == 32 * 16 * 16 * 16 * 9 and strided.stride == 2
    with_bias = layer_facts("b", nn.Conv2d(3, 8, 1), (1, 8, 4, 4), 0.0)
    assert with_bias.macs == 8 * 4 * 4 * 3 + 8 * 4 * 4  # one add per output for the bias
    assert layer_facts("fc", nn.Linear(64, 10), (7, 10), 1.0).macs == 64 * 10 + 10


@pytest.mark.parametrize("index", sorted(OFFICIAL))
def test_flops_equal_the_official_nats_bench_count(index: int, official_sample: Path) -> None:
    path = official_sample / "NATS-tss-v1_0-3ffb9-simple" / f"{index:06d}.pickle.pbz2"
    with bz2.open(path) as fh:
        results = pickle.load(fh)["200"]["all_results"]
    for dataset in ("cifar10", "cifar100", "ImageNet16-120"):
        official = next(v["flop"] for (ds, _), v in results.items() if ds == dataset)
        config = ProbeConfig(dataset=dataset, batch_size=2, input_kind="gaussian")
        record = probe_architecture(index, OFFICIAL[index], config, proxies=["flops"])
        assert record.proxies["flops"] / 1e6 == pytest.approx(official, abs=1e-5), dataset


# ---- other proxies -------------------------------------------------------------------------------


def test_naswot_kernel_of_known_codes() -> None:
    x = torch.tensor([[1.0, -1.0, 2.0], [0.5, 3.0, -1.0], [-1.0, -2.0, -3.0]])
    codes = (x > 0).double()
    expected = codes @ codes.T + (1 - codes) @ (1 - codes).T  # K_ij = units where i, j agree
    kernel = relu_code_kernel(x)
    assert torch.equal(kernel, expected)
    assert kernel.tolist() == [[3, 1, 1], [1, 3, 1], [1, 1, 3]]
    assert naswot_score(kernel.numpy()) == pytest.approx(math.log(20.0))  # det = 27 - 9 + 2
    assert naswot_score(np.ones((2, 2))) == -math.inf  # identical codes: singular
    maps = torch.randn(6, 5, 4, 3, generator=torch.Generator().manual_seed(0))
    nhwc = maps.contiguous(memory_format=torch.channels_last)  # read without a copy
    assert torch.equal(relu_code_kernel(nhwc), relu_code_kernel(maps))


def _naswot_reference(arch: str, images: torch.Tensor, labels: torch.Tensor) -> float:
    """The NASWOT repo's procedure: a backward marks visited modules, then a forward adds the
    codes of the input of every visited module whose type name contains 'ReLU'."""
    net = build_network("tss", arch, 10, 0)
    relus = [m for m in net.modules() if "ReLU" in str(type(m))]
    visited: set[nn.Module] = set()
    k = np.zeros((len(labels),) * 2)

    def on_backward(module: nn.Module, _gin: tuple, _gout: tuple) -> None:
        visited.add(module)

    def on_forward(module: nn.Module, inp: tuple, _out: torch.Tensor) -> None:
        if module in visited:
            c = (inp[0] > 0).reshape(len(labels), -1).double().numpy()
            k[:] += c @ c.T + (1 - c) @ (1 - c).T

    with warnings.catch_warnings():  # the reference's old-style backward hook is deprecated
        warnings.simplefilter("ignore", FutureWarning)
        handles = [m.register_backward_hook(on_backward) for m in relus]
        nn.functional.cross_entropy(net(images), labels).backward()
    for h in handles:
        h.remove()
    for m in relus:
        m.register_forward_hook(on_forward)
    with torch.no_grad():
        net(images)
    return float(np.linalg.slogdet(k)[1])


@pytest.mark.parametrize(
    "arch",
    [REAL_ARCH, "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|skip_connect~0|none~1|none~2|"],
)
def test_naswot_follows_the_reference_procedure(config: ProbeConfig, inputs: tuple, arch: str):
    """The second arch has ops whose output never reaches the loss: the reference skips them."""
    batch, noise = inputs
    record = probe_architecture(0, arch, config, batch, noise, proxies=["naswot"])
    expected = _naswot_reference(arch, batch.images, batch.labels)
    assert math.isfinite(expected)
    assert record.proxies["naswot"] == pytest.approx(expected, rel=1e-6)


def test_jacov_and_epe_nas_on_hand_made_jacobians() -> None:
    j = np.eye(4) + 0.0  # rows pairwise corr -1/3: compute the expected eigenvalues directly
    corr = np.corrcoef(j)
    v = np.linalg.eigvalsh(corr)
    expected = -np.sum(np.log(v + 1e-5) + 1 / (v + 1e-5))
    assert jacov_score(j) == pytest.approx(expected)
    rng = np.random.default_rng(0)
    basis = np.column_stack([np.ones(50), rng.normal(size=(50, 3))])
    ortho = np.linalg.qr(basis)[0][:, 1:].T  # 3 zero-mean, mutually orthogonal rows: corr = I
    assert jacov_score(ortho) == pytest.approx(-3 * (math.log(1 + 1e-5) + 1 / (1 + 1e-5)), rel=1e-9)
    assert math.isnan(jacov_score(np.zeros((3, 5))))  # constant Jacobians: undefined
    # EPE-NAS: class 0 has two identical rows (|corr| = 1 everywhere), class 1 one row.
    rows = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [3.0, 1.0, 2.0]])
    labels = np.array([0, 0, 1])
    one = math.log(1 + 1e-5)
    assert epe_nas_score(rows, labels, 10) == pytest.approx(4 * one + one)
    assert epe_nas_score(rows, labels, 120) == pytest.approx(0.0)  # one class left: no pairs


def test_synflow_is_positive_and_grows_with_width() -> None:
    config = ProbeConfig(space="sss", batch_size=4, input_kind="gaussian")
    wide = probe_architecture(0, "64:64:64:64:64", config, proxies=["synflow"]).proxies["synflow"]
    narrow = probe_architecture(1, "8:8:8:8:8", config, proxies=["synflow"]).proxies["synflow"]
    assert 0 < narrow < wide
    assert wide / narrow > 1e6  # ~(64/8)^depth paths


def test_synflow_equals_foresight_on_a_batchnorm_free_float64_copy() -> None:
    net = build_network("tss", REAL_ARCH, 10, 0).to(memory_format=torch.channels_last)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    value = synflow_score(net, (3, 32, 32))
    # foresight's way: a copy built without BatchNorm, |θ| in float64, all-ones input
    model = copy.deepcopy(net)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(parent, name, nn.Identity())
    model = model.double()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    weights = [m.weight for m in weighted_layers(model)]
    grads = torch.autograd.grad(model(torch.ones(1, 3, 32, 32, dtype=torch.float64)).sum(), weights)
    expected = sum(float((w.detach() * g).abs().sum()) for w, g in zip(weights, grads, strict=True))
    assert value == pytest.approx(expected, rel=1e-12)
    assert value > 1e3
    # the network is left as it was: weights, BatchNorm statistics, modules' own forwards
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert not any("forward" in vars(m) for m in net.modules())


def test_grasp_by_invariance_equals_the_exact_double_backward(
    config: ProbeConfig, inputs: tuple
) -> None:
    for arch in (REAL_ARCH, OFFICIAL[0]):
        values = {
            mode: probe_architecture(0, arch, config, *inputs, proxies=["grasp"], grasp=mode)
            for mode in ("invariance", "shared", "separate")
        }
        exact = values["shared"].proxies["grasp"]
        assert values["separate"].proxies["grasp"] == pytest.approx(exact, rel=1e-4, abs=1e-6)
        # the probe's lean Conv2d and BatchNorm double backwards against PyTorch's own,
        # foresight's way
        batch, _ = inputs
        net = build_network("tss", arch, 10, 0).to(memory_format=torch.channels_last).train()
        loss = F.cross_entropy(
            net(batch.images.contiguous(memory_format=torch.channels_last)), batch.labels
        )
        weights = [m.weight for m in weighted_layers(net)]
        grads = torch.autograd.grad(loss, weights, create_graph=True)
        assert grasp_exact(weights, list(grads)) == pytest.approx(exact, rel=1e-4, abs=1e-6)
        scale = float(np.sum(values["shared"].layer_stats["grad_norm_l"] ** 2))
        assert abs(values["invariance"].proxies["grasp"] - exact) <= 1e-3 * scale


def test_zico_shared_pass_is_close_to_the_reference_procedure(
    record: ProbeRecord, inputs: tuple
) -> None:
    batch, _ = inputs
    net = build_network("tss", REAL_ARCH, 10, 0)
    reference = zico_score(net, batch.images, batch.labels)
    assert record.proxies["zico"] == pytest.approx(reference, rel=0.1)


def test_zico_reduction_by_hand() -> None:
    a = [torch.tensor([1.0, 2.0, 5.0])]
    b = [torch.tensor([3.0, 2.0, -5.0])]
    # per weight: mean|g| / std(g) = 2/1, (std 0: left out), 5/5
    assert zico_from_gradients([a, b]) == pytest.approx(math.log(2.0 + 1.0))
    assert zico_from_gradients([a, a]) == 0.0  # every std 0: the layer is skipped


def test_meco_matches_the_reference_hook_procedure(inputs: tuple) -> None:
    batch, _ = inputs
    image = batch.images[:1]
    results = []

    def hook(_m: nn.Module, _inp: tuple, out: torch.Tensor) -> None:  # the reference, verbatim
        fea = out[0].detach()
        fea = fea.reshape(fea.shape[0], -1)
        corr = torch.corrcoef(fea)
        corr[torch.isnan(corr)] = 0
        corr[torch.isinf(corr)] = 0
        results.append(torch.min(torch.real(torch.linalg.eig(corr)[0])))

    net = build_network("tss", REAL_ARCH, 10, 0)
    for m in net.modules():
        m.register_forward_hook(hook)
    with pytest.warns(UserWarning), torch.no_grad():  # torch warns about 1-column maps
        net(image)
    reference = float(torch.stack(results).nansum())
    ours = meco_score(build_network("tss", REAL_ARCH, 10, 0), image)
    assert ours == pytest.approx(reference, rel=1e-4)
    eig = min_eigenvalues([torch.eye(2), torch.tensor([[1.0, 0.5], [0.5, 1.0]]), torch.ones(3, 3)])
    assert eig.tolist() == pytest.approx([1.0, 0.5, 0.0], abs=1e-12)


# ---- the probe as a whole ------------------------------------------------------------------------


def test_probe_is_deterministic(config: ProbeConfig, inputs: tuple, record: ProbeRecord) -> None:
    again = probe_architecture(3, REAL_ARCH, config, *inputs)
    assert again.layer_names == record.layer_names
    for name in record.layer_stats:
        assert np.array_equal(again.layer_stats[name], record.layer_stats[name]), name
    assert again.proxies == record.proxies


def test_probe_loads_its_own_inputs_like_the_runner(
    config: ProbeConfig, record: ProbeRecord
) -> None:
    own = probe_architecture(3, REAL_ARCH, config, proxies=False)
    assert own.proxies == {}
    for name in record.layer_stats:
        assert np.array_equal(own.layer_stats[name], record.layer_stats[name]), name


def test_statistics_alone_give_the_same_statistics(
    config: ProbeConfig, inputs: tuple, record: ProbeRecord
) -> None:
    alone = probe_architecture(3, REAL_ARCH, config, *inputs, proxies=False)
    assert alone.proxies == {}
    assert {"forward", "backward", "noise", "statistics", "total"} <= set(alone.timings)
    assert "grasp" not in alone.timings
    for name in record.layer_stats:
        assert np.array_equal(alone.layer_stats[name], record.layer_stats[name]), name


def test_timings_name_each_pass(record: ProbeRecord) -> None:
    for key in ("build", "forward", "backward", "jacobian", "grasp", "noise", "zen", "statistics"):
        assert record.timings[key] >= 0.0, key
    assert (
        record.timings["total"] >= sum(v for k, v in record.timings.items() if k != "total") * 0.99
    )


def test_channels_last_agrees_with_nchw(
    config: ProbeConfig, inputs: tuple, record: ProbeRecord
) -> None:
    nchw = probe_architecture(3, REAL_ARCH, config, *inputs, channels_last=False)
    # Float32 kernels differ between layouts (~1e-4 relative after 50 layers of backward);
    # sums that nearly cancel (plain_l ≈ 0 for layers followed by BN) are compared to their
    # statistic's scale.
    for name, values in record.layer_stats.items():
        scale = float(np.max(np.abs(values)))
        np.testing.assert_allclose(
            nchw.layer_stats[name], values, rtol=2e-3, atol=1e-3 * scale, err_msg=name
        )
    # ZiCo divides by std over two half-batch gradients: where the halves nearly agree, that std
    # is float noise, so its sum moves ~1% between layouts (it did in CI); the rest agree to 0.5%.
    loose = {"zico": 3e-2}
    for name, value in record.proxies.items():
        rel = loose.get(name, 5e-3)
        assert nchw.proxies[name] == pytest.approx(value, rel=rel, abs=1e-6), name


def test_gaussian_input_kind_feeds_the_noise_batch_to_both_passes() -> None:
    config = ProbeConfig(batch_size=BATCH, input_kind="gaussian", seed=2)
    record = probe_architecture(0, REAL_ARCH, config, proxies=["params", "jacov"])
    noise = gaussian_minibatch("cifar10", BATCH, 2)
    explicit = probe_architecture(0, REAL_ARCH, config, noise, noise, proxies=["params", "jacov"])
    assert explicit.proxies == record.proxies and math.isfinite(record.proxies["jacov"])
    for real, noisy in [
        ("a_mean_l", "an_mean_l"),
        ("a_std_l", "an_std_l"),
        ("a_active_l", "an_active_l"),
    ]:
        np.testing.assert_allclose(record.layer_stats[real], record.layer_stats[noisy], rtol=1e-5)


def test_a_degenerate_network_gives_a_complete_record() -> None:
    config = ProbeConfig(batch_size=BATCH, input_kind="gaussian")
    record = probe_architecture(7, ALL_NONE, config)
    # stem, two ResNet blocks (3 convs each), classifier: the cells hold no weights
    assert record.n_layers == 8
    assert sorted(record.layer_stats) == sorted(list(STATISTICS.names()))
    for name, values in record.layer_stats.items():
        assert values.shape == (8,) and np.all(np.isfinite(values)), name
    assert list(record.proxies) == list(shared_proxies())
    assert record.proxies["naswot"] == -math.inf  # all ReLU codes identical
    assert record.proxies["snip"] == 0.0 and record.proxies["synflow"] == 0.0
    assert math.isnan(record.proxies["jacov"])  # the output does not depend on the input


def test_bad_arguments_are_refused(config: ProbeConfig, inputs: tuple) -> None:
    batch, noise = inputs
    with pytest.raises(ValueError, match="unknown proxies"):
        probe_architecture(0, REAL_ARCH, config, batch, noise, proxies=["snip", "nope"])
    with pytest.raises(ValueError, match="config needs"):
        probe_architecture(0, REAL_ARCH, ProbeConfig(batch_size=8), batch, noise)
    assert config.version == PROBE_VERSION

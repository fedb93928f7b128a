"""Exporting expressions: `probe_network` on any module, `make_scorer` and `to_python`.

A network scored by an exported proxy must get exactly the value the same expression has on
its cached probe, so a proxy evolved in the lab ranks networks outside it the same way. Batch 8
throughout for speed; the probes several tests compare against are computed once.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gm_lab.benchmark import Benchmark
from gm_lab.export import make_scorer, proxies_used, to_python
from gm_lab.expressions import ExpressionError, evaluate, parse
from gm_lab.networks import build_network
from gm_lab.probe import ProbeConfig, ProbeRecord, default_inputs, probe_architecture
from gm_lab.probe.cache import ProbeArrays, ProbeCache, records_to_arrays
from gm_lab.probe.probe import ProxyUnavailableWarning, probe_network

BATCH = 8
INDICES = (11, 284, 6111)  # three TSS cells of the benchmark table (6111: CIFAR-10's best)
EXPRESSIONS = [
    "mean(log(snip_l)) + 0.5 * log(naswot)",  # stats and a proxy with its own product
    "sum(grad_norm_l) / l2(w_std_l)",  # statistics only
    "log(synflow) - std(a_active_l) * zen + median(g_snr_l)",  # own passes and Zen
    "jacov + 0.001 * epe_nas - max(fan_in_l * an_a_std_ratio_l)",
]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread, as the probe's workers run: tiny batches gain nothing from more, and
    on a busy machine extra threads only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def config() -> ProbeConfig:
    return ProbeConfig(space="tss", dataset="cifar10", batch_size=BATCH, seed=0)


@pytest.fixture(scope="module")
def archs() -> dict[int, str]:
    bench = Benchmark.load("tss", progress=False)
    return {i: bench.arch(i) for i in INDICES}


@pytest.fixture(scope="module")
def inputs(config: ProbeConfig) -> tuple:
    batch, noise = default_inputs(config)
    assert not batch.is_standin  # real CIFAR-10 images (the embedded default's)
    return batch, noise


@pytest.fixture(scope="module")
def records(config: ProbeConfig, inputs: tuple, archs: dict[int, str]) -> list[ProbeRecord]:
    return [probe_architecture(i, arch, config, *inputs) for i, arch in archs.items()]


@pytest.fixture(scope="module")
def cache(config: ProbeConfig, inputs: tuple, records: list[ProbeRecord], tmp_path_factory):
    """The records in a real probe cache, as a search stores them."""
    cache = ProbeCache(config, tmp_path_factory.mktemp("probe-cache"))
    cache.bind_inputs(inputs[0].provenance())
    for record in records:
        cache.put(record)
    return cache


@pytest.fixture(scope="module")
def cached(cache: ProbeCache) -> ProbeArrays:
    """The three architectures as one sample, as a search loads them."""
    return cache.load_arrays(INDICES)


def small_cnn() -> nn.Module:
    """A network gm_lab knows nothing about: no cells, no global pool, a BatchNorm1d."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(16 * 8 * 8, 32),
            nn.BatchNorm1d(32),
            nn.Tanh(),
            nn.Linear(32, 10),
        )


def _import(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # importing the written file, as a user would
    return module


# ---- probe_network ---------------------------------------------------------------------------


def test_records_to_arrays_gives_the_cache_arrays(
    records: list[ProbeRecord], cached: ProbeArrays
) -> None:
    direct = records_to_arrays(records)
    assert direct.indices.tolist() == list(INDICES) == cached.indices.tolist()
    assert direct.archs == cached.archs
    assert np.array_equal(direct.n_layers, cached.n_layers)
    assert np.array_equal(direct.mask, cached.mask)
    assert direct.layer_stats.keys() == cached.layer_stats.keys()
    for name, values in cached.layer_stats.items():
        np.testing.assert_array_equal(direct.layer_stats[name], values, err_msg=name)
    assert direct.proxies.keys() == cached.proxies.keys()
    for name, values in cached.proxies.items():
        np.testing.assert_array_equal(direct.proxies[name], values, err_msg=name)


@pytest.mark.parametrize("explicit_noise", [True, False])
def test_probe_network_on_a_tss_net_equals_probe_architecture(
    records: list[ProbeRecord], inputs: tuple, archs: dict[int, str], explicit_noise: bool
) -> None:
    """Same passes, same numbers; the default noise is the probe's Gaussian batch."""
    batch, noise = inputs
    for record in records:
        net = build_network("tss", archs[record.index], 10, 0)
        before = {k: v.clone() for k, v in net.state_dict().items()}
        again = probe_network(
            net,
            (batch.images, batch.labels),
            noise.images if explicit_noise else None,
            index=record.index,
            arch=record.arch,
        )
        assert (again.index, again.arch) == (record.index, record.arch)
        assert again.layer_names == record.layer_names
        assert again.layer_stats.keys() == record.layer_stats.keys()
        for name, values in record.layer_stats.items():
            assert np.array_equal(again.layer_stats[name], values), name
        assert list(again.proxies) == list(record.proxies)
        np.testing.assert_equal(again.proxies, record.proxies)  # exact, NaN == NaN
        after = net.state_dict()  # a copy was probed: weights and BN statistics untouched
        assert all(torch.equal(after[k], v) for k, v in before.items())


def test_probe_network_on_a_foreign_module(inputs: tuple) -> None:
    """Statistics for every conv/linear layer; proxies needing missing structure are NaN."""
    batch, _ = inputs
    net = small_cnn()
    net.eval()
    with pytest.warns(ProxyUnavailableWarning) as caught:
        record = probe_network(net, batch)
    assert not net.training  # the caller's module keeps its mode
    assert record.layer_names == ["0", "4", "7", "10"]
    for name, values in record.layer_stats.items():
        assert values.shape == (4,) and np.all(np.isfinite(values)), name
    messages = " ".join(str(w.message) for w in caught)
    assert math.isnan(record.proxies["zen"]) and "AdaptiveAvgPool2d" in messages
    assert math.isnan(record.proxies["meco"]) and "meco" in messages  # BatchNorm1d at batch 1
    for name in ("snip", "grad_norm", "synflow", "naswot", "jacov", "grasp", "params", "flops"):
        assert math.isfinite(record.proxies[name]), name
    assert record.proxies["params"] == sum(p.numel() for p in net.parameters())
    assert record.proxies["snip"] == float(np.sum(record.layer_stats["snip_l"]))


def test_probe_network_synflow_with_tied_and_parametrized_weights(inputs: tuple) -> None:
    """A conv called twice counts twice; a weight computed by a parametrization is not the
    network's own tensor, so synflow (run on float64 copies of those) is NaN with a warning."""
    batch, _ = inputs
    conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)
    head = (nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 10))
    tied = nn.Sequential(conv, nn.BatchNorm2d(3), nn.ReLU(), conv, *head)
    once = nn.Sequential(conv, nn.BatchNorm2d(3), nn.ReLU(), copy.deepcopy(conv), *head)
    values = [probe_network(n, batch, proxies=["synflow"]).proxies["synflow"] for n in (tied, once)]
    assert values[0] == pytest.approx(values[1], rel=1e-12) and values[0] > 0
    normed = nn.Sequential(nn.utils.parametrizations.weight_norm(nn.Conv2d(3, 3, 3)), *head)
    with pytest.warns(ProxyUnavailableWarning, match="synflow"):
        record = probe_network(normed, batch, proxies=["synflow", "snip"])
    assert math.isnan(record.proxies["synflow"]) and record.proxies["snip"] > 0


def test_probe_network_refuses_what_it_cannot_probe(inputs: tuple) -> None:
    batch, _ = inputs
    with pytest.raises(ValueError, match="labels must be int64"):
        probe_network(small_cnn(), (batch.images, batch.labels.int()))
    with pytest.raises(TypeError, match="logits"):
        probe_network(nn.Conv2d(3, 4, 3), batch)  # returns a feature map, not logits
    with pytest.raises(ValueError, match="unknown proxies"):
        probe_network(small_cnn(), batch, proxies=["snip", "nope"])


# ---- make_scorer -----------------------------------------------------------------------------


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_scorer_equals_the_expression_on_cached_probes(
    expr: str, cache: ProbeCache, cached: ProbeArrays, inputs: tuple, archs: dict[int, str]
) -> None:
    batch, _ = inputs
    expected = evaluate(parse(expr), cached)
    assert np.isfinite(expected).all(), expected
    scorer = make_scorer(expr, batch_size=BATCH, seed=0)
    assert scorer.proxies == proxies_used(expr)
    for row, index in enumerate(INDICES):
        net = build_network("tss", archs[index], 10, 0)
        score = scorer(net, batch.images, batch.labels)
        # Exactly the cached value of this architecture alone ...
        assert score == evaluate(parse(expr), cache.load_arrays([index]))[0], (expr, index)
        # ... and within float rounding of its row in a sample: a row padded to the sample's
        # longest network sums its layers in another order (numpy's pairwise blocks).
        assert score == pytest.approx(expected[row], rel=1e-12, abs=0), (expr, index)


def test_scorer_probes_with_one_thread_like_the_probe_workers(
    cache: ProbeCache, inputs: tuple, archs: dict[int, str]
) -> None:
    """The cache was filled with one torch thread; a caller running more still gets its values,
    and keeps its own thread count."""
    batch, _ = inputs
    expr = "mean(g_w_ratio_l) + sum(log(snip_l))"  # ratios of near-cancelling sums: sensitive
    expected = evaluate(parse(expr), cache.load_arrays([6111]))[0]
    torch.set_num_threads(2)
    try:
        net = build_network("tss", archs[6111], 10, 0)
        assert make_scorer(expr, batch_size=BATCH)(net, batch.images, batch.labels) == expected
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    with pytest.raises(ValueError, match="threads"):
        make_scorer(expr, batch_size=BATCH, threads=0)(net, batch.images, batch.labels)


def test_scorer_probes_only_the_proxies_it_reads(inputs: tuple, archs: dict[int, str]) -> None:
    batch, _ = inputs
    scorer = make_scorer(EXPRESSIONS[0], batch_size=BATCH)
    assert scorer.proxies == ("naswot",)
    record = scorer.probe(build_network("tss", archs[11], 10, 0), batch.images, batch.labels)
    assert list(record.proxies) == ["naswot"] and "snip_l" in record.layer_stats
    more = make_scorer(EXPRESSIONS[0], batch_size=BATCH, proxies=["snip"]).proxies
    assert more == ("naswot", "snip")  # extra proxies, registry order


def test_scorer_uses_the_first_batch_size_images(inputs: tuple, archs: dict[int, str]) -> None:
    batch, _ = inputs
    net = build_network("tss", archs[284], 10, 0)
    expr = "mean(log(snip_l)) + 0.5 * log(naswot)"
    four = make_scorer(expr, batch_size=4)
    assert four(net, batch.images, batch.labels) == four(net, batch.images[:4], batch.labels[:4])
    with pytest.raises(ValueError, match="at least 16 images"):
        make_scorer(expr, batch_size=16)(net, batch.images, batch.labels)


def test_a_foreign_module_gets_a_finite_score(inputs: tuple) -> None:
    batch, _ = inputs
    net = small_cnn()
    score = make_scorer("mean(log(snip_l)) + std(a_std_l) - l2(grad_norm_l)", batch_size=BATCH)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # statistics alone: no proxy is unavailable
        value = score(net, batch.images, batch.labels)
    assert math.isfinite(value)
    assert score(small_cnn(), batch.images, batch.labels) == value  # deterministic
    with pytest.warns(ProxyUnavailableWarning, match="zen"):
        assert math.isnan(make_scorer("zen", batch_size=BATCH)(net, batch.images, batch.labels))


@pytest.mark.parametrize(
    ("text", "position"),
    [("mean(log(snip_l)", 16), ("mean(snip_l) + * naswot", 15), ("mean(snpi_l)", 5)],
)
def test_a_malformed_expression_raises_with_its_position(text: str, position: int) -> None:
    for export in (make_scorer, to_python):
        with pytest.raises(ExpressionError) as caught:
            export(text)
        assert caught.value.position == position and caught.value.column == position + 1
        assert f"column {position + 1}" in str(caught.value)
    with pytest.raises(ExpressionError, match="scalar"):
        make_scorer("log(snip_l)")  # per-layer: not a proxy


# ---- to_python -------------------------------------------------------------------------------


def test_exported_module_scores_like_the_scorer(
    tmp_path: Path, inputs: tuple, archs: dict[int, str], cache: ProbeCache
) -> None:
    batch, _ = inputs
    expr = "mean(log(snip_l)) + 0.5 * log(naswot)"
    source = to_python(parse(expr), "my_proxy", batch_size=BATCH)
    assert "def my_proxy(net, images, labels) -> float:" in source
    assert expr in source and "parse(EXPRESSION)" in source
    path = tmp_path / "exported_proxy.py"
    path.write_text(source)
    module = _import(path, "exported_proxy")
    assert expr == module.EXPRESSION and module.PROXIES == ("naswot",)
    assert expr in module.my_proxy.__doc__
    scorer = make_scorer(expr, batch_size=BATCH)
    for net in (build_network("tss", archs[6111], 10, 0), small_cnn()):
        value = module.my_proxy(net, batch.images, batch.labels)
        assert value == scorer(net, batch.images, batch.labels) and math.isfinite(value)
    net = build_network("tss", archs[6111], 10, 0)
    alone = evaluate(parse(expr), cache.load_arrays([6111]))[0]
    assert module.my_proxy(net, batch.images, batch.labels) == alone
    with pytest.raises(ValueError, match="at least 8 images"):
        module.my_proxy(net, batch.images[:3], batch.labels[:3])


def _long_expression() -> str:
    terms = [f"{k + 1} * mean(log(abs(sigmoid(w_std_l * g_snr_l + {k}))))" for k in range(12)]
    return " + ".join([*terms, "log(synflow)", "zen", "naswot", "jacov", "meco", "zico"])


@pytest.mark.parametrize(
    ("expr", "name"),
    [(EXPRESSIONS[1], "proxy"), (_long_expression(), "a_rather_long_name_for_an_exported_proxy")],
)
def test_exported_source_is_clean_python(tmp_path: Path, expr: str, name: str) -> None:
    source = to_python(expr, name)
    compile(source, "exported.py", "exec")
    assert max(len(line) for line in source.splitlines()) <= 100
    ruff = shutil.which("ruff") or shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        pytest.skip("ruff is not installed")
    path = tmp_path / "exported.py"
    path.write_text(source)
    settings = Path(__file__).resolve().parents[1] / "pyproject.toml"
    for command in (["check"], ["format", "--check", "--diff"]):
        done = subprocess.run(
            [ruff, *command, "--no-cache", "--config", str(settings), str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    module = _import(path, "exported_long")
    assert parse(module.EXPRESSION) == parse(expr) and callable(getattr(module, name))


def test_to_python_refuses_bad_names() -> None:
    for name in ("", "2fast", "class", "len", "TREE", "my-proxy"):
        with pytest.raises(ValueError, match="name"):
            to_python("naswot", name)
    with pytest.raises(ValueError, match="batch_size"):
        to_python("naswot", batch_size=0)

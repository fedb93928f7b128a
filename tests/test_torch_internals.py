"""`gm_lab.probe.torch_internals`: torch's private API behind feature checks, and the public
fallbacks giving the probe the same numbers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gm_lab.probe import (
    ProbeConfig,
    convolution,
    default_inputs,
    probe_architecture,
    torch_internals,
)
from gm_lab.probe import probe as probe_module
from gm_lab.probe.backward_split import split_backward
from gm_lab.probe.convolution import lean_conv

BATCH = 8
ARCHS = [  # cheap TSS cells (a probe each costs ~4 s of CPU): a pool feeding a 1x1 conv, skips
    "|avg_pool_3x3~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|skip_connect~2|",
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|none~0|nor_conv_1x1~1|none~2|",
]
# The proxies whose passes the private API speeds up (GraSP's split pass 2 and lean Conv2d, the
# Jacobian pass, ZiCo from the shared backward); every statistic is computed anyway.
PROXIES = ["grasp", "jacov", "zico", "naswot", "snip"]


@pytest.fixture(autouse=True)
def _fresh_checks() -> Iterator[None]:
    torch_internals.reset()
    yield
    torch_internals.reset()


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(torch_internals.FALLBACK_ENV, raising=False)


@pytest.fixture
def fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(torch_internals.FALLBACK_ENV, "1")


# ---- the feature checks ----------------------------------------------------------------------


def test_the_fast_path_works_on_the_pinned_torch(fast: None) -> None:
    if not torch.__version__.startswith("2.13."):
        pytest.skip(f"the fast path was tested on torch 2.13, this is {torch.__version__}")
    assert torch_internals.check_sequence_nr() and torch_internals.check_will_execute()
    assert torch_internals.fast_path_available()


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_the_environment_switch_forces_the_public_path(monkeypatch, value: str) -> None:
    monkeypatch.setenv(torch_internals.FALLBACK_ENV, value)
    assert not torch_internals.sequence_nr_available()
    assert not torch_internals.will_execute_available()
    assert not torch_internals.fast_path_available()
    assert torch_internals.will_execute(object())  # compute every gradient
    monkeypatch.setenv(torch_internals.FALLBACK_ENV, "0")
    assert torch_internals.fast_path_available() == (
        torch_internals.check_sequence_nr() and torch_internals.check_will_execute()
    )


def test_a_missing_sequence_nr_is_detected(monkeypatch, fast: None) -> None:
    monkeypatch.setattr(torch_internals, "_SEQUENCE_NR", "_gm_lab_no_such_method")
    assert not torch_internals.check_sequence_nr()
    assert not torch_internals.sequence_nr_available()
    assert not torch_internals.fast_path_available()


def test_a_missing_or_wrong_will_execute_is_detected(monkeypatch, fast: None) -> None:
    monkeypatch.delattr(torch._C, "_will_engine_execute_node")
    assert not torch_internals.check_will_execute()
    assert not torch_internals.will_execute_available()
    assert torch_internals.will_execute(object())
    torch_internals.reset()
    monkeypatch.setattr(torch._C, "_will_engine_execute_node", lambda node: True, raising=False)
    assert not torch_internals.check_will_execute()  # answers, but not what the conv assumes


def test_the_checks_run_once(monkeypatch, fast: None) -> None:
    calls = []
    check = torch_internals.check_sequence_nr
    monkeypatch.setattr(torch_internals, "check_sequence_nr", lambda: calls.append(1) or check())
    for _ in range(3):
        torch_internals.sequence_nr_available()
    assert calls == [1]


# ---- the fallbacks, unit by unit -------------------------------------------------------------


def _masks_of(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bool, bool, bool]]:
    masks: list[tuple[bool, bool, bool]] = []
    backward = convolution._Geometry.backward

    def spy(self, dy, x, weight, mask):
        masks.append(mask)
        return backward(self, dy, x, weight, mask)

    monkeypatch.setattr(convolution._Geometry, "backward", spy)
    return masks


@pytest.mark.parametrize("path", ["fast", "fallback"])
def test_lean_conv_computes_every_gradient_on_the_public_path(monkeypatch, path: str) -> None:
    if path == "fallback":
        monkeypatch.setenv(torch_internals.FALLBACK_ENV, "1")
    else:
        monkeypatch.delenv(torch_internals.FALLBACK_ENV, raising=False)
    masks = _masks_of(monkeypatch)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.ReLU(), nn.Conv2d(4, 2, 1, bias=False))
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    with lean_conv(net):
        out = net(x).square().sum()
    got = torch.autograd.grad(out, [x], retain_graph=True)
    got += torch.autograd.grad(out, [net[2].weight, net[0].weight])
    reference = torch.autograd.grad(net(x).square().sum(), [x, net[2].weight, net[0].weight])
    for a, b in zip(reference, got, strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0)
    if path == "fallback":
        assert masks == [(True, True, False)] * 4
    elif torch_internals.will_execute_available():
        assert (True, False, False) in masks  # the weight gradient skipped for d/dx


def _pooled_net() -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    torch.manual_seed(0)
    stem, shortcut, head = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 6, 1), nn.Linear(6, 3)
    x = torch.randn(4, 3, 8, 8)
    pooled = F.avg_pool2d(F.relu(stem(x)), 2)
    loss = F.cross_entropy(head(F.relu(shortcut(pooled)).mean((2, 3))), torch.tensor([0, 1, 2, 0]))
    return loss, pooled, [stem.weight, shortcut.weight, head.weight]


def test_split_backward_on_the_public_path_gives_the_same_gradients(monkeypatch) -> None:
    monkeypatch.delenv(torch_internals.FALLBACK_ENV, raising=False)
    loss, pooled, weights = _pooled_net()
    if not torch_internals.sequence_nr_available():
        pytest.skip("no fast path to compare with")
    cut = torch_internals.sequence_nr(pooled.grad_fn)
    fast = split_backward(loss, cut, weights[1:], weights[:1])
    monkeypatch.setenv(torch_internals.FALLBACK_ENV, "1")
    public = split_backward(loss, cut, weights[1:], weights[:1])
    for a, b in zip(fast[0] + fast[1], public[0] + public[1], strict=True):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-9)
    assert all(g.requires_grad for g in public[0]) and not public[1][0].requires_grad
    assert split_backward(loss, cut, [], []) == ([], [])


# ---- the whole probe, both paths -------------------------------------------------------------


@pytest.fixture(scope="module")
def config() -> ProbeConfig:
    return ProbeConfig(space="tss", dataset="cifar10", batch_size=BATCH, seed=0)


@pytest.fixture(scope="module")
def inputs(config: ProbeConfig, data_root: Path) -> tuple:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GM_LAB_DATA", str(data_root))
        return default_inputs(config)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_both_paths_give_the_same_probe_record(monkeypatch, config, inputs, arch: str) -> None:
    splits: list[int] = []
    asked: list[bool] = []
    split, ask = probe_module.split_backward, torch_internals.will_execute

    def will_execute(node: object) -> bool:
        asked.append(ask(node))
        return asked[-1]

    monkeypatch.setattr(probe_module, "split_backward", lambda *a: splits.append(1) or split(*a))
    monkeypatch.setattr(torch_internals, "will_execute", will_execute)
    records, taken = {}, {}
    for path in ("fast", "fallback"):
        if path == "fallback":
            monkeypatch.setenv(torch_internals.FALLBACK_ENV, "1")
        else:
            monkeypatch.delenv(torch_internals.FALLBACK_ENV, raising=False)
        splits.clear()
        asked.clear()
        records[path] = probe_architecture(0, arch, config, *inputs, proxies=PROXIES)
        taken[path] = (len(splits), all(asked), len(asked))
    fast, public = records["fast"], records["fallback"]
    assert taken["fallback"][:2] == (0, True) and taken["fallback"][2] > 0  # never asked torch
    if torch_internals.fast_path_available():
        assert taken["fast"][:2] == (1, False)  # split pass 2, some gradient skipped
    assert public.layer_names == fast.layer_names
    assert sorted(public.layer_stats) == sorted(fast.layer_stats)
    for name, values in fast.layer_stats.items():
        np.testing.assert_allclose(
            public.layer_stats[name], values, rtol=1e-5, atol=1e-12, equal_nan=True, err_msg=name
        )
    assert sorted(public.proxies) == sorted(fast.proxies) == sorted(PROXIES)
    for name in PROXIES:
        tolerance = {"rel": 1e-4, "abs": 1e-6} if name == "grasp" else {"rel": 1e-5}
        assert public.proxies[name] == pytest.approx(fast.proxies[name], **tolerance), name

"""Our NATS-Bench networks against the benchmark: parameter counts, shapes, seeding, parsing."""

from __future__ import annotations

import random
from pathlib import Path

import nats_bench
import pandas as pd
import pytest
import torch

from gm_lab.benchmark import INPUT_SIZE, NUM_CLASSES
from gm_lab.networks import (
    OP_NAMES,
    ArchStringError,
    build_network,
    count_parameters,
    count_params,
    parse_sss_arch,
    parse_tss_arch,
)
from gm_lab.networks.ops import FactorizedReduce, Zero, make_op
from gm_lab.networks.tss import genotype_to_str

CLASSES = (10, 100, 120)
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
SAMPLE_IDS = (0, 11, 284)  # the archs shipped in the official sample
TSS_SAMPLE = {
    0: "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
    "+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    11: "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|",
    284: "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|none~0|nor_conv_1x1~1|none~2|",
}
SSS_ARCHS = ("8:8:8:8:8", "64:64:64:64:64", "8:16:24:32:40", "64:8:56:16:48", "8:8:40:32:40")
BEST_TSS = TSS_SAMPLE[11].replace("none~0", "nor_conv_3x3~0")  # no `none`: every weight is used


def _random_tss_archs(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    archs = []
    for _ in range(n):
        nodes = [tuple((rng.choice(OP_NAMES), src) for src in range(k)) for k in (1, 2, 3)]
        archs.append(genotype_to_str(tuple(nodes)))
    return archs


TSS_ARCHS = [*TSS_SAMPLE.values(), *_random_tss_archs(25, seed=2024)]


@pytest.fixture(scope="module")
def tss_table(tss_table: Path) -> pd.DataFrame:  # conftest's table file, read
    cols = ["index", "arch", "params_cifar10", "params_cifar100", "params_imagenet16"]
    return pd.read_csv(tss_table, usecols=cols)


# --- (1) closed-form counts against the benchmark table ---------------------------------------


def test_counting_matches_whole_tss_table(tss_table: pd.DataFrame) -> None:
    assert len(tss_table) == 15625
    for column, classes in zip(
        ("params_cifar10", "params_cifar100", "params_imagenet16"), CLASSES, strict=True
    ):
        got = [count_params("tss", arch, classes) for arch in tss_table["arch"]]
        mismatch = tss_table.loc[[g != e for g, e in zip(got, tss_table[column], strict=True)]]
        assert mismatch.empty, f"{len(mismatch)} {column} mismatches, first:\n{mismatch.head()}"


def test_table_rows_are_the_sample_archs(tss_table: pd.DataFrame) -> None:
    for index, arch in TSS_SAMPLE.items():
        assert tss_table["arch"][index] == arch


# --- (2) closed-form counts against built modules ---------------------------------------------


@pytest.mark.parametrize("arch", TSS_ARCHS)
def test_counting_matches_built_tss(arch: str) -> None:
    for classes in CLASSES:
        net = build_network("tss", arch, classes)
        assert count_params("tss", arch, classes) == count_parameters(net), (arch, classes)


@pytest.mark.parametrize("arch", SSS_ARCHS)
def test_counting_matches_built_sss(arch: str) -> None:
    for classes in CLASSES:
        net = build_network("sss", arch, classes)
        assert count_params("sss", arch, classes) == count_parameters(net), (arch, classes)


def test_known_counts() -> None:
    # Worked by hand: stem 232 + 3 cells x 2960 + 2 ResNet blocks x 1248 + BN 16 + linear 90.
    assert count_params("sss", "8:8:8:8:8", 10) == 11714
    assert count_params("tss", TSS_SAMPLE[0], 10) == 129306


# --- (3) against the official NATS-Bench API sample -------------------------------------------


@pytest.mark.parametrize(
    ("space", "folder", "hp"),
    [("sss", "NATS-sss-v1_0-50262-simple", "90"), ("tss", "NATS-tss-v1_0-3ffb9-simple", "200")],
)
def test_official_sample_params(official_sample: Path, space: str, folder: str, hp: str) -> None:
    api = nats_bench.create(str(official_sample / folder), space, fast_mode=True, verbose=False)
    for index in SAMPLE_IDS:
        arch = api.arch(index)
        if space == "tss":
            assert arch == TSS_SAMPLE[index]
        for dataset in DATASETS:
            expected = round(api.get_cost_info(index, dataset, hp=hp)["params"] * 1e6)
            classes = NUM_CLASSES[dataset]
            assert count_params(space, arch, classes) == expected, (space, arch, dataset)
            if space == "sss":  # cheap to build; the TSS builds are covered above
                assert count_parameters(build_network(space, arch, classes)) == expected


def test_sss_skip_becomes_factorized_reduce_when_width_changes() -> None:
    net = build_network("sss", "8:16:24:32:40", 10)
    first_cell_ops = list(net.cells[0].layers)
    assert isinstance(first_cell_ops[3], torch.nn.Identity)  # 8 -> 8: a real skip
    reduce = list(net.cells[4].layers)[3]
    assert isinstance(reduce, FactorizedReduce)  # 32 -> 40: conv1x1 + BN, no ReLU first
    reduce.eval()
    x = -torch.rand(1, 32, 4, 4)  # a ReLU in front would zero this input
    assert torch.allclose(reduce(x), reduce.bn(reduce.conv(x)))
    assert reduce(x).abs().sum() > 0


# --- (4) forward and backward -----------------------------------------------------------------


@pytest.mark.parametrize(("space", "arch"), [("tss", TSS_SAMPLE[11]), ("sss", "8:16:24:32:40")])
@pytest.mark.parametrize("dataset", DATASETS)
def test_forward_shapes(space: str, arch: str, dataset: str) -> None:
    size, classes = INPUT_SIZE[dataset], NUM_CLASSES[dataset]
    net = build_network(space, arch, classes)
    logits = net(torch.randn(3, 3, size, size))
    assert logits.shape == (3, classes)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize(("space", "arch"), [("tss", BEST_TSS), ("sss", "64:8:56:16:48")])
def test_backward_reaches_every_parameter(space: str, arch: str) -> None:
    net = build_network(space, arch, 10)
    loss = torch.nn.functional.cross_entropy(net(torch.randn(4, 3, 16, 16)), torch.arange(4))
    loss.backward()
    for name, param in net.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_arch_with_only_none_edges_gives_zero_cell_output() -> None:
    arch = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    net = build_network("tss", arch, 10)
    assert torch.equal(net.cells[0](torch.randn(2, 16, 8, 8)), torch.zeros(2, 16, 8, 8))


@pytest.mark.parametrize("op", OP_NAMES)
@pytest.mark.parametrize(("c_in", "c_out"), [(8, 8), (8, 12)])
@pytest.mark.parametrize("stride", [1, 2])
def test_op_output_shapes(op: str, c_in: int, c_out: int, stride: int) -> None:
    out = make_op(op, c_in, c_out, stride)(torch.randn(2, c_in, 8, 8))
    assert out.shape == (2, c_out, 8 // stride, 8 // stride)


def test_zero_op_is_zero() -> None:
    out = Zero(4, 6, 2)(torch.randn(1, 4, 6, 6))
    assert torch.equal(out, torch.zeros(1, 6, 3, 3))


# --- (5) seeding ------------------------------------------------------------------------------


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize(("space", "arch"), [("tss", TSS_SAMPLE[0]), ("sss", "8:16:24:32:40")])
def test_same_seed_same_weights_and_global_rng_untouched(space: str, arch: str) -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = build_network(space, arch, 10, seed=7)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(999)  # the global state must not leak into the weights
    second = build_network(space, arch, 10, seed=7)
    assert _same_weights(first, second)
    assert not _same_weights(first, build_network(space, arch, 10, seed=8))


# --- (6) malformed arch strings ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        ("", "expected 3 nodes"),
        ("|nor_conv_3x3~0|+|none~0|none~1|", "expected 3 nodes"),
        ("nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "wrapped in '\\|'"),
        ("|nor_conv_3x3~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs 2 edge"),
        ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv_5x5'"),
        ("|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must come from node 0"),
        ("|nor_conv_3x3|+|none~0|none~1|+|none~0|none~1|none~2|", "not 'op~source'"),
    ],
)
def test_malformed_tss_arch(arch: str, message: str) -> None:
    with pytest.raises(ArchStringError, match=message):
        parse_tss_arch(arch)
    with pytest.raises(ValueError, match=message):
        count_params("tss", arch, 10)
    with pytest.raises(ValueError, match=message):
        build_network("tss", arch, 10)


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        ("8:16:24:32", "expected 5 channel counts"),
        ("8:16:24:32:40:48", "expected 5 channel counts"),
        ("8:16:24:32:12", "channel count 5 is '12'"),
        ("8:16:x:32:40", "channel count 3 is 'x'"),
        ("8:16:24:32:72", "channel count 5 is '72'"),
        (TSS_SAMPLE[0], "expected 5 channel counts"),
    ],
)
def test_malformed_sss_arch(arch: str, message: str) -> None:
    with pytest.raises(ArchStringError, match=message):
        parse_sss_arch(arch)
    with pytest.raises(ValueError, match=message):
        build_network("sss", arch, 10)


def test_bad_space_and_classes() -> None:
    with pytest.raises(ValueError, match="unknown search space 'fbnet'"):
        build_network("fbnet", "8:8:8:8:8", 10)
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        count_params("sss", "8:8:8:8:8", 0)


def test_parse_roundtrip() -> None:
    for arch in TSS_ARCHS:
        assert genotype_to_str(parse_tss_arch(arch)) == arch
    assert parse_sss_arch("8:16:24:32:40") == [8, 16, 24, 32, 40]

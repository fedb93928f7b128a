"""Parameter counts by closed-form arithmetic, without building a module.

Building a TSS network takes milliseconds; counting all 15,625 x 3 this way takes well under a
second. Each formula mirrors one class in `ops.py`/`tss.py`; the NATS-Bench spaces
(`gm_lab.spaces.tss`, `gm_lab.spaces.sss`) count with them, and the tests check them against
the built modules and against the benchmark's own table.
"""

from __future__ import annotations

from gm_lab.networks.build import check_space
from gm_lab.networks.tss import Genotype, stage_layout
from gm_lab.spaces import check_num_classes, get_space


def _bn(c: int) -> int:
    return 2 * c  # affine weight + bias; running stats are buffers


def _relu_conv_bn(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + _bn(c_out)  # conv has no bias (BN is affine)


def op_params(op: str, c_in: int, c_out: int) -> int:
    """Parameters of a stride-1 candidate op (as built by `ops.make_op`)."""
    if op == "none":
        return 0
    if op == "nor_conv_1x1":
        return _relu_conv_bn(c_in, c_out, 1)
    if op == "nor_conv_3x3":
        return _relu_conv_bn(c_in, c_out, 3)
    if op in ("skip_connect", "avg_pool_3x3"):
        # Identity / plain pooling, or FactorizedReduce(stride 1) / 1x1 preprocess: both conv1x1+BN.
        return 0 if c_in == c_out else _relu_conv_bn(c_in, c_out, 1)
    raise ValueError(f"unknown op {op!r}")


def cell_params(genotype: Genotype, c_in: int, c_out: int) -> int:
    """Parameters of an InferCell: edges from node 0 map c_in -> c_out, the rest c_out -> c_out."""
    return sum(
        op_params(op, c_in if src == 0 else c_out, c_out) for node in genotype for op, src in node
    )


def resblock_params(c_in: int, c_out: int) -> int:
    """Parameters of ResNetBasicblock(c_in, c_out, stride 2): two 3x3 ReLUConvBN + 1x1 shortcut."""
    return _relu_conv_bn(c_in, c_out, 3) + _relu_conv_bn(c_out, c_out, 3) + c_in * c_out


def network_params(channels: list[int], genotype: Genotype, num_classes: int) -> int:
    """Parameters of a CellNetwork: stem, cells, last BN, linear classifier."""
    total = 3 * channels[0] * 9 + _bn(channels[0])
    c_prev = channels[0]
    for c_curr, reduction in zip(channels, stage_layout(channels), strict=True):
        if reduction:
            total += resblock_params(c_prev, c_curr)
        else:
            total += cell_params(genotype, c_prev, c_curr)
        c_prev = c_curr
    return total + _bn(c_prev) + c_prev * num_classes + num_classes


def count_params(space: str, arch: str, num_classes: int) -> int:
    """Learnable parameters of `build_network(space, arch, num_classes)`, by the space's
    `count_params` (the NATS-Bench spaces use the formulas above, without building)."""
    check_space(space)
    check_num_classes(num_classes)
    return get_space(space).count_params(arch, num_classes)

"""NATS-Bench topology search space (TSS, = NAS-Bench-201): its architecture strings, parsed
without torch, and the `SearchSpace` that builds and counts its networks (gm_lab.networks.tss).

An arch string such as `|nor_conv_3x3~0|+|skip_connect~0|none~1|+|...~0|...~1|...~2|` lists, for
nodes 1..3 of the cell, one `op~source` edge per earlier node. Parsing is strict so a typo fails
loudly instead of silently building (and scoring) a different network.
"""

from __future__ import annotations

import itertools
from typing import Any

from gm_lab.spaces.base import ArchStringError, register_space
from gm_lab.spaces.nats import NatsSpace

# The candidate operations of an edge (mirroring xautodl's `cell_operations.py`).
OP_NAMES: tuple[str, ...] = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
)

# One node: its incoming edges as (op name, source node); a genotype: nodes 1..3 in order.
Node = tuple[tuple[str, int], ...]
Genotype = tuple[Node, ...]

NUM_CELL_NODES = 3  # intermediate nodes in a cell (node 0 is the input)

_OP = f"(?:{'|'.join(OP_NAMES)})"


def parse_tss_arch(arch: str) -> Genotype:
    """Parse a TSS arch string into its genotype, raising ArchStringError naming the problem."""
    if not isinstance(arch, str):
        raise ArchStringError(arch, f"expected a str, got {type(arch).__name__}")
    parts = arch.split("+")
    if len(parts) != NUM_CELL_NODES:
        raise ArchStringError(
            arch, f"expected {NUM_CELL_NODES} nodes separated by '+', found {len(parts)}"
        )
    return tuple(_parse_node(arch, part, node) for node, part in enumerate(parts, start=1))


def _parse_node(arch: str, part: str, node: int) -> Node:
    if len(part) < 2 or not (part.startswith("|") and part.endswith("|")):
        raise ArchStringError(arch, f"node {node} {part!r} must be wrapped in '|'")
    edges = part[1:-1].split("|")
    if len(edges) != node:
        raise ArchStringError(arch, f"node {node} needs {node} edge(s), found {len(edges)}")
    parsed = []
    for source, edge in enumerate(edges):
        op, sep, src = edge.partition("~")
        if not sep:
            raise ArchStringError(arch, f"edge {edge!r} of node {node} is not 'op~source'")
        if op not in OP_NAMES:
            raise ArchStringError(
                arch, f"unknown op {op!r} in node {node}; expected one of {', '.join(OP_NAMES)}"
            )
        if src != str(source):
            raise ArchStringError(
                arch, f"edge {source + 1} of node {node} must come from node {source}, got {src!r}"
            )
        parsed.append((op, source))
    return tuple(parsed)


def genotype_to_str(genotype: Genotype) -> str:
    """The canonical arch string of a genotype (inverse of parse_tss_arch)."""
    return "+".join("|" + "|".join(f"{op}~{src}" for op, src in node) + "|" for node in genotype)


class TopologySpace(NatsSpace):
    """NATS-Bench TSS: 15,625 cells of 6 edges, each one of 5 operations; C=16, N=5."""

    name = "tss"
    display_name = "NATS-Bench TSS"
    n_archs = 15_625
    arch_pattern = rf"\|{_OP}~0\|\+\|{_OP}~0\|{_OP}~1\|\+\|{_OP}~0\|{_OP}~1\|{_OP}~2\|"
    official_name = "NATS-tss-v1_0-3ffb9"
    hp = "200"  # the full training schedule, in epochs
    download = "tss"
    download_adds = (
        "the official NATS-Bench TSS archive (the embedded table already has its figures)"
    )

    def check_arch(self, arch: object) -> str:
        parse_tss_arch(arch)  # type: ignore[arg-type]  # names the problem
        return arch  # type: ignore[return-value]

    def archs(self) -> list[str]:
        return [
            genotype_to_str((((a, 0),), ((b, 0), (c, 1)), ((d, 0), (e, 1), (f, 2))))
            for a, b, c, d, e, f in itertools.product(OP_NAMES, repeat=6)
        ]

    def make_network(self, arch: str, num_classes: int) -> Any:
        from gm_lab.networks.tss import TinyNetwork

        return TinyNetwork(arch, num_classes)

    def encoding(self, arch: str) -> dict[str, float]:
        from gm_lab.spaces.tss_encoding import cell_encoding

        return cell_encoding(arch)

    def cell_layout(self, arch: str) -> tuple[list[int], Genotype]:
        from gm_lab.networks.tss import tss_channels

        return tss_channels(), parse_tss_arch(arch)


TSS = TopologySpace()
register_space(TSS)

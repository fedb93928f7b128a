"""A TSS cell as numbers, for learned accuracy predictors (gm_lab.predict): the one-hot cell
(6 edges × 5 operations), operation counts, node degrees and GRAF-style path features (Kadlecová
et al., ICML 2024: paths from input to output whose every edge is in an operation set)."""

from __future__ import annotations

from gm_lab.spaces.tss import OP_NAMES, parse_tss_arch

# GRAF-style op sets: paths whose every edge is one of these ops
PATH_SETS: dict[str, frozenset[str]] = {
    "any": frozenset({"skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"}),
    "conv": frozenset({"nor_conv_1x1", "nor_conv_3x3"}),
    "conv3": frozenset({"nor_conv_3x3"}),
    "nopool": frozenset({"skip_connect", "nor_conv_1x1", "nor_conv_3x3"}),
    "noskip": frozenset({"nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"}),
}


def cell_encoding(arch: str) -> dict[str, float]:
    """One-hot encoding, op counts, node degrees and path features of one TSS cell."""
    genotype = parse_tss_arch(arch)
    edges = [(src, node, op) for node, incoming in enumerate(genotype, 1) for op, src in incoming]
    out: dict[str, float] = {}
    for k, (src, dst, op) in enumerate(edges):
        for name in OP_NAMES:
            out[f"edge{k}_{src}to{dst}={name}"] = float(op == name)
    for name in OP_NAMES:
        out[f"count_{name}"] = float(sum(op == name for *_, op in edges))
    for node in range(1, 4):
        out[f"in_degree_{node}"] = float(sum(d == node and op != "none" for _, d, op in edges))
    for node in range(3):
        out[f"out_degree_{node}"] = float(sum(s == node and op != "none" for s, _, op in edges))
    for label, allowed in PATH_SETS.items():
        lengths = _path_lengths(edges, allowed)
        out[f"paths_{label}"] = float(len(lengths))
        out[f"min_path_{label}"] = float(min(lengths)) if lengths else 0.0  # 0: no path
        out[f"max_path_{label}"] = float(max(lengths)) if lengths else 0.0
    # convolutions on the input->output paths (any op but none): how deep the cell computes
    convs = [
        sum(op in PATH_SETS["conv"] for op in path) for path in _paths(edges, PATH_SETS["any"])
    ]
    out["max_convs_on_path"] = float(max(convs)) if convs else 0.0
    out["min_convs_on_path"] = float(min(convs)) if convs else 0.0
    out["paths_without_conv"] = float(sum(c == 0 for c in convs))
    return out


def _paths(edges: list[tuple[int, int, str]], allowed: frozenset[str]) -> list[list[str]]:
    """Every input(0)->output(3) path using only edges whose op is in `allowed`, as op lists."""
    out: list[list[str]] = []

    def walk(node: int, ops: list[str]) -> None:
        if node == 3:
            out.append(ops)
            return
        for src, dst, op in edges:
            if src == node and op in allowed:
                walk(dst, [*ops, op])

    walk(0, [])
    return out


def _path_lengths(edges: list[tuple[int, int, str]], allowed: frozenset[str]) -> list[int]:
    return [len(p) for p in _paths(edges, allowed)]

"""Population aggregates of the recorded proxy values: AZ-NAS and VKDNW_agg.

Usage (from the repository root, after benchmarks/new_proxies.py wrote its JSON records):

    GM_LAB_DATA=../shared/data python benchmarks/aggregates.py \\
        benchmarks/new_proxies-tss.json benchmarks/new_proxies-vkdnw.json \\
        --json benchmarks/aggregates.json

Protocol:
- Per architecture, the values new_proxies.py recorded (the same networks, seed 0, the CIFAR-10
  probe minibatch), plus two shared-pass quantities computed here on the same network:
  FLOPs (`flops`: Σ multiply-accumulates of conv/linear layers for one image, what the probe's
  `flops` proxy computes, by forward hooks) and jacov (`gm_lab.proxies.jacov.jacov_score` of
  the input Jacobian of Σ logits on the minibatch, train mode, as the probe's pass 3).
- AZ-NAS = Σ log(rank/N) over (az_expressivity, az_progressivity, az_trainability, flops),
  `gm_lab.aggregate.log_rank_sum`, on every architecture with the AZ-NAS components; the
  same aggregate is the expression
  `logrank(az_expressivity) + logrank(az_progressivity) + logrank(az_trainability) +
  logrank(flops)`.
- VKDNW_agg = Σ log(rank/N) over (vkdnw_single, jacov, az_expressivity, az_trainability,
  flops), on the architectures with VKDNW values (a subset: VKDNW costs seconds per network).
- Kendall τ-b / Spearman ρ against each dataset's final test accuracy (`gm_lab.metrics`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import record

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")


def _rows(paths: list[Path]) -> dict[int, dict[str, Any]]:
    """index -> {"arch", "values": {proxy: cifar10 value}, "test_accuracy": {...}}."""
    merged: dict[int, dict[str, Any]] = {}
    for path in paths:
        for row in json.loads(path.read_text())["architectures"]:
            entry = merged.setdefault(
                row["index"], {"arch": row["arch"], "values": {}, "acc": row["test_accuracy"]}
            )
            for name, per_dataset in row["values"].items():
                entry["values"][name] = per_dataset["cifar10"]
    return merged


def _flops_and_jacov(arch: str, images: Any, with_jacov: bool) -> tuple[float, float]:
    """FLOPs of the network (one image), and jacov if `with_jacov` (else NaN)."""
    import torch

    from gm_lab.networks import build_network
    from gm_lab.proxies.jacov import jacov_score

    net = build_network("tss", arch, 10, 0).train()
    macs: list[float] = []

    def count(module: torch.nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        positions = out[0, 0].numel() if out.dim() == 4 else 1
        outputs = module.weight.shape[0]  # out_channels / out_features
        per = module.weight.numel() + (outputs if module.bias is not None else 0)
        macs.append(per * positions)

    layers = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    hooks = [m.register_forward_hook(count) for m in layers]
    with torch.no_grad():
        net(images[:1])
    for h in hooks:
        h.remove()
    if not with_jacov:
        return float(sum(macs)), float("nan")
    x = images.clone().requires_grad_(True)
    net(x).sum().backward()
    return float(sum(macs)), jacov_score(x.grad.reshape(x.shape[0], -1).numpy())


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("records", nargs="+", type=Path, help="new_proxies.py JSON records")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)

    import torch
    from tqdm import tqdm

    from gm_lab import metrics
    from gm_lab.aggregate import log_rank_sum
    from gm_lab.inputs import load_minibatch

    torch.set_num_threads(1)
    rows = _rows(args.records)
    batch = load_minibatch("cifar10", 64, 0)
    images = batch.images.contiguous()
    for entry in tqdm(rows.values(), desc="flops (jacov where VKDNW is)", unit="arch"):
        with_jacov = "vkdnw_single" in entry["values"]
        flops, jacov = _flops_and_jacov(entry["arch"], images, with_jacov)
        entry["values"]["flops"] = flops
        if with_jacov:
            entry["values"]["jacov"] = jacov

    aggregates = {
        "az_nas": ("az_expressivity", "az_progressivity", "az_trainability", "flops"),
        "vkdnw_agg": ("vkdnw_single", "jacov", "az_expressivity", "az_trainability", "flops"),
    }
    figures: dict[str, Any] = {}
    for name, parts in aggregates.items():
        have = [i for i, e in rows.items() if all(p in e["values"] for p in parts)]
        if not have:
            continue
        columns = [np.array([rows[i]["values"][p] for i in have]) for p in parts]
        score = log_rank_sum(columns)
        figures[name] = {"n": len(have), "parts": list(parts)}
        for dataset in DATASETS:
            truth = np.array([rows[i]["acc"][dataset] for i in have])
            figures[name][dataset] = {
                "kendall": metrics.kendall(score, truth),
                "spearman": metrics.spearman(score, truth),
            }
    print(f"{'aggregate':<10} {'n':>5}  " + "  ".join(f"{d:>17}" for d in DATASETS))
    for name, f in figures.items():
        cells = "  ".join(f"{f[d]['kendall']:.3f} / {f[d]['spearman']:.3f}" for d in DATASETS)
        print(f"{name:<10} {f['n']:>5}  {cells}   (Kendall tau / Spearman rho)")
    result = {
        "figures": figures,
        "provenance": record(__file__, "tss", DATASETS, {"network": 0, "minibatch": 0}),
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()

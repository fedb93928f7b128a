"""Probe speed: full probe, statistics pass alone, and a naive one-proxy-at-a-time baseline.

Usage (from the repository root, with the data root set):

    GM_LAB_DATA=../shared/data python benchmarks/probe_speed.py --n 20 --threads 1 2

Over N random TSS architectures at batch 64 (the same archs for every measurement, batches
loaded once, channels_last), for each torch thread count given (probe workers run 1 thread
each; a single process may use both cores):

- full probe: `probe_architecture(..., proxies=True)`, every statistic and proxy;
- full probe without GraSP (its exact second-order term is the dearest part on CPU);
- statistics pass alone: `proxies=False` (what the GP benchmark needs);
- the speedometer: one plain forward+backward of the same network with PyTorch's own modules.
  This machine's speed drifts by ±20% within an hour; no probe code runs in this row, so the
  probe rows are also given as multiples of it, which takes most of the drift out (the probe
  leans on memory bandwidth more than a plain pass, so not all of it);
- GraSP's three procedures, forward + backward + GraSP seconds: "invariance" (the default),
  "shared" (create_graph on the shared backward, then a full double backward) and "separate"
  (foresight's own second forward), each with the probe's lean Conv2d, BatchNorm and AvgPool2d
  double backwards;
- the default GraSP procedure with pass 2 not split at GraSP's cut (a second, create_graph
  backward instead: what `gm_lab.probe.backward_split` saves), then with PyTorch's own Conv2d
  or BatchNorm double backward, or its own AvgPool2d kernels and double backward, instead of
  the lean ones (what `gm_lab.probe.convolution`, `gm_lab.probe.batchnorm` and
  `gm_lab.probe.pooling` each save);
- naive baseline: each proxy on its own freshly built network with its own passes, as running
  the reference measures one after another does (same memory format and scoring code);
- 2 worker processes × 1 thread running the full probe over the archs: wall time per arch.

Like the runner's pool workers, the process keeps freed memory (gm_lab.probe.allocator).
Prints median/max seconds per architecture, the peak RSS (ru_maxrss) after the probe runs and
after the comparisons, and the load average (the machine is shared: other jobs slow 2-thread
runs most, as a parallel region waits for a busy core). The first line printed is the run's
provenance (benchmarks/_provenance.py).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F
from _provenance import header
from torch import nn

from gm_lab.benchmark.spaces import NUM_CLASSES
from gm_lab.inputs import Minibatch
from gm_lab.networks import OP_NAMES, build_network, count_parameters
from gm_lab.networks.tss import genotype_to_str
from gm_lab.probe import ProbeConfig, default_inputs, probe_architecture, products
from gm_lab.probe import probe as probe_module
from gm_lab.probe.allocator import keep_freed_memory
from gm_lab.probe.probe import ZEN_ALPHA, _global_pool, shared_proxies
from gm_lab.proxies import _common, epe_nas, jacov, meco, naswot, synflow, zen, zico


def random_tss_archs(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    archs = []
    for _ in range(n):
        ops = rng.choice(OP_NAMES, size=6)
        it = iter(ops)
        archs.append(
            genotype_to_str(tuple(tuple((next(it), s) for s in range(k)) for k in (1, 2, 3)))
        )
    return archs


# ---- naive baseline: one proxy at a time, each with its own passes ------------------------------


def _fresh(arch: str, config: ProbeConfig) -> nn.Module:
    net = build_network(config.space, arch, NUM_CLASSES[config.dataset], config.seed)
    return net.to(memory_format=torch.channels_last).train()


def _weights(net: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in _common.weighted_layers(net)]


def _grads(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    loss = F.cross_entropy(net(x), y)
    return list(torch.autograd.grad(loss, _weights(net), allow_unused=True, materialize_grads=True))


def _jacobian(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    x = x.detach().clone().requires_grad_(True)
    (jx,) = torch.autograd.grad(net(x).sum(), x)
    return jx.reshape(jx.shape[0], -1).double().numpy()


def naive_proxy(name: str, net: nn.Module, batch: Minibatch, noise: Minibatch) -> float:
    """Proxy `name` computed the way a standalone reference measure does: its own passes."""
    fmt = torch.channels_last
    x, y = batch.images.contiguous(memory_format=fmt), batch.labels
    if name == "params":
        return count_parameters(net)
    if name == "l2_norm":
        return float(sum(w.detach().norm() for w in _weights(net)))
    if name == "flops":
        shapes: list[tuple[nn.Module, tuple]] = []
        hs = [
            m.register_forward_hook(lambda m, i, o: shapes.append((m, tuple(o.shape))))
            for m in _common.weighted_layers(net)
        ]
        with torch.no_grad():
            net(x[:1])
        for h in hs:
            h.remove()
        return float(sum(m.weight.numel() * int(np.prod(s[2:] or (1,))) for m, s in shapes))
    if name in ("grad_norm", "snip", "plain"):
        ws, gs = _weights(net), _grads(net, x, y)
        with torch.no_grad():
            if name == "grad_norm":
                return float(sum(g.norm() for g in gs))
            if name == "snip":
                return float(sum((w * g).abs().sum() for w, g in zip(ws, gs, strict=True)))
            return float(sum((w * g).sum() for w, g in zip(ws, gs, strict=True)))
    if name == "fisher":
        outs: list[torch.Tensor] = []
        hs = [
            m.register_forward_hook(lambda m, i, o: outs.append(o))
            for m in _common.weighted_layers(net)
        ]
        loss = F.cross_entropy(net(x), y)
        for h in hs:
            h.remove()
        douts = torch.autograd.grad(loss, outs, allow_unused=True, materialize_grads=True)
        total = 0.0
        with torch.no_grad():
            for a, d in zip(outs, douts, strict=True):
                p = a * d
                p = p.sum((2, 3)) if p.dim() == 4 else p
                total += 0.5 * float(p.pow(2).mean(0).sum())
        return total
    if name == "grasp":
        ws = _weights(net)
        _grads(net, x, y)  # foresight's first pass (its result equals the second's here)
        loss = F.cross_entropy(net(x), y)
        g = torch.autograd.grad(
            loss, ws, create_graph=True, allow_unused=True, materialize_grads=True
        )
        return products.grasp_exact(ws, list(g))
    if name == "jacov":
        return jacov.jacov_score(_jacobian(net, x))
    if name == "epe_nas":
        return epe_nas.epe_nas_score(_jacobian(net, x), y.numpy(), NUM_CLASSES[batch.dataset])
    if name == "naswot":
        k = torch.zeros((x.shape[0],) * 2, dtype=torch.float64)

        def on_relu(_m: nn.Module, inp: tuple, _out: torch.Tensor) -> None:
            k.add_(products.relu_code_kernel(inp[0]))

        hs = [m.register_forward_hook(on_relu) for m in net.modules() if isinstance(m, nn.ReLU)]
        with torch.no_grad():
            net(x)
        for h in hs:
            h.remove()
        return naswot.naswot_score(k.numpy())
    if name == "zen":
        z = noise.images.contiguous(memory_format=fmt)
        feats: list[torch.Tensor] = []
        h = _global_pool(net).register_forward_pre_hook(lambda m, i: feats.append(i[0].clone()))
        eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            net(z)
            net(z + ZEN_ALPHA * eps.contiguous(memory_format=fmt))
        h.remove()
        bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
        dist = float((feats[0] - feats[1]).abs().flatten(1).sum(1).mean())
        return zen.zen_score(dist, np.array([float(b.running_var.mean()) for b in bns]))
    if name == "synflow":
        return synflow.synflow_score(net, tuple(x.shape[1:]))
    if name == "meco":
        return meco.meco_score(net, x[:1])
    if name == "zico":
        return zico.zico_score(net, x, y)
    raise ValueError(name)


def naive_probe(arch: str, config: ProbeConfig, batch: Minibatch, noise: Minibatch) -> None:
    for name in shared_proxies():
        naive_proxy(name, _fresh(arch, config), batch, noise)


# ---- measurement --------------------------------------------------------------------------------


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):6.3f} s   max {max(values):6.3f} s"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def print_rows(title: str, rows: dict[str, list[float]]) -> None:
    print(f"\n== {title} ==")
    for name, values in rows.items():
        print(f"{name:40s} {summary(values)}")


FULL, STATS = "full probe (41 statistics, 15 proxies)", "statistics pass alone"


def default_path(archs: list[str], config: ProbeConfig, batch: Minibatch, noise: Minibatch):
    """The probe as the runner uses it: full, without GraSP, statistics alone."""
    no_grasp = [p for p in shared_proxies() if p != "grasp"]
    rows: dict[str, list[float]] = {}
    passes: dict[str, list[float]] = {}
    for i, arch in enumerate(archs):
        record = probe_architecture(i, arch, config, batch, noise)
        rows.setdefault(FULL, []).append(record.timings["total"])
        for key, value in record.timings.items():
            passes.setdefault(key, []).append(value)
        t = probe_architecture(i, arch, config, batch, noise, proxies=no_grasp).timings
        rows.setdefault("full probe without grasp", []).append(t["total"])
        t = probe_architecture(i, arch, config, batch, noise, proxies=False).timings
        rows.setdefault(STATS, []).append(t["total"])
        rows.setdefault(SPEEDOMETER, []).append(plain_forward_backward(arch, config, batch))
    return rows, passes


SPEEDOMETER = "plain forward+backward (speedometer)"


def plain_forward_backward(arch: str, config: ProbeConfig, batch: Minibatch) -> float:
    """Seconds of one cross-entropy forward+backward of the network, PyTorch's own modules,
    channels_last: no probe code runs in it, so it measures the machine's speed of the moment
    (the task notes give 0.35 s for it on these cores)."""
    net = _fresh(arch, config)
    x = batch.images.contiguous(memory_format=torch.channels_last)
    return seconds(lambda: _grads(net, x, batch.labels))


def relative_cost(rows: dict[str, list[float]], name: str) -> float:
    """Median over architectures of row `name` ÷ the speedometer on the same architecture."""
    pairs = zip(rows[name], rows[SPEEDOMETER], strict=True)
    return statistics.median(a / b for a, b in pairs)


# The probe's lean layers, each replaced by PyTorch's own in one comparison row.
LEAN_LAYERS = {
    "lean_conv": "PyTorch's Conv2d double backward",
    "lean_batchnorm": "PyTorch's BatchNorm double backward",
    "lean_pool": "PyTorch's AvgPool2d kernels and double backward",
}


def comparisons(
    archs: list[str], config: ProbeConfig, batch: Minibatch, noise: Minibatch, naive: bool
) -> dict[str, list[float]]:
    """GraSP's three procedures (forward + backward + Hg seconds) and the naive baseline."""
    rows: dict[str, list[float]] = {}
    for i, arch in enumerate(archs):
        for mode in ("invariance", "shared", "separate"):
            t = probe_architecture(
                i, arch, config, batch, noise, proxies=["grasp"], grasp=mode
            ).timings
            rows.setdefault(f"grasp {mode}: forward+backward+grasp", []).append(
                t["forward"] + t["backward"] + t["grasp"]
            )
        with mock.patch.object(probe_module, "_graph_cut", lambda _fwd: None):  # no split
            t = probe_architecture(i, arch, config, batch, noise, proxies=["grasp"]).timings
        rows.setdefault("grasp invariance, pass 2 not split", []).append(
            t["forward"] + t["backward"] + t["grasp"]
        )
        for lean, native in LEAN_LAYERS.items():
            with mock.patch.object(probe_module, lean, lambda _net: nullcontext()):
                t = probe_architecture(i, arch, config, batch, noise, proxies=["grasp"]).timings
            rows.setdefault(f"grasp invariance, {native}", []).append(
                t["forward"] + t["backward"] + t["grasp"]
            )
        if naive:
            rows.setdefault("naive one-proxy-at-a-time (15 proxies)", []).append(
                seconds(lambda arch=arch: naive_probe(arch, config, batch, noise))
            )
    return rows


def _vm_hwm_mb() -> float:
    """Peak RSS of this process image from /proc (ru_maxrss survives exec, VmHWM does not)."""
    with open("/proc/self/status") as fh:
        line = next(row for row in fh if row.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _worker(archs: list[str], config: ProbeConfig, ready: Any, out: Any) -> None:
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    keep_freed_memory()  # as the runner's pool workers do
    batch, noise = default_inputs(config)
    probe_architecture(0, archs[0], config, batch, noise)  # warm-up, not timed
    ready.wait()  # both workers start probing together
    start = time.time()
    for i, arch in enumerate(archs):
        probe_architecture(i, arch, config, batch, noise)
    out.put((start, time.time(), _vm_hwm_mb()))


def two_workers(archs: list[str], config: ProbeConfig) -> tuple[float, float]:
    """Wall seconds per architecture with 2 worker processes × 1 torch thread (full probe),
    and the larger worker's peak RSS."""
    ctx = mp.get_context("spawn")
    ready, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(archs[k::2], config, ready, out)) for k in (0, 1)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    wall = max(r[1] for r in results) - min(r[0] for r in results)
    return wall / len(archs), max(r[2] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20, help="random TSS architectures (default 20)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=0, help="architecture sample seed")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive baseline")
    parser.add_argument("--no-workers", action="store_true", help="skip the 2-process run")
    parser.add_argument(
        "--probe-only",
        action="store_true",
        help="only the probe rows (no GraSP procedures, naive baseline or workers): a quick run, "
        "which also runs against older gm_lab code (PYTHONPATH=<its checkout>)",
    )
    args = parser.parse_args()

    warnings.simplefilter("ignore")
    keep_freed_memory()  # as the runner's pool workers do (gm_lab.probe.allocator)
    config = ProbeConfig(space="tss", dataset="cifar10", batch_size=args.batch_size)
    seeds = {"architecture_sample": args.seed, "network": config.seed}
    print(header(__file__, config.space, [config.dataset], seeds), flush=True)
    batch, noise = default_inputs(config)
    archs = random_tss_archs(args.n, args.seed)
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, {args.n} random TSS archs "
        f"(seed {args.seed}), batch {args.batch_size}, {batch.source} images, channels_last; "
        f"load average at start {load_average()}"
    )
    probe_architecture(0, archs[0], config, batch, noise)  # warm-up (allocator, kernels)
    for threads in args.threads:
        torch.set_num_threads(threads)
        rows, passes = default_path(archs, config, batch, noise)
        print_rows(f"torch.set_num_threads({threads}): the probe", rows)
        print(
            "in plain forward+backwards of the same architecture (median): full probe "
            f"{relative_cost(rows, FULL):.2f}, statistics pass {relative_cost(rows, STATS):.2f}"
        )
        print("per pass of the full probe (median s):")
        print("  " + ", ".join(f"{k} {statistics.median(v):.3f}" for k, v in passes.items()))
    print(f"\npeak RSS after the probe runs: {peak_rss_mb():.0f} MB")
    if args.probe_only:
        print(f"load average at end {load_average()}")
        return
    for threads in args.threads:
        torch.set_num_threads(threads)
        rows = comparisons(archs, config, batch, noise, naive=not args.no_naive)
        print_rows(f"torch.set_num_threads({threads}): GraSP procedures, naive baseline", rows)
    print(f"\npeak RSS after the comparisons too: {peak_rss_mb():.0f} MB")
    if not args.no_workers:
        per_arch, worker_rss = two_workers(archs, config)
        print(
            f"\n2 worker processes x 1 torch thread, full probe: {per_arch:.3f} s of wall time "
            f"per architecture (peak RSS per worker {worker_rss:.0f} MB)"
        )
    print(f"load average at end {load_average()}")


if __name__ == "__main__":
    main()

"""Time loading 1,000 architectures' probe statistics from the cache into `ProbeArrays`.

Run: `python benchmarks/cache_load.py [--n 1000] [--layers 45] [--stats 41] [--proxies 15]`

Synthetic records of realistic size (TSS nets have ~45 conv/linear layers, max 83; the real probe
records 41 statistics per layer and 15 proxies) are written to a temporary cache, then loaded:
cold (every record file read and verified, pack built), warm in a new `ProbeCache` (the pack
read back, record files only stat'ed), after one more record arrived (pack + one file), and
again in the same object. If the default cache (`gm-lab probe` at batch 64) holds real records,
loading those is timed too. The target is < 2 s for 1,000 architectures. The first line printed
is the run's provenance (benchmarks/_provenance.py).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _provenance import header

from gm_lab.probe.cache import ProbeCache
from gm_lab.probe.record import ProbeConfig, ProbeRecord


def synthetic_record(index: int, rng: np.random.Generator, args: argparse.Namespace) -> ProbeRecord:
    n_layers = int(np.clip(rng.normal(args.layers, 12), 10, 83))
    return ProbeRecord(
        index=index,
        arch=f"|synthetic~{index}|",
        layer_names=[f"cells.{i // 6}.edges.{i % 6}.op.conv" for i in range(n_layers)],
        layer_stats={f"stat_{s:02d}": rng.standard_normal(n_layers) for s in range(args.stats)},
        proxies={f"proxy_{p:02d}": float(rng.standard_normal()) for p in range(args.proxies)},
        timings={"total": 1.0},
    )


def timed(label: str, fn) -> float:
    start = time.perf_counter()
    arrays = fn()
    seconds = time.perf_counter() - start
    shape = next(iter(arrays.layer_stats.values())).shape
    print(f"  {label:<46} {seconds:6.3f} s   ({len(arrays.layer_stats)} stats x {shape})")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--layers", type=int, default=45)
    parser.add_argument("--stats", type=int, default=41)
    parser.add_argument("--proxies", type=int, default=15)
    args = parser.parse_args()
    print(header(__file__, "tss", ["cifar10"], {"synthetic_records": 0}), flush=True)
    rng = np.random.default_rng(0)
    config = ProbeConfig(space="tss", dataset="cifar10", batch_size=64, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        cache = ProbeCache(config, root=Path(tmp))
        cache.bind_inputs({"dataset": "cifar10", "source": "synthetic"})
        start = time.perf_counter()
        for index in range(args.n):
            cache.put(synthetic_record(index, rng, args))
        write = time.perf_counter() - start
        size = sum(p.stat().st_size for p in cache.records_dir.iterdir()) / 1e6
        print(f"{args.n} records, {size:.1f} MB, written in {write:.2f} s (atomic, fsync'ed)")
        wanted = rng.permutation(args.n)
        timed("cold: read+verify every record, build pack", lambda: cache.load_arrays(wanted))
        pack_mb = (cache.folder / "pack.npz").stat().st_size / 1e6
        fresh = ProbeCache(config, root=Path(tmp))
        label = f"warm: new ProbeCache, from pack ({pack_mb:.1f} MB)"
        timed(label, lambda: fresh.load_arrays(wanted))
        fresh.put(synthetic_record(args.n, rng, args))
        timed("warm + 1 new record", lambda: fresh.load_arrays(wanted))
        timed("same object again, nothing changed", lambda: fresh.load_arrays(wanted))
    real = ProbeCache(config)
    if len(real):
        timed(f"real records in {real.folder} ({len(real)})", lambda: real.load_arrays())


if __name__ == "__main__":
    main()

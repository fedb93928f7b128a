"""Time to load the compact TSS table (target: well under a second).

Run: GM_LAB_DATA=../shared/data python benchmarks/benchmark_load.py
"""

from __future__ import annotations

import statistics
import time

from gm_lab.benchmark import Benchmark
from gm_lab.paths import data_root


def main(repeats: int = 5) -> None:
    path = data_root() / "nats_bench" / "tss.csv"
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        Benchmark.from_table(path, "tss")
        times.append(time.perf_counter() - start)
    print(f"compact table {path}: median {statistics.median(times):.3f} s over {repeats} loads")


if __name__ == "__main__":
    main()

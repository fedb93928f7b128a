"""Time to load the compact TSS table (target: well under a second).

Run: GM_LAB_DATA=../shared/data python benchmarks/benchmark_load.py [--repeats 5]

The first line printed is the run's provenance (benchmarks/_provenance.py).
"""

from __future__ import annotations

import argparse
import statistics
import time

from _provenance import header

from gm_lab.benchmark import Benchmark
from gm_lab.paths import data_root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="loads timed (median shown)")
    repeats = parser.parse_args().repeats
    path = data_root() / "nats_bench" / "tss.csv"
    bench = Benchmark.from_table(path, "tss")  # fingerprinted in the header; warms up, too
    print(header(__file__, "tss", [], {}, bench=bench), flush=True)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        Benchmark.from_table(path, "tss")
        times.append(time.perf_counter() - start)
    print(f"compact table {path}: median {statistics.median(times):.3f} s over {repeats} loads")


if __name__ == "__main__":
    main()

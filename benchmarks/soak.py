"""Soak: a long search, a checkpoint after every generation, memory and checkpoint size watched.

Run: `python benchmarks/soak.py --minutes 240` (hours, the real soak; `--minutes 10`, a look).

It probes a small sample once (cached), then runs a GP search for as long as asked (population
`--pop`, checkpoint every generation, as `gm-lab evolve --checkpoint` does) and prints, every
`--every` minutes and at the end: elapsed time, generation, resident memory of this process, and
the checkpoint's size. A leak shows as a resident memory that keeps climbing once the population
has settled; a checkpoint that grows without bound shows in the last column (the event history
grows by design: about one kilobyte per generation). The first line printed is the run's
provenance (benchmarks/_provenance.py).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import psutil
from _provenance import header

from gm_lab.evolution import Search, SearchConfig
from gm_lab.evolution.checkpoint import checkpoint_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=240.0, help="how long to run")
    parser.add_argument("--every", type=float, default=1.0, help="minutes between two lines")
    parser.add_argument("--pop", type=int, default=100, help="population size")
    parser.add_argument("--n", type=int, default=100, help="search sample (random)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="gm-lab-soak-"))
    config = SearchConfig(
        sample="random",
        n_search=args.n,
        n_heldout=args.n,
        batch_size=8,
        pop=args.pop,
        gens=10**9,  # stopped by the clock, not the budget
        checkpoint_dir=str(folder),
    )
    seeds = {"sample": config.seed, "gp": config.run_seed, "probe": config.probe_seed}
    final_test = "included" if config.use_final_test else "excluded"
    print(header(__file__, config.space, config.datasets, seeds, final_test=final_test))
    search = Search(config, progress=True)
    search.prepare()
    me = psutil.Process()
    print(f"soak: pop {args.pop}, random {args.n} + {args.n} architectures, checkpoint {folder}")
    print(f"{'minutes':>8} {'generation':>10} {'RSS MB':>8} {'checkpoint KB':>14}")
    began = time.monotonic()
    next_line = 0.0
    search.start()
    try:
        while (elapsed := (time.monotonic() - began) / 60) < args.minutes:
            if elapsed >= next_line:
                size = checkpoint_path(folder).stat().st_size if search.generation >= 0 else 0
                rss = me.memory_info().rss / 2**20
                print(f"{elapsed:8.1f} {search.generation:10d} {rss:8.0f} {size / 1024:14.0f}")
                next_line += args.every
            time.sleep(1.0)
    finally:
        search.stop(wait=True, timeout=120)
    size = checkpoint_path(folder).stat().st_size
    print(
        f"end: {search.generation} generations in {args.minutes:g} min; RSS "
        f"{me.memory_info().rss / 2**20:.0f} MB; checkpoint {size / 1024:.0f} KB"
    )


if __name__ == "__main__":
    main()

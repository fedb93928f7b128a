"""`gm-lab data ...`: where the data comes from, import an official NATS-Bench download, and pack
the embedded default."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gm_lab.benchmark import DATASETS, SPACES, Benchmark, normalise_dataset
from gm_lab.benchmark.spaces import DISPLAY_NAMES
from gm_lab.cli.checks import writable_file, writable_folder


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser(
        "data", help="see where the data comes from; import, download or pack it"
    )
    sub = group.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")

    info = sub.add_parser(
        "info",
        help="which source each part of the data comes from; summarise a benchmark",
        description=(
            "Show, per part (benchmark tables, images per dataset), which source is in use -- "
            "$GM_LAB_DATA, then the per-user data folder, then the embedded default -- and what "
            "`gm-lab data download` would add; then summarise one space's ground truth for one "
            "dataset (number of archs, accuracy range, best architecture)."
        ),
    )
    info.add_argument("--space", choices=sorted(SPACES), default="tss", help="search space")
    info.add_argument(
        "--dataset", type=normalise_dataset, default="cifar10", help=f"one of {list(DATASETS)}"
    )
    info.add_argument("--json", action="store_true", help="print one JSON object instead")
    info.set_defaults(run=run_info)

    imp = sub.add_parser(
        "import",
        help="convert an official NATS-Bench folder into the compact table (once)",
        description=(
            "Read an official NATS-*-simple folder through the nats_bench API (final epoch, "
            "mean over seeds) and write the compact table that loads in under a second. "
            "By default it goes to $GM_LAB_CACHE/nats_bench/<space>.csv, where gm-lab looks."
        ),
    )
    imp.add_argument("path", type=Path, help="e.g. ~/.torch/NATS-tss-v1_0-3ffb9-simple")
    imp.add_argument(
        "--space", choices=sorted(SPACES), help="search space (default: from the folder name)"
    )
    imp.add_argument("--out", type=Path, help="where to write the table (default: the cache)")
    imp.set_defaults(run=run_import)

    download = sub.add_parser(
        "download",
        help="fetch a part of the data (tss, sss, cifar10, cifar100) into your data folder",
        description=(
            "Download, check, unpack and install one part of the data: NATS-Bench TSS or SSS "
            "(official archives, imported once into the compact table) or CIFAR-10/100 images. "
            "An interrupted transfer resumes when run again; nothing is installed until the "
            "whole archive is in and reads correctly, and a failure leaves the previous copy "
            "untouched. Locations: gm_lab/data/locations.py; a mirror: --url or GM_LAB_URL_<NAME>."
        ),
    )
    download.add_argument("name", metavar="NAME", help="tss, sss, cifar10 or cifar100")
    download.add_argument("--url", help="download from this address instead (a mirror)")
    download.add_argument(
        "--hash", metavar="ALGO:HEX", help="expected md5:<hex> or sha256:<hex> of the archive"
    )
    download.add_argument(
        "--to", type=Path, help="data folder to install into (default: the per-user data folder)"
    )
    download.set_defaults(run=run_download)

    pack = sub.add_parser(
        "pack",
        help="rebuild the embedded default data from a data folder (maintainers)",
        description=(
            "Write the compressed TSS table and the CIFAR-10 minibatch pack that ship inside "
            "gm_lab, deterministically, from SRC laid out like shared/data "
            "(nats_bench/tss.csv, images/cifar-10-batches-py/). See gm_lab/embedded/PROVENANCE.md."
        ),
    )
    pack.add_argument("source", type=Path, metavar="SRC", help="data folder to pack from")
    pack.add_argument(
        "--out", type=Path, help="output folder (default: the package's gm_lab/embedded)"
    )
    pack.set_defaults(run=run_pack)


def run_info(args: argparse.Namespace) -> int:
    from gm_lab.data.info import data_sources, lookup_order, sources_json

    if args.json:
        from gm_lab.provenance import run_provenance

        bench = Benchmark.load(args.space, progress=False)
        argv = getattr(args, "argv", None)
        provenance = run_provenance(argv, args.space, [args.dataset], {}, bench, probe=False)
        summary = {**bench.summary(args.dataset), "sources": sources_json()}
        print(json.dumps({**summary, "provenance": provenance}))
        return 0
    order = " -> ".join(f"{p['place']} ({p['path']})" for p in lookup_order())
    print(f"Data sources, looked up in this order: {order}")
    for part in data_sources():
        print(f"  {part.part:<22} {part.origin or 'missing':<21} {part.detail}")
        if part.standin:
            print(f"  {'':<22} stand-in images: {DISPLAY_NAMES.get(part.standin, part.standin)}")
        if part.would_add:
            how = f"`gm-lab data download {part.download}` adds " if part.download else ""
            print(f"  {'':<22} {how}{part.would_add}")
    print()
    bench = Benchmark.load(args.space, progress=True)
    summary = bench.summary(args.dataset)
    best = summary["best"]
    print(f"{bench.space.display_name} / {summary['dataset']}")
    print(f"  source         {summary['source']}")
    if summary["hp"] is not None:
        print(f"  schedule       hp={summary['hp']} epochs, test accuracy averaged over seeds")
    print(
        f"  architectures  {summary['n_archs']:,} "
        f"({summary['n_with_ground_truth']:,} with ground truth)"
    )
    print(
        f"  test accuracy  {summary['test_acc_min']:.2f} .. {summary['test_acc_max']:.2f} % "
        f"(mean {summary['test_acc_mean']:.2f})"
    )
    print(f"  best           #{best['index']}  {best['test_acc']:.2f} %  {best['arch']}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from gm_lab.data.download import download
    from gm_lab.paths import data_roots

    done = download(args.name, to=args.to, url=args.url, checksum=args.hash)
    print(f"installed {done.location.what}: {done.detail}")
    print(f"  {done.folder}")
    if done.table is not None:
        print(f"  {done.table} (the compact table gm-lab reads)")
    root = done.folder.parents[1]
    if root.resolve() in [r.resolve() for r in data_roots()]:
        print("gm-lab now uses it (`gm-lab data info` shows each part's source)")
    else:
        print(f"set GM_LAB_DATA={root} for gm-lab to use it")
    return 0


def run_pack(args: argparse.Namespace) -> int:
    from gm_lab.data.pack import pack

    if args.out is not None:
        writable_folder(args.out, "--out")
    report = pack(args.source, args.out)
    print(
        f"packed {report.n_rows:,} TSS architectures -> {report.table} "
        f"({report.table_bytes / 1e6:.2f} MB)\n"
        f"packed {report.n_images} CIFAR-10 test images -> {report.images} "
        f"({report.images_bytes / 1e6:.2f} MB)"
    )
    return 0


def _space_from_folder(path: Path) -> str:
    """The space whose official download `path` is, from the folder's name."""
    name = path.resolve().name
    official = {s.name: s.official_name for s in SPACES.specs() if s.official_name}
    # NATS-tss-v1_0-3ffb9 -> any folder named NATS-tss...
    found = next((space for space, o in official.items() if o.split("-v")[0] in name), None)
    if found is None:
        choices = "|".join(official)
        raise SystemExit(
            f"gm-lab: error: cannot tell the space from {path.name!r}; pass --space {choices}"
        )
    return found


def run_import(args: argparse.Namespace) -> int:
    if args.out is not None:
        writable_file(args.out, "--out")
    space = args.space or _space_from_folder(args.path)
    bench = Benchmark.import_official(args.path, space, out=args.out)
    n_known = len(bench.with_ground_truth("cifar10"))
    print(
        f"imported {bench.n_archs:,} {space} architectures ({n_known:,} with results) "
        f"-> {bench.source if args.out is None else args.out}"
    )
    return 0

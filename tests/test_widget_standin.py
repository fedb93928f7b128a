"""Stand-in images are never silent in the widgets: on the embedded default, which holds no
CIFAR-100 images, CIFAR-10 images stand in for a CIFAR-100 search and the dashboard and the Lab's
explorer say so; a CIFAR-10 search uses its own images and shows no note at all."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from gm_lab.benchmark import Benchmark
from gm_lab.evolution import Search, SearchConfig
from gm_lab.inputs import StandInImagesWarning
from gm_lab.widgets import Lab

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bench(tss_table: Path) -> Benchmark:
    return Benchmark.from_table(tss_table, "tss")


def prepared_search(dataset: str, cache: Path, bench: Benchmark) -> Search:
    """A tiny search on `dataset`, probed at batch 32."""
    config = SearchConfig(
        datasets=dataset,
        sample="random",
        n_search=6,
        n_heldout=0,
        batch_size=32,
        pop=6,
        gens=1,
        workers=0,
        cache_dir=str(cache),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StandInImagesWarning)
        search = Search(config, benchmark=bench)
        search.prepare()
    return search


def test_cifar100_search_says_cifar10_images_stood_in(tmp_path: Path, bench: Benchmark) -> None:
    search = prepared_search("cifar100", tmp_path / "probe", bench)
    (split,) = search.data.splits
    assert split.provenance["source"].startswith("cifar10-test")  # CIFAR-10 test images
    assert split.provenance["source"].endswith("-as-cifar100")
    assert split.provenance["is_standin"] is True
    lab = Lab(search, interval=0.05)
    dashboard = lab.dashboard
    assert dashboard.inputs.layout.display is None  # shown
    assert ">CIFAR-100: stand-in images: CIFAR-10</span>" in dashboard.inputs.value
    explorer = lab.explore()
    for scores in (explorer.scores, explorer.baseline_scores):
        assert ">stand-in images: CIFAR-10</span>" in scores.value
        assert "class='gm-standin'" in scores.value
    lab.close()


def test_cifar10_search_shows_no_note(tmp_path: Path, bench: Benchmark) -> None:
    search = prepared_search("cifar10", tmp_path / "probe", bench)
    (split,) = search.data.splits
    assert split.provenance["source"].startswith("cifar10-test")  # its own test images
    assert split.provenance["is_standin"] is False
    lab = Lab(search, interval=0.05)
    assert lab.dashboard.inputs.value == ""
    assert lab.dashboard.inputs.layout.display == "none"  # no empty row
    explorer = lab.explore()
    assert explorer.scores.value.startswith("<b>τ = ")
    for scores in (explorer.scores, explorer.baseline_scores):
        assert "stand-in" not in scores.value
    lab.close()

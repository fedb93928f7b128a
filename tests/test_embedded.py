"""The embedded default data: built deterministically, equal to its source, found last.

The packed files in gm_lab/embedded/ are compared with the real source folder (GM_LAB_DATA), so
these tests hold whatever the data snapshot: they prove the pack is the source, not what it holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gm_lab.benchmark import Benchmark
from gm_lab.benchmark.spaces import space_info
from gm_lab.benchmark.table import read_table
from gm_lab.data.pack import IMAGES_NAME, PER_CLASS, TABLE_NAME, pack
from gm_lab.errors import CorruptDataError
from gm_lab.inputs.images import read_image_folder
from gm_lab.inputs.minibatch import load_minibatch
from gm_lab.paths import embedded_root

SHIPPED = embedded_root()


@pytest.fixture(scope="module")
def packed(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("packed")
    pack(data_root, out)
    return out


def test_packed_table_equals_source_on_every_row_and_column(data_root: Path) -> None:
    source = pd.read_csv(data_root / "nats_bench" / "tss.csv")
    shipped = read_table(SHIPPED / TABLE_NAME, space_info("tss")).reset_index(drop=True)
    assert list(shipped.columns) == list(source.columns)
    assert shipped.shape == source.shape == (15_625, len(source.columns))
    pd.testing.assert_frame_equal(shipped, source, check_dtype=False, check_exact=True)


def test_pack_is_deterministic_and_shipped_files_are_its_output(packed: Path, tmp_path) -> None:
    again = tmp_path / "again"
    pack(Path(os.environ["GM_LAB_DATA"]), again)
    for name in (TABLE_NAME, IMAGES_NAME, "manifest.json", "PROVENANCE.md"):
        assert (packed / name).read_bytes() == (again / name).read_bytes(), name
        assert (packed / name).read_bytes() == (SHIPPED / name).read_bytes(), (
            f"gm_lab/embedded/{name} is stale: rebuild it with `gm-lab data pack SRC`"
        )


def test_sizes_within_budget_and_manifest_hashes() -> None:
    assert (SHIPPED / TABLE_NAME).stat().st_size <= 2.5e6
    assert (SHIPPED / IMAGES_NAME).stat().st_size <= 1.0e6
    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    assert manifest["table"]["rows"] == 15_625
    assert manifest["images"]["count"] >= 256
    for part in ("table", "images"):
        data = (SHIPPED / manifest[part]["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == manifest[part]["sha256"]


def test_image_pack_holds_real_test_images_of_every_class(data_root: Path) -> None:
    with np.load(SHIPPED / IMAGES_NAME, allow_pickle=False) as shipped:
        images, labels = shipped["images"], shipped["labels"]
    assert images.dtype == np.uint8 and images.shape[1:] == (3, 32, 32)
    assert len(images) >= 256
    assert np.bincount(labels, minlength=10).tolist() == [PER_CLASS] * 10
    source = read_image_folder("cifar10", data_root / "images" / "cifar-10-batches-py")
    assert source is not None
    for label in range(10):  # the first PER_CLASS of each class, in file order, pixel for pixel
        mine = images[labels == label]
        theirs = source.images[source.labels == label][:PER_CLASS]
        np.testing.assert_array_equal(mine, theirs)


def test_embedded_default_is_used_when_no_data_folder_has_the_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GM_LAB_DATA", str(tmp_path / "empty"))
    bench = Benchmark.load("tss", progress=False)
    assert Path(bench.source) == SHIPPED / TABLE_NAME
    assert bench.best("cifar10").test_acc == pytest.approx(
        np.nanmax(bench.accuracy("cifar10")), abs=0
    )
    own = load_minibatch("cifar10", batch_size=64, seed=3)
    assert not own.is_standin and own.source == "cifar10-test-embedded"
    with pytest.warns(UserWarning, match="stand-in"):
        other = load_minibatch("cifar100", batch_size=64, seed=3)
    assert other.is_standin and other.source == "cifar10-test-embedded-as-cifar100"


def test_user_data_wins_over_embedded_and_gm_lab_data_over_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tss_table: Path
) -> None:
    user, mine = tmp_path / "xdg" / "gm_lab" / "nats_bench", tmp_path / "mine" / "nats_bench"
    user.mkdir(parents=True)
    mine.mkdir(parents=True)
    table = pd.read_csv(tss_table)
    original = float(table.loc[0, "cifar10_test"])
    table.to_csv(mine / "tss.csv", index=False)
    table.loc[0, "cifar10_test"] = 99.5  # a recognisable figure: which table was read?
    table.to_csv(user / "tss.csv", index=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("GM_LAB_DATA", raising=False)
    assert Benchmark.load("tss", progress=False).accuracy("cifar10")[0] == 99.5
    monkeypatch.setenv("GM_LAB_DATA", str(mine.parent))
    assert Benchmark.load("tss", progress=False).accuracy("cifar10")[0] == original


def test_cut_short_compressed_table_is_refused(tmp_path: Path) -> None:
    data = (SHIPPED / TABLE_NAME).read_bytes()
    cut = tmp_path / "tss.csv.xz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptDataError, match="cannot decompress"):
        read_table(cut, space_info("tss"))


def _clean_env(home: Path) -> dict[str, str]:
    """A user's machine: no GM_LAB_DATA, an empty HOME, no XDG overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GM_LAB_", "XDG_"))}
    return {**env, "HOME": str(home)}


def test_data_info_reports_embedded_sources_on_a_bare_machine(tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    run = [sys.executable, "-m", "gm_lab.cli", "data", "info"]
    out = subprocess.run([*run, "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    parts = {p["part"]: p for p in info["sources"]["parts"]}
    assert parts["tss table"]["origin"] == "embedded default"
    assert parts["cifar10 images"]["origin"] == "embedded default"
    assert parts["sss table"]["origin"] is None and parts["sss table"]["download"] == "sss"
    assert parts["cifar100 images"]["standin"] == "cifar10"
    assert parts["ImageNet16-120 images"]["standin"] == "cifar10"
    places = [p["place"] for p in info["sources"]["lookup_order"]]
    assert places == ["per-user data folder", "embedded default"]
    assert info["n_archs"] == 15_625 and info["source"].endswith(TABLE_NAME)

    text = subprocess.run(run, capture_output=True, text=True, env=env, timeout=120)
    assert text.returncode == 0, text.stderr
    assert text.stdout.count("stand-in images: CIFAR-10") == 2
    assert "gm-lab data download sss" in text.stdout


def test_data_pack_command(tmp_path: Path, data_root: Path) -> None:
    command = [sys.executable, "-m", "gm_lab.cli", "data", "pack"]
    out = subprocess.run(
        [*command, str(data_root), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "packed 15,625 TSS architectures" in out.stdout
    assert (tmp_path / TABLE_NAME).read_bytes() == (SHIPPED / TABLE_NAME).read_bytes()
    missing = subprocess.run(
        [*command, str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "not found" in missing.stderr


def test_lookup_order_names_each_place_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from gm_lab.data.info import lookup_order

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setenv("GM_LAB_DATA", str(tmp_path / "gm_lab"))  # the per-user folder itself
    assert [p["place"] for p in lookup_order()] == ["$GM_LAB_DATA", "embedded default"]
    monkeypatch.setenv("GM_LAB_DATA", str(tmp_path / "mine"))
    places = [p["place"] for p in lookup_order()]
    assert places == ["$GM_LAB_DATA", "per-user data folder", "embedded default"]


def test_gm_lab_data_wins_over_the_user_folder_whatever_form_each_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, official_sample: Path
) -> None:
    """$GM_LAB_DATA holds an official folder, the per-user folder a compact table: the first
    place in the lookup order wins, not the faster form."""
    from gm_lab.benchmark.benchmark import locate

    sss = "NATS-sss-v1_0-50262-simple"
    mine = tmp_path / "mine"
    (mine / "nats_bench").mkdir(parents=True)
    (mine / "nats_bench" / sss).symlink_to(official_sample / sss)
    user = tmp_path / "xdg" / "gm_lab" / "nats_bench"
    user.mkdir(parents=True)
    Benchmark.from_official(official_sample / sss, "sss", progress=False).save(user / "sss.csv")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("GM_LAB_DATA", str(mine))
    found = locate(space_info("sss"))
    assert (found.kind, found.origin) == ("official", "$GM_LAB_DATA")
    monkeypatch.delenv("GM_LAB_DATA")
    found = locate(space_info("sss"))
    assert (found.kind, found.origin) == ("table", "per-user data folder")

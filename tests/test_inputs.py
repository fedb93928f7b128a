"""The initialisation minibatch: real CIFAR images, stand-ins, noise, and honest errors."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from gm_lab.errors import CorruptDataError, DataMissingError
from gm_lab.inputs import (
    MEAN_STD_255,
    StandInImagesWarning,
    gaussian_minibatch,
    load_minibatch,
    reset_standin_warnings,
)
from gm_lab.inputs.images import clear_cache


@pytest.fixture(autouse=True)
def _fresh_registries():
    """Each test starts with no stand-in announced yet and no decoded files cached."""
    reset_standin_warnings()
    clear_cache()
    yield
    reset_standin_warnings()
    clear_cache()


def _standin_warnings(record: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    return [w for w in record if issubclass(w.category, StandInImagesWarning)]


@pytest.mark.data("the shared CIFAR-10 test images (python format)")
def test_cifar10_real_batch(data_root: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", StandInImagesWarning)
        batch = load_minibatch("cifar10", batch_size=64, seed=0)
    assert batch.images.shape == (64, 3, 32, 32)
    assert batch.images.dtype == torch.float32
    assert batch.labels.shape == (64,)
    assert batch.labels.dtype == torch.int64
    assert int(batch.labels.min()) >= 0 and int(batch.labels.max()) <= 9
    channel_mean = batch.images.mean(dim=(0, 2, 3))
    channel_std = batch.images.std(dim=(0, 2, 3))
    assert channel_mean.abs().max() < 0.5
    assert ((channel_std > 0.6) & (channel_std < 1.5)).all()
    assert not batch.is_standin
    assert batch.source == "cifar10-test"
    assert str(data_root / "images" / "cifar-10-batches-py" / "test_batch") in batch.note


def test_cifar10_seeded() -> None:
    a = load_minibatch("cifar10", batch_size=32, seed=3)
    b = load_minibatch("cifar10", batch_size=32, seed=3)
    c = load_minibatch("cifar10", batch_size=32, seed=4)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)


@pytest.mark.data("the shared CIFAR-100 test images")
def test_cifar100_standin_warns_once(data_root: Path) -> None:
    from gm_lab.inputs.images import read_image_folder

    held = read_image_folder("cifar100", data_root / "images" / "cifar-100-python")
    assert held is not None
    size = len(held.labels) + 1  # one more than the folder holds: CIFAR-10 stands in
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        first = load_minibatch("cifar100", batch_size=size, seed=0)
        second = load_minibatch("cifar100", batch_size=size, seed=1)
    found = _standin_warnings(record)
    assert len(found) == 1
    assert "cifar10-test-as-cifar100" in str(found[0].message)
    for batch in (first, second):
        assert batch.is_standin
        assert batch.source == "cifar10-test-as-cifar100"
        assert batch.images.shape == (size, 3, 32, 32)
        assert int(batch.labels.max()) < 100
    assert f"only {len(held.labels)}" in first.note
    assert str(data_root / "images" / "cifar-100-python") in first.note
    prov = json.loads(json.dumps(second.provenance()))
    assert prov == {
        "dataset": "cifar100",
        "source": "cifar10-test-as-cifar100",
        "is_standin": True,
        "note": second.note,
        "batch_size": size,
        "seed": 1,
    }


@pytest.mark.data("the shared CIFAR-100 test images")
def test_cifar100_real_when_enough(data_root: Path) -> None:
    from gm_lab.inputs.images import read_image_folder

    held = read_image_folder("cifar100", data_root / "images" / "cifar-100-python")
    assert held is not None
    batch = load_minibatch("cifar100", batch_size=len(held.labels), seed=0)  # all it holds
    assert not batch.is_standin
    assert batch.source == "cifar100-test"


def test_imagenet16_standin_is_16x16() -> None:
    with pytest.warns(StandInImagesWarning, match="ImageNet16"):
        batch = load_minibatch("ImageNet16-120", batch_size=64, seed=0)
    assert batch.images.shape == (64, 3, 16, 16)
    assert batch.source.startswith("cifar10-test")  # real CIFAR-10 images, whichever pack
    assert batch.source.endswith("-as-ImageNet16-120")
    assert batch.is_standin
    assert batch.images.mean(dim=(0, 2, 3)).abs().max() < 0.5


def _write_imagenet16(
    folder: Path, name: str, data: np.ndarray, labels: list[int], bytes_keys: bool = False
) -> None:
    """One pickle in the layout xautodl's ImageNet16 reader expects."""
    folder.mkdir(parents=True, exist_ok=True)
    entry: dict = {"data": data, "labels": labels}
    if bytes_keys:
        entry = {key.encode(): value for key, value in entry.items()}
    with open(folder / name, "wb") as fh:
        pickle.dump(entry, fh)


@pytest.mark.parametrize(
    ("layout", "split_file", "bytes_keys", "source"),
    [
        ("images/ImageNet16", "val_data", False, "ImageNet16-120-val"),
        ("ImageNet16", "val_data", True, "ImageNet16-120-val"),
        ("images/ImageNet16", "train_data_batch_1", False, "ImageNet16-120-train"),
    ],
)
def test_synthetic_imagenet16(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    layout: str,
    split_file: str,
    bytes_keys: bool,
    source: str,
) -> None:
    rng = np.random.default_rng(7)
    # Twelve kept images with 1-based labels 1..12 (label k+1 on image k) plus images whose
    # labels fall outside 1..120 and must be dropped.
    labels = [1, 500, 2, 3, 121, 4, 5, 6, 1000, 7, 8, 9, 10, 11, 12, 0]
    data = rng.integers(0, 256, size=(len(labels), 768), dtype=np.uint8)
    _write_imagenet16(tmp_path / layout, split_file, data, labels, bytes_keys)
    monkeypatch.setenv("GM_LAB_DATA", str(tmp_path))

    with warnings.catch_warnings():
        warnings.simplefilter("error", StandInImagesWarning)
        batch = load_minibatch("ImageNet16-120", batch_size=8, seed=0)
    assert batch.images.shape == (8, 3, 16, 16)
    assert not batch.is_standin
    assert batch.source == source
    assert int(batch.labels.min()) >= 0 and int(batch.labels.max()) <= 11
    assert len(set(batch.labels.tolist())) == 8  # sampled without replacement

    mean, std = MEAN_STD_255["ImageNet16-120"]
    by_label = {lab - 1: row for lab, row in zip(labels, data, strict=True) if 1 <= lab <= 120}
    for i in range(8):
        row = by_label[int(batch.labels[i])].reshape(3, 16, 16)
        for ch, (y, x) in enumerate([(0, 0), (5, 9), (15, 15)]):
            expected = (row[ch, y, x] / 255 - mean[ch] / 255) / (std[ch] / 255)
            assert float(batch.images[i, ch, y, x]) == pytest.approx(expected, abs=1e-5)


def test_synthetic_imagenet16_too_few_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_embedded: Path
) -> None:
    data = np.zeros((3, 768), dtype=np.uint8)
    _write_imagenet16(tmp_path / "images" / "ImageNet16", "val_data", data, [1, 2, 300])
    monkeypatch.setenv("GM_LAB_DATA", str(tmp_path))
    with pytest.raises(DataMissingError, match="only 2 ImageNet16-120 val images"):
        load_minibatch("ImageNet16-120", batch_size=4, fallback=False)
    with pytest.warns(StandInImagesWarning, match="gaussian-noise"):
        batch = load_minibatch("ImageNet16-120", batch_size=4)
    assert batch.source == "gaussian-noise" and batch.is_standin


def test_missing_everything_gives_gaussian(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_embedded: Path
) -> None:
    monkeypatch.setenv("GM_LAB_DATA", str(tmp_path))
    with pytest.warns(StandInImagesWarning, match="gaussian-noise") as record:
        batch = load_minibatch("cifar10", batch_size=16, seed=5)
    assert len(_standin_warnings(list(record))) == 1
    assert batch.source == "gaussian-noise"
    assert batch.is_standin
    assert batch.images.shape == (16, 3, 32, 32)
    assert int(batch.labels.max()) < 10
    assert str(tmp_path / "images" / "cifar-10-batches-py") in batch.note
    noise = gaussian_minibatch("cifar10", batch_size=16, seed=5)
    assert torch.equal(batch.images, noise.images)


def test_missing_without_fallback_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_embedded: Path
) -> None:
    monkeypatch.setenv("GM_LAB_DATA", str(tmp_path))
    with pytest.raises(DataMissingError) as info:
        load_minibatch("cifar10", batch_size=16, fallback=False)
    message = str(info.value)
    assert str(tmp_path / "images" / "cifar-10-batches-py") in message
    assert "GM_LAB_DATA" in message and "cifar-10-python" in message


def test_truncated_pickle_is_corrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = np.random.default_rng(0).integers(0, 256, size=(100, 3072), dtype=np.uint8)
    real = pickle.dumps({b"data": data, b"labels": [i % 10 for i in range(100)]})  # CIFAR layout
    folder = tmp_path / "images" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    (folder / "test_batch").write_bytes(real[: len(real) // 2])
    monkeypatch.setenv("GM_LAB_DATA", str(tmp_path))
    with pytest.raises(CorruptDataError) as info:
        load_minibatch("cifar10", batch_size=8)
    assert str(folder / "test_batch") in str(info.value)


def test_gaussian_minibatch_on_purpose() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", StandInImagesWarning)
        a = gaussian_minibatch("ImageNet16-120", batch_size=10, seed=2)
    b = gaussian_minibatch("ImageNet16-120", batch_size=10, seed=2)
    assert a.images.shape == (10, 3, 16, 16) and a.images.dtype == torch.float32
    assert a.labels.dtype == torch.int64 and int(a.labels.max()) < 120
    assert a.source == "gaussian-noise" and not a.is_standin
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert a.provenance()["is_standin"] is False


def test_unknown_dataset() -> None:
    with pytest.raises(ValueError, match="cifar10"):
        load_minibatch("mnist")

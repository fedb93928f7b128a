"""Shared fixtures: the real data root (GM_LAB_DATA, default ../shared/data) and a private cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real NATS-Bench data folder; tests that need it fail loudly if it is absent."""
    root = Path(os.environ.get("GM_LAB_DATA", DEFAULT_DATA)).resolve()
    assert (root / "nats_bench" / "tss.csv").is_file(), f"test data not found under {root}"
    return root


@pytest.fixture(autouse=True)
def _gm_lab_env(data_root: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch):
    """Every test reads the real data and writes caches to a temporary folder."""
    monkeypatch.setenv("GM_LAB_DATA", str(data_root))
    monkeypatch.setenv("GM_LAB_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def official_sample(data_root: Path) -> Path:
    return data_root / "nats_bench" / "official_sample"

"""Shared fixtures: the real data root (GM_LAB_DATA, default ../shared/data) and a private cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
# Module- and session-scoped fixtures run before the per-test environment below: give them the
# same data folder whether or not the shell exported GM_LAB_DATA.
os.environ.setdefault("GM_LAB_DATA", str(DEFAULT_DATA.resolve()))


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real NATS-Bench data folder; tests that need it fail loudly if it is absent."""
    root = Path(os.environ.get("GM_LAB_DATA", DEFAULT_DATA)).resolve()
    assert (root / "nats_bench" / "tss.csv").is_file(), f"test data not found under {root}"
    return root


@pytest.fixture(autouse=True)
def _gm_lab_env(data_root: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch):
    """Every test reads the real data and writes caches to a temporary folder; the per-user data
    folder is an empty temporary one, so a developer's own downloads never change a result."""
    monkeypatch.setenv("GM_LAB_DATA", str(data_root))
    monkeypatch.setenv("GM_LAB_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("user-data")))


@pytest.fixture
def no_embedded(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> Path:
    """Hide the embedded default (an empty folder stands for it), to test what happens when the
    user's data folders are the only source (this process only)."""
    empty = tmp_path_factory.mktemp("no-embedded")
    monkeypatch.setattr("gm_lab.paths.embedded_root", lambda: empty)
    return empty


@pytest.fixture(scope="session")
def official_sample(data_root: Path) -> Path:
    return data_root / "nats_bench" / "official_sample"

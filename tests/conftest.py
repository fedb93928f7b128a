"""Shared fixtures and the suite's two tiers.

- **No-data tier** (most tests): runs with no data folder at all, on the embedded default that
  ships inside the package (gm_lab/embedded: the NATS-Bench TSS table of all 15,625
  architectures, 260 real CIFAR-10 test images), exactly as on a user's bare machine. These
  tests never see `GM_LAB_DATA` nor the developer's own data and cache folders, whatever the
  shell exported, so they give the same result everywhere.
- **Data tier**: tests marked `@pytest.mark.data("what they need")`, and every test using the
  `data_root` or `official_sample` fixture, need the shared data folder (`../shared/data`: the
  official NATS-Bench sample archives, 1,000 CIFAR-10 and 20 CIFAR-100 test images, the plain
  TSS table). They run when `GM_LAB_DATA` names that folder (`.ci/run` sets it) and are
  skipped, saying what they need, when it is unset; a `GM_LAB_DATA` that lacks the data is an
  error, never a skip.

`python -m pytest -m "not data"` runs the no-data tier alone.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gm_lab.paths import embedded_root

REPO = Path(__file__).resolve().parents[1]
# The shared data folder, when the shell names one. Taken out of the process environment at
# once, so module- and session-scoped fixtures (which run before the per-test environment below)
# see no data folder either; data-tier tests get it back through `_gm_lab_env`.
SHARED_DATA = os.environ.pop("GM_LAB_DATA", "") or None
DATA_FIXTURES = {  # the most specific first: a test's skip reason names the first it uses
    "official_sample": "the official NATS-Bench sample archives",
    "data_root": "the shared data folder",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses a data fixture as a data test; skip data tests when there is
    no shared data folder, saying what each needs."""
    for item in items:
        needs = [what for name, what in DATA_FIXTURES.items() if name in item.fixturenames]
        if needs and item.get_closest_marker("data") is None:
            item.add_marker(pytest.mark.data(needs[0]))
        marker = item.get_closest_marker("data")
        if marker is None or SHARED_DATA:
            continue
        what = ", ".join(marker.args) or "the shared data folder"
        item.add_marker(
            pytest.mark.skip(reason=f"needs {what}: set GM_LAB_DATA (e.g. ../shared/data)")
        )


@pytest.fixture(scope="session", autouse=True)
def _hermetic_session(tmp_path_factory: pytest.TempPathFactory):
    """Session-wide (for module- and session-scoped fixtures too): no data folder, an empty
    per-user data folder, a private cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("GM_LAB_DATA", raising=False)
        patch.setenv("GM_LAB_CACHE", str(tmp_path_factory.mktemp("session-cache")))
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("session-user-data")))
        yield


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The shared data folder (`GM_LAB_DATA`); using it makes a test a data test."""
    assert SHARED_DATA, "data tests are skipped without GM_LAB_DATA"
    root = Path(SHARED_DATA).expanduser().resolve()
    assert (root / "nats_bench" / "tss.csv").is_file(), f"GM_LAB_DATA={root}: no shared data"
    return root


@pytest.fixture(scope="session")
def tss_table() -> Path:
    """A real NATS-Bench TSS table that is always there: the embedded default's."""
    return embedded_root() / "nats_bench" / "tss.csv.xz"


@pytest.fixture(autouse=True)
def _gm_lab_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, monkeypatch
):
    """Every test writes caches to a temporary folder and sees an empty temporary per-user data
    folder, so a developer's own downloads never change a result; only data tests see
    `GM_LAB_DATA`."""
    if request.node.get_closest_marker("data") is not None and SHARED_DATA:
        monkeypatch.setenv("GM_LAB_DATA", str(Path(SHARED_DATA).expanduser().resolve()))
    else:
        monkeypatch.delenv("GM_LAB_DATA", raising=False)
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

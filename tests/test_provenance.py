"""Stand-in images are named in words wherever results appear (CLI, JSON, widgets)."""

from __future__ import annotations

import pytest

from gm_lab.evolution.config import SearchConfig
from gm_lab.evolution.result import SearchResult
from gm_lab.provenance import standin_donor, standin_label


@pytest.mark.parametrize(
    ("provenance", "donor", "label"),
    [
        ({"source": "cifar10-test", "is_standin": False}, None, None),
        ({"source": "cifar10-test-embedded", "is_standin": False}, None, None),
        (
            {"source": "cifar10-test-embedded-as-cifar100", "is_standin": True},
            "cifar10",
            "stand-in images: CIFAR-10",
        ),
        (
            {"source": "ImageNet16-120-val-as-cifar10", "is_standin": True},
            "ImageNet16-120",
            "stand-in images: ImageNet16-120",
        ),
        (
            {"source": "gaussian-noise", "is_standin": True},
            "gaussian-noise",
            "stand-in images: Gaussian noise",
        ),
        (None, None, None),
    ],
)
def test_standin_phrases(provenance, donor, label) -> None:
    assert standin_donor(provenance) == donor
    assert standin_label(provenance) == label


def test_search_result_names_stand_ins_per_dataset_in_its_json() -> None:
    probe = {
        "cifar10": {"provenance": {"source": "cifar10-test", "is_standin": False}},
        "cifar100": {"provenance": {"source": "cifar10-test-as-cifar100", "is_standin": True}},
    }
    config = SearchConfig(datasets=("cifar10", "cifar100"))
    result = SearchResult(config, 0, [], [], probe=probe)
    assert result.standin_images == {"cifar100": "stand-in images: CIFAR-10"}
    assert result.to_dict()["standin_images"] == {"cifar100": "stand-in images: CIFAR-10"}

"""Inputs for networks at initialisation: real image minibatches, stand-ins, and noise.

`images` reads the standard CIFAR-10/100 and ImageNet16 pickle downloads; `minibatch` picks a
seeded, normalised batch and documents the fallback policy when images are missing.
"""

from gm_lab.inputs.images import FORMATS, ImageSet, read_images
from gm_lab.inputs.minibatch import (
    MEAN_STD_255,
    Minibatch,
    StandInImagesWarning,
    gaussian_minibatch,
    load_minibatch,
    normalise,
    reset_standin_warnings,
)

__all__ = [
    "FORMATS",
    "MEAN_STD_255",
    "ImageSet",
    "Minibatch",
    "StandInImagesWarning",
    "gaussian_minibatch",
    "load_minibatch",
    "normalise",
    "read_images",
    "reset_standin_warnings",
]

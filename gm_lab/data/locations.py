"""Where `gm-lab data download` fetches each part: the one place download locations live.

Each default location can be overridden for a mirror, per part, by `--url` or an environment
variable `GM_LAB_URL_<NAME>` (e.g. `GM_LAB_URL_TSS`). A published checksum belongs to the file
at the default location; an overridden location is checked only against a hash given with it
(`--hash md5:...`), since a mirror may serve another packaging of the same data.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import urlsplit

from gm_lab.errors import GmLabError

_CHECKSUM = re.compile(r"^(md5:[0-9a-f]{32}|sha256:[0-9a-f]{64})$", re.IGNORECASE)
_GDRIVE = "https://drive.usercontent.google.com/download?id={}&export=download&confirm=t"


class UnknownLocationError(GmLabError, ValueError):
    """No download exists for the name asked, or the address given cannot be fetched (message:
    what exists, how to get it by hand)."""


@dataclass(frozen=True)
class Location:
    """One downloadable part: where it is, how to check it, and where it goes once unpacked."""

    name: str
    what: str
    url: str
    kind: Literal["nats", "images"]
    top_folder: str  # the folder the archive holds
    install_to: str  # where that folder goes, relative to the data folder
    checksum: str | None = None  # "md5:<hex>" or "sha256:<hex>" of the archive, if published
    space: str | None = None  # NATS-Bench archives: the space whose table is imported
    dataset: str | None = None  # image archives: the dataset whose images they hold

    @property
    def env_var(self) -> str:
        return f"GM_LAB_URL_{self.name.upper()}"


LOCATIONS: dict[str, Location] = {
    "tss": Location(
        "tss",
        "NATS-Bench TSS (topology search space, 15,625 architectures), official archive",
        _GDRIVE.format("17_saCsj_krKjlCBLOJEpNtzPXArMCqxU"),  # NATS-Bench README, 2020.08.31 row
        "nats",
        "NATS-tss-v1_0-3ffb9-simple",
        "nats_bench/NATS-tss-v1_0-3ffb9-simple",
        space="tss",
    ),
    "sss": Location(
        "sss",
        "NATS-Bench SSS (size search space, 32,768 architectures), official archive",
        _GDRIVE.format("1scOMTUwcQhAMa_IMedp9lTzwmgqHLGgA"),  # NATS-Bench README, 2020.08.31 row
        "nats",
        "NATS-sss-v1_0-50262-simple",
        "nats_bench/NATS-sss-v1_0-50262-simple",
        space="sss",
    ),
    "cifar10": Location(
        "cifar10",
        "CIFAR-10, python version",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "images",
        "cifar-10-batches-py",
        "images/cifar-10-batches-py",
        checksum="md5:c58f30108f718f92721af3b95e74349a",  # as published on the CIFAR page
        dataset="cifar10",
    ),
    "cifar100": Location(
        "cifar100",
        "CIFAR-100, python version",
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "images",
        "cifar-100-python",
        "images/cifar-100-python",
        checksum="md5:eb9058c3a382ffc7106e4002c42a8d85",
        dataset="cifar100",
    ),
}

# name -> the dataset whose images have no public direct download (image-net.org asks for a login)
NO_PUBLIC_DOWNLOAD = {"imagenet16": "ImageNet16-120"}


def location(name: str, url: str | None = None, checksum: str | None = None) -> Location:
    """The location of `name`, with a mirror from `url` or `GM_LAB_URL_<NAME>` if given."""
    if name in NO_PUBLIC_DOWNLOAD:
        raise UnknownLocationError(_by_hand(NO_PUBLIC_DOWNLOAD[name]))
    try:
        found = LOCATIONS[name]
    except KeyError:
        raise UnknownLocationError(
            f"nothing to download under {name!r}; choose one of {', '.join(LOCATIONS)}"
        ) from None
    mirror = url or os.environ.get(found.env_var)
    if mirror:
        _check_address(mirror, "--url" if url else found.env_var)
        found = replace(found, url=mirror, checksum=None)
    if checksum is not None:
        if not _CHECKSUM.match(checksum):
            raise UnknownLocationError(
                f"--hash {checksum!r} must be md5:<32 hex digits> or sha256:<64 hex digits>"
            )
        found = replace(found, checksum=checksum.lower())
    return found


def _check_address(url: str, given_by: str) -> None:
    """Refuse anything but an http(s) address before a transfer starts (requests reads no other)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UnknownLocationError(
            f"{given_by} {url!r} is not an http(s) address; give e.g. https://host/file.tar.gz"
        )


def _by_hand(dataset: str) -> str:
    """Why `dataset` cannot be downloaded, and how to get it by hand: the image reader's own
    instructions (imported here, not at the top: it pulls in torch)."""
    from gm_lab.inputs.images import FORMATS

    return (
        f"{dataset} has no public direct download (image-net.org asks for a login): "
        f"{FORMATS[dataset].how_to_get}"
    )

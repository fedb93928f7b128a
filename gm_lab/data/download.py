"""`gm-lab data download NAME`: fetch a part of the data, check it, and install it atomically.

Steps, each of which leaves the data folder as it was when it fails:

1. **Fetch** with `requests` (urllib3 retries transient errors, a tqdm progress bar) into
   `<to>/.partial/<name>-<url hash>.part`. A run that finds a partial file asks the server for the
   rest (`Range: bytes=N-`) and appends when it answers 206. Pooch, the usual choice, cannot resume
   an interrupted download, and the NATS-Bench archives are large, hence this small fetcher.
2. **Check** the size against what the server announced and the checksum where one is known.
3. **Unpack** into a temporary folder inside `<to>` (same file system: the final move is a rename),
   refusing links and paths outside it (tarfile's "data" filter).
4. **Validate** what was unpacked: NATS-Bench archives are imported once, through the `nats_bench`
   API, into the compact table (`nats_bench/<space>.csv`) that gm_lab reads in well under a second;
   image folders must read as their dataset.
5. **Install**: previous copies are renamed aside, the new ones renamed in, the old ones deleted;
   if anything fails the old ones are put back.

The partial file is kept only when the transfer itself was interrupted (so the next run resumes);
a complete file that turns out bad is deleted, so the next run fetches it afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from tqdm.auto import tqdm
from urllib3.util.retry import Retry

from gm_lab.benchmark import Benchmark
from gm_lab.data.locations import Location, location
from gm_lab.errors import GmLabError
from gm_lab.inputs.images import read_image_folder
from gm_lab.paths import user_data_root

CHUNK = 1 << 16  # an interrupted read loses at most this much of what arrived
TIMEOUT = (15, 60)  # seconds to connect, and between two reads


class DownloadError(GmLabError):
    """A download, check, unpack or install step failed; the data folder is unchanged."""


@dataclass(frozen=True)
class Installed:
    """What a download put where (for the CLI to report)."""

    location: Location
    folder: Path  # the unpacked archive folder, in place
    table: Path | None  # NATS-Bench: the compact table imported from it
    detail: str


def download(
    name: str,
    to: Path | None = None,
    url: str | None = None,
    checksum: str | None = None,
    progress: bool = True,
) -> Installed:
    """Fetch, check, unpack, validate and install `name` into the data folder `to`."""
    where = location(name, url, checksum)
    to = Path(to) if to is not None else user_data_root()
    _writable(to)
    archive = fetch(where.url, to / ".partial" / f"{name}-{_short_hash(where.url)}.part", progress)
    try:
        if where.checksum:
            verify_checksum(archive, where.checksum)
        with _staging(to, name) as staging:
            folder = unpack(archive, staging, where.top_folder)
            table, detail = _validate(where, folder, staging, progress)
            moves = [(folder, to / where.install_to)]
            if table is not None and where.space is not None:
                moves.append((table, to / "nats_bench" / f"{where.space}.csv"))
            install(moves)
    except DownloadError:
        _drop_partial(archive)  # complete but bad: fetch it afresh next time
        raise
    _drop_partial(archive)
    table_path = to / "nats_bench" / f"{where.space}.csv" if where.space else None
    return Installed(where, to / where.install_to, table_path, detail)


# ---- 1. fetch ----------------------------------------------------------------------------------
def _session() -> requests.Session:
    """Retries connection errors and 5xx answers a few times, backing off."""
    retry = Retry(total=3, backoff_factor=0.5, status_forcelist=(500, 502, 503, 504))
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


def fetch(url: str, part: Path, progress: bool = True) -> Path:
    """Download `url` into `part`, resuming what an earlier run left there; return `part`."""
    part.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        with _session().get(url, headers=headers, stream=True, timeout=TIMEOUT) as answer:
            if answer.status_code == 416 and offset:  # nothing left to send: already complete
                return part
            if answer.status_code >= 400:
                if not offset:
                    _drop_partial(part)
                raise DownloadError(
                    f"{url} answered HTTP {answer.status_code} {answer.reason}: check the "
                    f"address (--url, or the GM_LAB_URL_* variable for a mirror)"
                )
            resumed = answer.status_code == 206
            total = _announced_size(answer, offset if resumed else 0)
            _stream(answer, part, resumed, offset if resumed else 0, total, progress)
    except requests.RequestException as exc:
        kept = part.stat().st_size if part.is_file() else 0
        if not kept:
            _drop_partial(part)
        resume = (
            f"; {kept:,} bytes kept in {part}, run the same command again to resume" if kept else ""
        )
        raise DownloadError(f"cannot download {url}: {_reason(exc)}{resume}") from None
    size = part.stat().st_size
    if total is not None and size != total:
        raise DownloadError(
            f"the transfer of {url} stopped at {size:,} of {total:,} bytes; the part is kept in "
            f"{part}: run the same command again to resume"
        )
    return part


def _announced_size(answer: requests.Response, offset: int) -> int | None:
    """The full size of the file, from Content-Range (resumed) or Content-Length."""
    content_range = answer.headers.get("Content-Range", "")
    if "/" in content_range and content_range.rsplit("/", 1)[1].isdigit():
        return int(content_range.rsplit("/", 1)[1])
    length = answer.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def _stream(
    answer: requests.Response,
    part: Path,
    resumed: bool,
    offset: int,
    total: int | None,
    progress: bool,
) -> None:
    """Write the body to `part` (appending when resumed), flushing as it goes."""
    with (
        part.open("ab" if resumed else "wb") as out,
        tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            desc=part.name.split("-")[0],
            disable=not progress,
        ) as bar,
    ):
        for chunk in answer.iter_content(CHUNK):
            out.write(chunk)
            bar.update(len(chunk))


def _reason(exc: requests.RequestException) -> str:
    """A short, human reason for a failed request (no traceback, no object reprs)."""
    if isinstance(exc, requests.ConnectionError) and not isinstance(
        exc, requests.exceptions.ChunkedEncodingError
    ):
        return "cannot connect (offline, or the host is down or unknown)"
    if isinstance(exc, requests.Timeout):
        return "the server stopped answering"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection was dropped mid-transfer"
    return type(exc).__name__


def _drop_partial(part: Path) -> None:
    """Delete a partial file, and its folder once empty: nothing is left behind for nothing."""
    part.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        part.parent.rmdir()


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:12]


# ---- 2. check ----------------------------------------------------------------------------------
def verify_checksum(path: Path, checksum: str) -> None:
    """DownloadError unless `path` has the checksum "md5:<hex>" or "sha256:<hex>"."""
    algorithm, _, expected = checksum.partition(":")
    if algorithm not in ("md5", "sha256") or not expected:
        raise DownloadError(f"checksum {checksum!r} must be md5:<hex> or sha256:<hex>")
    digest = hashlib.new(algorithm)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    if digest.hexdigest() != expected.lower():
        raise DownloadError(
            f"the downloaded file has {algorithm} {digest.hexdigest()}, expected {expected}: "
            f"damaged or not the expected file (deleted; run again to fetch it afresh)"
        )


# ---- 3. unpack ---------------------------------------------------------------------------------
def unpack(archive: Path, staging: Path, top_folder: str) -> Path:
    """Extract a tar (any compression) into `staging`; the path of its `top_folder`."""
    head = _head(archive)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        html = b"<html" in head.lower() or b"<!doctype" in head.lower()
        hint = " (the server sent a web page: a quota or login page?)" if html else ""
        reason = str(exc).splitlines()[0].rstrip(":") if str(exc) else type(exc).__name__
        if reason.startswith("file could not be opened"):
            reason = "neither tar nor compressed tar"
        raise DownloadError(
            f"{archive.name} is not a complete tar archive{hint}: {reason} "
            f"(deleted; run again to fetch it afresh)"
        ) from None
    folder = staging / top_folder
    if not folder.is_dir():
        found = ", ".join(sorted(p.name for p in staging.iterdir())) or "nothing"
        raise DownloadError(f"the archive holds {found}, not the folder {top_folder}")
    return folder


def _head(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(512)


@contextmanager
def _staging(to: Path, name: str) -> Iterator[Path]:
    """A temporary folder inside `to`, removed whatever happens."""
    folder = Path(tempfile.mkdtemp(prefix=f".{name}-unpack-", dir=to))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---- 4. validate -------------------------------------------------------------------------------
def _validate(
    where: Location, folder: Path, staging: Path, progress: bool
) -> tuple[Path | None, str]:
    """Read what was unpacked as gm_lab will; for NATS-Bench, write its compact table."""
    if where.kind == "nats":
        assert where.space is not None
        try:
            bench = Benchmark.from_official(folder, where.space, progress=progress)
        except GmLabError as exc:
            raise DownloadError(f"the unpacked {where.top_folder} cannot be read: {exc}") from None
        table = bench.save(staging / f"{where.space}.csv")
        known = len(bench.with_ground_truth("cifar10"))
        return table, f"{bench.n_archs:,} architectures, {known:,} with results"
    dataset = {"cifar-10-batches-py": "cifar10", "cifar-100-python": "cifar100"}[where.top_folder]
    try:
        images = read_image_folder(dataset, folder)
    except GmLabError as exc:
        raise DownloadError(f"the unpacked {where.top_folder} cannot be read: {exc}") from None
    if images is None:
        raise DownloadError(f"the unpacked {where.top_folder} holds no {dataset} images")
    return None, f"{len(images):,} {dataset} {images.split} images"


# ---- 5. install --------------------------------------------------------------------------------
def install(moves: list[tuple[Path, Path]]) -> None:
    """Rename each new path over its final place; all or nothing, old copies restored on error."""
    asides: list[tuple[Path, Path]] = []
    placed: list[Path] = []
    try:
        for new, final in moves:
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                aside = final.with_name(f".{final.name}.replaced")
                _remove(aside)
                final.rename(aside)
                asides.append((aside, final))
            new.rename(final)
            placed.append(final)
    except OSError as exc:
        for final in placed:
            _remove(final)
        for aside, final in asides:
            aside.rename(final)
        raise DownloadError(f"cannot install into {moves[0][1].parent}: {exc}") from None
    for aside, _ in asides:
        _remove(aside)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _writable(folder: Path) -> None:
    """DownloadError, before any transfer, if `folder` cannot hold the download."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise DownloadError(f"cannot write into {folder}: {exc.strerror or exc}") from None

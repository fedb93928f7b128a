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
import re
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
    recover(where, to)
    archive = fetch(where.url, to / ".partial" / f"{name}-{_short_hash(where.url)}.part", progress)
    try:
        installed = _check_and_install(where, archive, to, progress)
    except DownloadError as exc:
        _drop_partial(archive)  # complete but bad: fetch it afresh next time
        raise DownloadError(f"{where.url}: {exc}") from None
    _drop_partial(archive)
    return installed


def _check_and_install(where: Location, archive: Path, to: Path, progress: bool) -> Installed:
    """Steps 2 to 5 on a completely fetched `archive`; the data folder is unchanged on error."""
    if where.checksum:
        verify_checksum(archive, where.checksum)
    with _staging(to, where.name) as staging:
        folder = unpack(archive, staging, where.top_folder)
        table, detail = _validate(where, folder, staging, progress)
        moves = [(folder, to / where.install_to)]
        if table is not None and where.space is not None:
            moves.append((table, to / "nats_bench" / f"{where.space}.csv"))
        install(moves)
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
            _refuse_error_status(answer, url, part, offset)
            start = _resume_start(answer, url, part, offset)
            total = _announced_size(answer, start)
            try:
                _stream(answer, part, start, total, progress)
            except requests.RequestException as exc:
                raise _interrupted(url, part, _reason(exc)) from None
    except requests.RequestException as exc:
        raise _unreachable(url, part, _reason(exc)) from None
    _check_size(url, part, total)
    return part


def _check_size(url: str, part: Path, total: int | None) -> None:
    """DownloadError unless `part` holds exactly the announced size: short means the transfer
    ended early (keep it, resume), long means the pieces do not belong together (delete it)."""
    size = part.stat().st_size
    if total is None or size == total:
        return
    if size < total:
        raise _interrupted(url, part, f"stopped at {size:,} of {total:,} bytes")
    _drop_partial(part)
    raise DownloadError(
        f"{url} sent {size:,} bytes but announced {total:,}; the file was deleted: run the same "
        f"command again to fetch it afresh"
    )


def _refuse_error_status(answer: requests.Response, url: str, part: Path, offset: int) -> None:
    """DownloadError for an HTTP error answer; a partial file from an earlier run stays."""
    if answer.status_code < 400:
        return
    if not offset:
        _drop_partial(part)
    raise DownloadError(
        f"{url} answered HTTP {answer.status_code} {answer.reason}: check the address "
        f"(--url, or the GM_LAB_URL_* variable for a mirror)"
    )


def _resume_start(answer: requests.Response, url: str, part: Path, offset: int) -> int:
    """Where the body starts in the file: `offset` on a 206 that continues there, 0 on a 200
    (the server ignored Range: start again). A 206 from elsewhere would corrupt the file."""
    if answer.status_code != 206:
        return 0
    match = re.match(r"bytes (\d+)-", answer.headers.get("Content-Range", ""))
    if match is None or int(match.group(1)) != offset:
        _drop_partial(part)
        raise DownloadError(
            f"{url} resumed at a different place than asked (Content-Range "
            f"{answer.headers.get('Content-Range')!r}, asked for byte {offset:,}); the partial "
            f"file was deleted: run the same command again to start afresh"
        )
    return offset


def _unreachable(url: str, part: Path, reason: str) -> DownloadError:
    """The request itself failed (nothing, or nothing new, arrived)."""
    kept = part.stat().st_size if part.is_file() else 0
    if not kept:
        _drop_partial(part)
    then = f"{kept:,} bytes are kept in {part}, to resume" if kept else "nothing was written"
    return DownloadError(
        f"cannot download {url}: {reason}; check the network and the address, then run the same "
        f"command again ({then})"
    )


def _interrupted(url: str, part: Path, reason: str) -> DownloadError:
    """The transfer started and broke off: keep what arrived so that the next run resumes."""
    kept = part.stat().st_size if part.is_file() else 0
    if not kept:
        _drop_partial(part)
        return DownloadError(f"the transfer of {url} broke off ({reason}); run it again")
    return DownloadError(
        f"the transfer of {url} broke off ({reason}); the {kept:,} bytes that arrived are kept "
        f"in {part}: run the same command again to resume"
    )


def _announced_size(answer: requests.Response, offset: int) -> int | None:
    """The full size of the file, from Content-Range (resumed) or Content-Length."""
    content_range = answer.headers.get("Content-Range", "")
    if "/" in content_range and content_range.rsplit("/", 1)[1].isdigit():
        return int(content_range.rsplit("/", 1)[1])
    length = answer.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def _stream(
    answer: requests.Response, part: Path, start: int, total: int | None, progress: bool
) -> None:
    """Write the body to `part` from byte `start` (appending when resuming)."""
    with (
        part.open("ab" if start else "wb") as out,
        tqdm(
            total=total,
            initial=start,
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
    """A short, human reason for a failed request (no traceback, no object reprs).

    Order matters: requests' exception classes overlap (a read timeout mid-body arrives as a
    ConnectionError, ConnectTimeout is both a ConnectionError and a Timeout)."""
    errors = requests.exceptions
    if isinstance(exc, errors.ChunkedEncodingError):
        return "the connection was dropped mid-transfer"
    if isinstance(exc, errors.RetryError):
        return "the server kept answering with an error (HTTP 5xx) after retries; try again later"
    if isinstance(exc, errors.SSLError):
        return "the secure connection failed (TLS certificate or proxy problem)"
    if isinstance(exc, errors.ConnectTimeout):
        return "cannot connect (timed out: offline, or the host is down)"
    if isinstance(exc, errors.Timeout) or "Read timed out" in str(exc):
        return "the server stopped answering"
    if isinstance(exc, errors.ConnectionError):
        return "cannot connect (offline, or the host is down or unknown)"
    if isinstance(exc, (errors.MissingSchema, errors.InvalidSchema, errors.InvalidURL)):
        return "not a valid http(s) address"
    return type(exc).__name__


def _drop_partial(part: Path) -> None:
    """Delete a partial file, and its folder once empty: nothing is left behind for nothing."""
    part.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        part.parent.rmdir()


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:12]


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
class _UnsafeMember(Exception):
    """A member that would land outside the target or is not a plain file or folder (fallback
    for Pythons without tarfile's "data" filter)."""


_REFUSED: tuple[type[Exception], ...] = (
    _UnsafeMember,
    getattr(tarfile, "FilterError", _UnsafeMember),
)


def unpack(archive: Path, staging: Path, top_folder: str) -> Path:
    """Extract a tar (any compression) into `staging`; the path of its `top_folder`."""
    try:
        with tarfile.open(archive) as tar:
            extract_safely(tar, staging)
    except _REFUSED as exc:
        raise DownloadError(
            f"refused to unpack the downloaded file: {_first_line(exc)} (an unsafe archive, "
            f"not the expected one; deleted)"
        ) from None
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise DownloadError(_not_an_archive(archive, exc)) from None
    folder = staging / top_folder
    if not folder.is_dir():
        found = ", ".join(sorted(p.name for p in staging.iterdir())) or "nothing"
        raise DownloadError(
            f"the archive holds {found}, not the folder {top_folder}: not the expected archive "
            f"(deleted; check the address)"
        )
    return folder


def extract_safely(tar: tarfile.TarFile, target: Path) -> None:
    """Extract everything into `target`, refusing links, devices and paths outside it: the
    "data" filter where this Python has it (3.10.12+, 3.11.4+), else the same checks by hand."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(target, filter="data")
        return
    root = target.resolve()
    for member in tar.getmembers():
        inside = (root / member.name).resolve().is_relative_to(root)
        if not inside or not (member.isfile() or member.isdir()):
            raise _UnsafeMember(f"{member.name!r} is a link, a device or outside the archive")
    tar.extractall(target)  # every member was checked just above


def _not_an_archive(archive: Path, exc: BaseException) -> str:
    """Why `archive` could not be unpacked, with a hint when the server sent a web page."""
    head = _head(archive).lower()
    html = b"<html" in head or b"<!doctype" in head
    hint = " (the server sent a web page: a quota or login page?)" if html else ""
    reason = _first_line(exc).rstrip(":")
    if reason.startswith("file could not be opened"):
        reason = "neither tar nor compressed tar"
    return (
        f"the downloaded file is not a complete tar archive{hint}: {reason} "
        f"(deleted; run again to fetch it afresh)"
    )


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


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
    dataset = where.dataset
    assert dataset is not None, f"{where.name}: an image location names its dataset"
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
                aside = _aside(final)
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


def _aside(final: Path) -> Path:
    """Where the previous copy of `final` waits while the new one is renamed in."""
    return final.with_name(f".{final.name}.replaced")


def recover(where: Location, to: Path) -> None:
    """Undo what a run killed mid-way (power cut, SIGKILL) left: a previous copy still set aside
    goes back in place unless a new one made it there, and stale unpack folders go."""
    finals = [to / where.install_to]
    if where.space is not None:
        finals.append(to / "nats_bench" / f"{where.space}.csv")
    for final in finals:
        aside = _aside(final)
        if aside.exists() and not final.exists():
            aside.rename(final)
        elif aside.exists():
            _remove(aside)
    for stale in to.glob(f".{where.name}-unpack-*"):
        _remove(stale)


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

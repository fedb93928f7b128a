"""`gm-lab data download` against a real HTTP server started here, serving archives built from
the real data folder in the official formats: success, a dropped connection then a resumed
download, and every way a download can go wrong, each leaving the previous data untouched.

The CLI runs in a subprocess where the process boundary matters (exit status, nothing but one line
on stderr, a second run resuming what the first left); the failure matrix runs `gm_lab.cli.main`
in this process (same parser, same error printing) because each subprocess costs seconds of
imports and the whole file has to stay well under a minute.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from gm_lab.benchmark import Benchmark
from gm_lab.cli import main
from gm_lab.data import download as engine
from gm_lab.data.download import DownloadError, download, unpack
from gm_lab.data.locations import LOCATIONS, location
from gm_lab.inputs.images import read_image_folder
from gm_lab.paths import user_data_root

TSS = "NATS-tss-v1_0-3ffb9-simple"
SSS = "NATS-sss-v1_0-50262-simple"
WITH_RESULTS = (0, 11, 284)  # the architectures the official sample holds results for


# ---- a local server with Range support ---------------------------------------------------------
@dataclass
class Served:
    """What the test server serves, how it misbehaves, and what it saw."""

    files: dict[str, bytes] = field(default_factory=dict)
    drop_once: set[str] = field(default_factory=set)  # cut after half the bytes, the first time
    fail_once: dict[str, int] = field(default_factory=dict)  # answer this status, the first time
    fail_always: dict[str, int] = field(default_factory=dict)
    ignore_range: set[str] = field(default_factory=set)  # answer 200 with everything
    requests: list[tuple[str, str | None, int]] = field(default_factory=list)  # path, Range, status


class Handler(BaseHTTPRequestHandler):
    """GET with Range support (206 + Content-Range), and the misbehaviours listed in `Served`."""

    served: Served

    def do_GET(self) -> None:
        body, wanted = self.served.files.get(self.path), self.headers.get("Range")
        error = self.served.fail_always.get(self.path) or self.served.fail_once.pop(self.path, 0)
        if body is None or error:
            self._error(wanted, error or 404)
            return
        start = int(wanted.removeprefix("bytes=").split("-")[0]) if wanted else 0
        if self.path in self.served.ignore_range:
            start = 0
        if start >= len(body) > 0:
            self._error(wanted, 416)
            return
        status = 206 if start else 200
        self.served.requests.append((self.path, wanted, status))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        if self.path in self.served.drop_once:  # a full Content-Length, then half the bytes
            self.served.drop_once.discard(self.path)
            self.wfile.write(body[start : start + (len(body) - start) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])

    def _error(self, wanted: str | None, status: int) -> None:
        self.served.requests.append((self.path, wanted, status))
        self.send_error(status)

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, Served]]:
    served = Served()
    handler = type("BoundHandler", (Handler,), {"served": served})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    httpd.shutdown()
    httpd.server_close()


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---- archives built from the real data, laid out like the official ones --------------------------
def tar_of(folder: Path, compression: str = "") -> bytes:
    """An archive holding `folder` under its own name, as the official archives are laid out."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=f"w:{compression}") as tar:
        tar.add(folder, arcname=folder.name)
    return buffer.getvalue()


def unsafe_tar() -> bytes:
    """A tar whose one member would be written next to, not inside, the folder it is unpacked in."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        member = tarfile.TarInfo("../escaped.txt")
        member.size = 5
        tar.addfile(member, io.BytesIO(b"owned"))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def archives(official_sample: Path, data_root: Path) -> dict[str, bytes]:
    images = data_root / "images"
    return {
        "/tss.tar": tar_of(official_sample / TSS),
        "/sss.tar": tar_of(official_sample / SSS),
        "/cifar10.tar.gz": tar_of(images / "cifar-10-batches-py", "gz"),
        "/cifar100.tar.gz": tar_of(images / "cifar-100-python", "gz"),
    }


# ---- running the command -----------------------------------------------------------------------
def gm_lab(*args: str) -> subprocess.CompletedProcess:
    """`gm-lab data download ARGS` in its own process (it inherits this test's environment)."""
    command = [sys.executable, "-m", "gm_lab.cli", "data", "download", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def gm_lab_here(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The same command through `gm_lab.cli.main` in this process: (exit status, stdout, stderr)."""
    status = main(["data", "download", *args])
    out = capsys.readouterr()
    return status, out.out, out.err


def one_error_line(stderr: str) -> str:
    """The error, alone on the last line (above it at most the progress bar), no traceback."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert "Traceback" not in stderr and lines[-1].startswith("gm-lab: error: "), stderr
    assert sum(line.startswith("gm-lab:") for line in lines) == 1, stderr
    return lines[-1]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones too), by relative path: what 'untouched' means."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def assert_same_results(imported: Benchmark, reference: Benchmark) -> None:
    """Same architectures, and the archs with results carry the same (real, finite) values."""
    assert imported.n_archs == reference.n_archs
    assert list(imported.archs[:20]) == list(reference.archs[:20])
    for dataset in ("cifar10", "cifar100", "ImageNet16-120"):
        got, want = imported.accuracy(dataset), reference.accuracy(dataset)
        assert np.isfinite(want[list(WITH_RESULTS)]).all()
        assert got[list(WITH_RESULTS)].tolist() == want[list(WITH_RESULTS)].tolist()
        np.testing.assert_array_equal(got, want)  # NaN where the sample holds no results


# ---- success -----------------------------------------------------------------------------------
def test_tss_download_via_the_cli_imports_the_official_archive(
    server, archives, official_sample, tmp_path
):
    url, served = server
    served.files["/tss.tar"] = archives["/tss.tar"]
    out = gm_lab("tss", "--url", f"{url}/tss.tar", "--to", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "15,625 architectures, 3 with results" in out.stdout
    assert "set GM_LAB_DATA=" in out.stdout  # --to is not in the lookup order: it says how
    imported = Benchmark.from_table(tmp_path / "nats_bench" / "tss.csv", "tss")
    assert_same_results(imported, Benchmark.from_official(official_sample / TSS, "tss", False))
    assert snapshot(tmp_path / "nats_bench" / TSS) == snapshot(official_sample / TSS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nats_bench"]  # nothing left over
    assert sorted(p.name for p in (tmp_path / "nats_bench").iterdir()) == [TSS, "tss.csv"]


def test_cifar10_download_via_the_cli_goes_to_the_per_user_data_folder(server, archives, data_root):
    url, served = server
    served.files["/cifar10.tar.gz"] = archives["/cifar10.tar.gz"]
    out = gm_lab("cifar10", "--url", f"{url}/cifar10.tar.gz")  # no --to: the default target
    assert out.returncode == 0, out.stderr
    source = data_root / "images" / "cifar-10-batches-py"
    served_images = read_image_folder("cifar10", source)  # what the archive holds
    assert served_images is not None
    count = f"{len(served_images.labels):,} cifar10 test images"
    assert count in out.stdout and "gm-lab now uses it" in out.stdout
    folder = user_data_root() / "images" / "cifar-10-batches-py"  # a temporary XDG_DATA_HOME
    assert snapshot(folder) == snapshot(source)
    images = read_image_folder("cifar10", folder)
    assert images is not None and images.images.shape[1:] == (3, 32, 32)
    np.testing.assert_array_equal(images.images, served_images.images)
    np.testing.assert_array_equal(images.labels, served_images.labels)


@pytest.mark.parametrize("name", ["sss", "cifar100"])
def test_sss_and_cifar100_install_what_the_archive_holds(
    server, archives, official_sample, data_root, tmp_path, name: str
):
    url, served = server
    path = {"sss": "/sss.tar", "cifar100": "/cifar100.tar.gz"}[name]
    served.files[path] = archives[path]
    done = download(name, to=tmp_path, url=url + path, progress=False)
    if name == "sss":
        assert done.table == tmp_path / "nats_bench" / "sss.csv"
        imported = Benchmark.from_table(done.table, "sss")
        assert imported.n_archs == 32_768 and imported.arch(0).count(":") == 4
        assert_same_results(imported, Benchmark.from_official(official_sample / SSS, "sss", False))
    else:
        assert done.folder == tmp_path / "images" / "cifar-100-python"
        source = data_root / "images" / "cifar-100-python"
        assert snapshot(done.folder) == snapshot(source)
        served_images = read_image_folder("cifar100", source)
        assert served_images is not None
        assert done.detail == f"{len(served_images.labels):,} cifar100 test images"
    assert not list(tmp_path.glob(".*"))  # no partial file, no unpack folder


# ---- interrupted, resumed ----------------------------------------------------------------------
def test_dropped_connection_keeps_the_part_and_the_next_run_resumes(
    server, archives, data_root, tmp_path
):
    url, served = server
    body = archives["/cifar10.tar.gz"]
    served.files["/cifar10.tar.gz"] = body
    served.drop_once.add("/cifar10.tar.gz")
    args = ("cifar10", "--url", f"{url}/cifar10.tar.gz", "--to", str(tmp_path))

    first = gm_lab(*args)
    assert first.returncode == 2
    error = one_error_line(first.stderr)
    assert "broke off" in error and "run the same command again to resume" in error
    (part,) = (tmp_path / ".partial").iterdir()
    assert part.name.startswith("cifar10-") and part.suffix == ".part"
    kept = part.stat().st_size
    assert 0 < kept <= len(body) // 2  # what arrived, up to the last whole chunk
    assert part.read_bytes() == body[:kept]
    assert not (tmp_path / "images").exists()  # nothing installed from half an archive
    assert [p.name for p in tmp_path.iterdir()] == [".partial"]  # no unpack folder either

    second = gm_lab(*args)
    assert second.returncode == 0, second.stderr
    assert served.requests[-1] == ("/cifar10.tar.gz", f"bytes={kept}-", 206)
    installed = tmp_path / "images" / "cifar-10-batches-py"
    assert snapshot(installed) == snapshot(data_root / "images" / "cifar-10-batches-py")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]  # .partial cleaned up


def test_a_server_that_ignores_range_is_read_from_the_start(server, archives, data_root, tmp_path):
    url, served = server
    served.files["/cifar10.tar.gz"] = archives["/cifar10.tar.gz"]
    served.ignore_range.add("/cifar10.tar.gz")
    address = f"{url}/cifar10.tar.gz"
    part = tmp_path / ".partial" / f"cifar10-{engine._short_hash(address)}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 1000)  # a stale partial file: must be overwritten, not appended to
    download("cifar10", to=tmp_path, url=address, progress=False)
    assert served.requests == [("/cifar10.tar.gz", "bytes=1000-", 200)]
    installed = tmp_path / "images" / "cifar-10-batches-py" / "test_batch"
    assert (
        installed.read_bytes() == (data_root / "images/cifar-10-batches-py/test_batch").read_bytes()
    )


def test_a_transient_server_error_is_retried(server, archives, tmp_path):
    url, served = server
    served.files["/cifar10.tar.gz"] = archives["/cifar10.tar.gz"]
    served.fail_once["/cifar10.tar.gz"] = 503
    download("cifar10", to=tmp_path, url=f"{url}/cifar10.tar.gz", progress=False)
    assert [status for *_, status in served.requests] == [503, 200]


# ---- failures ----------------------------------------------------------------------------------
@pytest.fixture
def previous(archives, tmp_path) -> tuple[Path, dict[str, bytes]]:
    """A data folder that already holds a good CIFAR-10 download (installed from its own server)."""
    served = Served(files={"/c.tar.gz": archives["/cifar10.tar.gz"]})
    handler = type("BoundHandler", (Handler,), {"served": served})
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        address = f"http://127.0.0.1:{httpd.server_address[1]}/c.tar.gz"
        download("cifar10", to=tmp_path, url=address, progress=False)
        httpd.shutdown()
    return tmp_path, snapshot(tmp_path)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not found", "answered HTTP 404"),
        ("offline", "cannot connect (offline"),
        ("server error", "kept answering with an error (HTTP 5xx)"),
        ("truncated", "is not a complete tar archive"),
        ("garbage", "is not a complete tar archive"),
        ("html page", "the server sent a web page"),
        ("wrong folder", "not the folder cifar-10-batches-py"),
        ("unsafe", "refused to unpack"),
        ("wrong hash", "expected 0123456789abcdef0123456789abcdef"),
        ("published hash", "expected c58f30108f718f92721af3b95e74349a"),
    ],
)
def test_failures_are_one_line_and_leave_the_previous_data_untouched(
    server, archives, previous, capsys, monkeypatch, case: str, message: str
):
    url, served = server
    folder, before = previous
    body = archives["/cifar10.tar.gz"]
    served.files.update(
        {
            "/truncated": body[: len(body) // 2],  # served whole, with its own Content-Length
            "/garbage": np.random.default_rng(0).bytes(50_000),
            "/html-page": b"<!DOCTYPE html><html><body>Quota exceeded</body></html>",
            "/wrong-folder": archives["/tss.tar"],
            "/unsafe": unsafe_tar(),
            "/wrong-hash": body,
            "/published-hash": body,  # test images re-packed: not the published archive
        }
    )
    served.fail_always["/server-error"] = 503
    address = {
        "not found": f"{url}/nothing.tar.gz",
        "offline": f"http://127.0.0.1:{closed_port()}/cifar-10-python.tar.gz",
    }.get(case, f"{url}/{case.replace(' ', '-')}")
    args = ["cifar10", "--url", address, "--to", str(folder)]
    if case == "wrong hash":
        args += ["--hash", "md5:0123456789abcdef0123456789abcdef"]
    if case == "published hash":  # the official location, with its published md5, served here
        monkeypatch.setitem(LOCATIONS, "cifar10", replace(LOCATIONS["cifar10"], url=address))
        args = ["cifar10", "--to", str(folder)]
    status, out, err = gm_lab_here(capsys, *args)
    assert status == 2 and out == ""
    error = one_error_line(err)
    assert message in error and address in error
    assert snapshot(folder) == before  # previous copy byte-identical, no partial, no temp folder
    assert sorted(p.name for p in folder.iterdir()) == ["images"]
    assert not (folder.parent / "escaped.txt").exists()


def test_a_nats_archive_that_does_not_read_leaves_the_previous_table(
    server, archives, official_sample, tmp_path, tmp_path_factory
):
    """The right top folder, but no meta.pickle.pbz2: refused before the table is replaced."""
    url, served = server
    served.files["/tss.tar"] = archives["/tss.tar"]
    download("tss", to=tmp_path, url=f"{url}/tss.tar", progress=False)
    before = snapshot(tmp_path)
    broken = tmp_path_factory.mktemp("broken") / TSS
    broken.mkdir(parents=True)
    (broken / "000000.pickle.pbz2").write_bytes(
        (official_sample / TSS / "000000.pickle.pbz2").read_bytes()
    )
    served.files["/broken.tar"] = tar_of(broken)
    with pytest.raises(
        DownloadError, match=re.escape(f"{url}/broken.tar: the unpacked {TSS} cannot be read")
    ):
        download("tss", to=tmp_path, url=f"{url}/broken.tar", progress=False)
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nats_bench"]


def test_the_next_run_undoes_what_a_killed_run_left(server, previous, capsys):
    """Killed between setting the previous copy aside and renaming the new one in, mid-unpack."""
    url, _ = server
    folder, before = previous
    final = folder / "images" / "cifar-10-batches-py"
    final.rename(final.with_name(".cifar-10-batches-py.replaced"))
    (folder / ".cifar10-unpack-k1ll3d" / "cifar-10-batches-py").mkdir(parents=True)
    status, _, err = gm_lab_here(capsys, "cifar10", "--url", f"{url}/gone", "--to", str(folder))
    assert status == 2 and "answered HTTP 404" in one_error_line(err)
    assert snapshot(folder) == before
    assert sorted(p.name for p in folder.iterdir()) == ["images"]
    assert sorted(p.name for p in (folder / "images").iterdir()) == ["cifar-10-batches-py"]


def test_unwritable_target_fails_before_any_transfer(server, capsys, tmp_path):
    url, served = server
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    status, _, err = gm_lab_here(capsys, "cifar10", "--url", f"{url}/x", "--to", f"{blocker}/d")
    assert status == 2 and "cannot write into" in one_error_line(err)
    assert served.requests == []


def test_without_the_data_filter_unsafe_members_are_still_refused(monkeypatch, tmp_path):
    """Pythons before 3.10.12 / 3.11.4 have no tarfile "data" filter: the same checks by hand."""
    monkeypatch.delattr(tarfile, "data_filter")
    (tmp_path / "staging").mkdir()
    archive = tmp_path / "unsafe.tar"
    archive.write_bytes(unsafe_tar())
    with pytest.raises(DownloadError, match="refused to unpack the downloaded file"):
        unpack(archive, tmp_path / "staging", "cifar-10-batches-py")
    assert not (tmp_path / "escaped.txt").exists()


# ---- locations ---------------------------------------------------------------------------------
def test_locations_live_in_one_place_and_mirrors_override_them(monkeypatch, capsys) -> None:
    official = location("cifar10")
    assert official.url == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert official.checksum == "md5:c58f30108f718f92721af3b95e74349a"
    assert location("cifar100").checksum == "md5:eb9058c3a382ffc7106e4002c42a8d85"
    assert location("tss").url == (
        "https://drive.usercontent.google.com/download?id=17_saCsj_krKjlCBLOJEpNtzPXArMCqxU"
        "&export=download&confirm=t"
    )
    assert "id=1scOMTUwcQhAMa_IMedp9lTzwmgqHLGgA&" in location("sss").url
    assert (location("sss").space, location("sss").top_folder) == ("sss", SSS)
    monkeypatch.setenv("GM_LAB_URL_CIFAR10", "http://mirror.example/c10.tar.gz")
    mirrored = location("cifar10")
    assert mirrored.url == "http://mirror.example/c10.tar.gz" and mirrored.checksum is None
    assert location("cifar10", url="http://other/x").url == "http://other/x"  # --url wins
    assert location("cifar10", checksum="MD5:" + "A" * 32).checksum == "md5:" + "a" * 32
    for args, message in [
        (["imagenet16"], "no public direct download"),
        (["mnist"], "choose one of tss, sss, cifar10, cifar100"),
        (["cifar10", "--url", "no-scheme-here"], "--url 'no-scheme-here' is not an http(s)"),
        (["cifar10", "--hash", "md5:xyz"], "must be md5:<32 hex digits>"),
    ]:
        status, _, err = gm_lab_here(capsys, *args)
        assert status == 2 and message in one_error_line(err)
    monkeypatch.setenv("GM_LAB_URL_TSS", "ftp://old.example/tss.tar")
    status, _, err = gm_lab_here(capsys, "tss")
    assert status == 2 and "GM_LAB_URL_TSS 'ftp://old.example/tss.tar'" in one_error_line(err)
    assert os.environ["XDG_DATA_HOME"] in str(user_data_root())  # never the developer's folder

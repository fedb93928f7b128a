"""`gm-lab data download` against a real HTTP server started here, serving archives built from
the real data folder in the official formats: success, a dropped connection then a resumed
download, and every way a download can go wrong, each leaving the previous data untouched."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from gm_lab.benchmark import Benchmark
from gm_lab.data.locations import location

TSS = "NATS-tss-v1_0-3ffb9-simple"


@dataclass
class Served:
    """What the test server serves, and what it saw."""

    files: dict[str, bytes] = field(default_factory=dict)
    drop_once: set[str] = field(default_factory=set)  # cut these mid-transfer, the first time
    requests: list[tuple[str, str | None, int]] = field(default_factory=list)  # path, Range, status


class Handler(BaseHTTPRequestHandler):
    """GET with Range support; a path in `drop_once` is cut after half its bytes, once."""

    served: Served

    def do_GET(self) -> None:
        body = self.served.files.get(self.path)
        wanted = self.headers.get("Range")
        if body is None:
            self.served.requests.append((self.path, wanted, 404))
            self.send_error(404)
            return
        start = int(wanted.removeprefix("bytes=").split("-")[0]) if wanted else 0
        status = 206 if wanted else 200
        self.served.requests.append((self.path, wanted, status))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) - start))
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        if self.path in self.served.drop_once:
            self.served.drop_once.discard(self.path)
            self.wfile.write(body[start : start + (len(body) - start) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])

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


def tar_of(folder: Path, compression: str = "") -> bytes:
    """An archive holding `folder` under its own name, as the official archives are laid out."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=f"w:{compression}") as tar:
        tar.add(folder, arcname=folder.name)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def archives(official_sample: Path, data_root: Path) -> dict[str, bytes]:
    return {
        "/tss.tar": tar_of(official_sample / TSS),
        "/cifar10.tar.gz": tar_of(data_root / "images" / "cifar-10-batches-py", "gz"),
    }


def gm_lab(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "gm_lab.cli", "data", "download", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def one_error_line(stderr: str) -> str:
    """The error, alone on the last line (above it at most the progress bar), no traceback."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert "Traceback" not in stderr and lines[-1].startswith("gm-lab: error: "), stderr
    assert sum(line.startswith("gm-lab:") for line in lines) == 1, stderr
    return lines[-1]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones too), by relative path: what 'untouched' means."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_tss_download_imports_the_official_archive(server, archives, official_sample, tmp_path):
    url, served = server
    served.files["/tss.tar"] = archives["/tss.tar"]
    out = gm_lab("tss", "--url", f"{url}/tss.tar", "--to", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "15,625 architectures, 3 with results" in out.stdout
    assert "set GM_LAB_DATA=" in out.stdout  # --to is not in the lookup order
    imported = Benchmark.from_table(tmp_path / "nats_bench" / "tss.csv", "tss")
    reference = Benchmark.from_official(official_sample / TSS, "tss", progress=False)
    for dataset in ("cifar10", "cifar100", "ImageNet16-120"):
        np.testing.assert_array_equal(imported.accuracy(dataset), reference.accuracy(dataset))
    assert (tmp_path / "nats_bench" / TSS / "meta.pickle.pbz2").read_bytes() == (
        official_sample / TSS / "meta.pickle.pbz2"
    ).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nats_bench"]  # nothing left over


def test_dropped_connection_keeps_the_part_and_the_next_run_resumes(
    server, archives, data_root, tmp_path
):
    url, served = server
    body = archives["/cifar10.tar.gz"]
    served.files["/cifar10.tar.gz"] = body
    served.drop_once.add("/cifar10.tar.gz")
    args = ("cifar10", "--url", f"{url}/cifar10.tar.gz", "--to", str(tmp_path))

    first = gm_lab(*args)
    assert first.returncode != 0
    assert "run the same command again to resume" in one_error_line(first.stderr)
    (part,) = (tmp_path / ".partial").iterdir()
    kept = part.stat().st_size
    assert 0 < kept <= len(body) // 2  # what arrived, up to the last whole chunk
    assert not (tmp_path / "images").exists()  # nothing installed from half an archive

    second = gm_lab(*args)
    assert second.returncode == 0, second.stderr
    assert served.requests[-1] == ("/cifar10.tar.gz", f"bytes={kept}-", 206)
    installed = tmp_path / "images" / "cifar-10-batches-py" / "test_batch"
    source = data_root / "images" / "cifar-10-batches-py" / "test_batch"
    assert installed.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]  # .partial cleaned up


@pytest.fixture
def previous(server, archives, tmp_path) -> tuple[str, Served, Path, dict[str, bytes]]:
    """A data folder that already holds a good CIFAR-10 download."""
    url, served = server
    served.files["/cifar10.tar.gz"] = archives["/cifar10.tar.gz"]
    out = gm_lab("cifar10", "--url", f"{url}/cifar10.tar.gz", "--to", str(tmp_path))
    assert out.returncode == 0, out.stderr
    return url, served, tmp_path, snapshot(tmp_path)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not found", "answered HTTP 404"),
        ("offline", "cannot connect (offline"),
        ("truncated", "is not a complete tar archive"),
        ("garbage", "is not a complete tar archive"),
        ("html page", "the server sent a web page"),
        ("wrong folder", "not the folder cifar-10-batches-py"),
        ("wrong hash", "expected 0123"),
    ],
)
def test_failures_are_one_line_and_leave_the_previous_data_untouched(
    previous, archives, official_sample, case: str, message: str
):
    url, served, folder, before = previous
    body = archives["/cifar10.tar.gz"]
    served.files["/truncated"] = body[: len(body) // 2]
    served.files["/garbage"] = np.random.default_rng(0).bytes(50_000)
    served.files["/html-page"] = b"<!DOCTYPE html><html><body>Quota exceeded</body></html>"
    served.files["/wrong-folder"] = archives["/tss.tar"]
    served.files["/wrong-hash"] = body
    address = {"not found": f"{url}/nothing.tar.gz", "offline": "http://127.0.0.1:9/x.tar.gz"}
    path = case.replace(" ", "-")
    args = ["cifar10", "--url", address.get(case, f"{url}/{path}"), "--to", str(folder)]
    if case == "wrong hash":
        args += ["--hash", "md5:0123456789abcdef0123456789abcdef"]
    out = gm_lab(*args)
    assert out.returncode == 2
    assert message in one_error_line(out.stderr)
    assert snapshot(folder) == before  # previous copy byte-identical, no partial, no temp folder
    assert sorted(p.name for p in folder.iterdir()) == ["images"]


def test_unwritable_target_fails_before_any_transfer(server, tmp_path):
    url, served = server
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = gm_lab("cifar10", "--url", f"{url}/x", "--to", str(blocker / "data"))
    assert out.returncode == 2 and "cannot write into" in out.stderr
    assert served.requests == []


def test_locations_live_in_one_place_and_mirrors_override_them(monkeypatch) -> None:
    official = location("cifar10")
    assert official.url.startswith("https://www.cs.toronto.edu/")
    assert official.checksum == "md5:c58f30108f718f92721af3b95e74349a"
    monkeypatch.setenv("GM_LAB_URL_CIFAR10", "http://mirror.example/c10.tar.gz")
    mirrored = location("cifar10")
    assert mirrored.url == "http://mirror.example/c10.tar.gz" and mirrored.checksum is None
    assert location("cifar10", url="http://other/x").url == "http://other/x"
    assert location("tss").space == "tss" and "drive.usercontent.google.com" in location("sss").url
    assert hashlib.md5(b"").hexdigest()  # md5 exists on this platform (FIPS builds may lack it)
    out = gm_lab("imagenet16")
    assert out.returncode == 2 and "no public direct download" in out.stderr
    unknown = gm_lab("mnist")
    assert unknown.returncode == 2 and "choose one of tss, sss, cifar10, cifar100" in unknown.stderr
    assert os.environ["GM_LAB_URL_CIFAR10"]  # the subprocess saw the same environment

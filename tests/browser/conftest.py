"""A real JupyterLab server and Debian's chromium driven by Playwright, for widget tests.

The server runs in a temporary folder with its own Jupyter config/runtime/data folders, and a
probe cache shared by the tests of this folder (each probes the same small samples once).
Chromium is the system one (`apt-get install chromium`); tests are skipped, loudly, without it.
Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gm_lab.cli.lab import QUIET_LAB_ARGS

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
READY_JS = """async () => {
  const app = window.jupyterapp;
  if (!app) return false;
  await app.restored;
  const panel = app.shell.currentWidget;
  if (!panel || !panel.sessionContext) return false;
  await panel.context.ready;
  await panel.sessionContext.ready;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle';
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    return path


class Lab:
    """A running JupyterLab: its URL and root folder."""

    def __init__(self, url: str, root: Path) -> None:
        self.url = url
        self.root = root

    def write_notebook(self, name: str, cells: list[str]) -> str:
        """A notebook of code cells in the server's root; returns its name."""
        nb = {
            "cells": [
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "metadata": {},
                    "outputs": [],
                    "source": source,
                }
                for source in cells
            ],
            "metadata": {
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        (self.root / name).write_text(json.dumps(nb))
        return name


def _server_args(port: int, root: Path) -> list[str]:
    """Local only, no token, no news, and `window.jupyterapp` for readiness checks."""
    return [
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--ServerApp.disable_check_xsrf=True",
        "--allow-root",
        *QUIET_LAB_ARGS,
        "--expose-app-in-browser",
        f"--ServerApp.root_dir={root}",
    ]


@pytest.fixture(scope="session")
def jupyter_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "root"
    root.mkdir()
    port = _free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "GM_LAB_CACHE": str(base / "cache"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("GM_LAB_DATA", None)  # the embedded default: the browser tests need no data folder
    log = (base / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", *_server_args(port, root)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"JupyterLab did not start: {(base / 'server.log').read_text()[-3000:]}"
                    ) from None
                time.sleep(0.3)
        yield Lab(url, root)
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="session")
def browser(chromium_path: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember each phase's report on the test item, so fixtures can see a failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def page(browser, request):
    """A fresh browser page; on failure a full-page screenshot goes to the artifacts."""
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}.png"), full_page=True)
    context.close()


def open_and_run(page, lab: Lab, notebook: str) -> None:
    """Open `notebook` in JupyterLab, wait until its kernel is idle, and run every cell."""
    page.goto(f"{lab.url}/lab/tree/{notebook}?reset", timeout=120_000)
    page.wait_for_function(READY_JS, timeout=120_000, polling=500)
    # Commands act on the focused notebook, and a kernel that just turned idle may still drop
    # the first execute request: focus, run all, and run again if no cell started.
    started = (
        "() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) "
        ".jp-InputPrompt')].some(e => /\\[(\\*|\\d+)\\]/.test(e.textContent))"
    )
    for attempt in range(4):
        panel(page).locator(".jp-Cell").first.click()
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        try:
            page.wait_for_function(started, timeout=10_000)
            return
        except Exception:
            if attempt == 3:
                raise


def assert_no_news_or_notifications(page) -> None:
    """The server runs with news off (QUIET_LAB_ARGS reached the page config) and no toast, such
    as the news prompt or an update notice, covers the widgets a screenshot shows."""
    news = page.evaluate(
        "() => JSON.parse(document.getElementById('jupyter-config-data').textContent).news"
    )
    assert news == {"disabled": True}
    assert page.locator(".Toastify__toast").count() == 0


def panel(page):
    """The visible notebook panel (JupyterLab keeps hidden ones around)."""
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")


def wait_for_file_lines(path: Path, n: int, timeout: float = 60) -> list[dict]:
    """The JSON lines a kernel-side callback wrote, once there are at least `n`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
            if len(lines) >= n:
                return lines
        time.sleep(0.2)
    found = path.read_text() if path.exists() else "(no file)"
    raise AssertionError(f"expected {n} lines in {path} within {timeout} s, found: {found}")


def screenshot(locator, name: str) -> Path:
    """Save a screenshot of `locator` as an artifact and check that it is not blank."""
    from io import BytesIO

    from PIL import Image

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    data = locator.screenshot(path=str(path))
    image = Image.open(BytesIO(data)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 20, f"screenshot {name} looks blank ({len(colours)} colours)"
    small = np.asarray(image.resize((32, 32)))
    busy = int((small != 255).any(axis=-1).sum())  # pixels that are not pure white
    assert busy > 30, f"screenshot {name} is mostly white"
    return path

"""A real server (``geo311 run``) and headless Chromium for browser tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from geo311.config import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def serve(tmp_path):
    """Start ``geo311 run`` on a free loopback port against a database URL."""
    procs = []

    def start(database_url: str, command: str = "run", timeout_s: float = 60) -> str:
        port = _free_port()
        env = {**os.environ, "GEO311_DATABASE_URL": database_url,
               "GEO311_INSTANCE_PATH": str(tmp_path / "instance")}
        log = open(tmp_path / f"server-{port}.log", "w")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [sys.executable, "-m", "web", command, "--host", "127.0.0.1", "--port", str(port)],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        procs.append((proc, log))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError((tmp_path / f"server-{port}.log").read_text())
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return base
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"server did not start in {timeout_s} s")

    yield start
    for proc, log in procs:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@pytest.fixture(scope="session")
def browser(request):
    if not os.path.exists(CHROMIUM):
        if request.config.getoption("--require-all-backends"):
            pytest.fail(f"{CHROMIUM} is missing (install Debian's chromium)", pytrace=False)
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    p = context.new_page()
    yield p
    context.close()

"""The app in a real browser: Streamlit serves app/Home.py on 127.0.0.1, Playwright drives
Debian's headless Chromium through the Justification form and downloads the PDF.

Needs Chromium (``apt-get install -y chromium-headless-shell``); skipped with that hint when it
is missing, except under CI (``CI=true``), where .ci/run installs it and a skip would hide a gap.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pypdf
import pytest

ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = (
    "chromium-headless-shell",
    "/usr/lib/chromium/chromium-headless-shell",
    "chromium",
)
HOWTO = "no Chromium: `apt-get install -y chromium-headless-shell` (Debian) runs the browser test"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
FAKE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYBROWSERFAKE"


@pytest.fixture()
def chromium() -> str:
    """The Chromium binary (skips, or fails under CI, without one)."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run the browser test, but there is {HOWTO}")
    pytest.skip(HOWTO)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture()
def app_url(chromium: str, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "HOME": str(tmp_path),  # Streamlit's per-user files go to the test's directory
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
    }
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "Home.py"),
        "--server.headless=true", "--server.address=127.0.0.1", f"--server.port={port}",
        "--browser.gatherUsageStats=false", "--server.fileWatcherType=none",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).text == "ok":
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                pytest.fail(f"streamlit did not come up on {url}:\n{out[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def test_fill_the_justification_form_and_download_the_pdf(
    chromium: str, app_url: str, tmp_path: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{app_url}/justification", wait_until="domcontentloaded")
            page.get_by_label(
                "What the application does, for whom, and why the current quota is not enough"
            ).fill("Browser test: an agent-assist tool for 1,500 support agents")
            page.get_by_label("AWS account id (12 digits, optional)").fill("123456789012")
            page.get_by_label("Target users").fill("1500")
            page.get_by_role("button", name="Build the report").click()
            pdf_button = page.get_by_role("button", name="PDF")
            pdf_button.wait_for(timeout=90_000)
            with page.expect_download(timeout=60_000) as info:
                pdf_button.click()
            download = info.value
            assert download.suggested_filename == "quota_request.pdf"
            target = tmp_path / "downloaded.pdf"
            download.save_as(target)
        finally:
            browser.close()
    data = target.read_bytes()
    assert data.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(data))
    first = reader.pages[0].extract_text()
    assert "Today's quota serves" in first and "To serve 1,500 users" in first
    assert len(reader.pages[0].images) == 1
    text = "".join(p.extract_text() for p in reader.pages)
    assert "Browser test: an agent-assist tool" in text and "123456789012" in text
    assert FAKE_SECRET not in text and FAKE_SECRET.encode() not in data

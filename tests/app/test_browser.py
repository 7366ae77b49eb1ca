"""The app in a real browser: Streamlit serves app/Home.py on 127.0.0.1 as ``make app`` does,
Playwright drives Debian's headless Chromium through the Justification form and downloads the
PDF.

Needs Chromium (``apt-get install -y chromium-headless-shell``); skipped with that hint when it
is missing, except under CI (``CI=true``), where .ci/run installs it and a skip would hide a gap.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pypdf
import pytest

from tests.app.serve import serve

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


@pytest.fixture()
def app_url(chromium: str, tmp_path: Path) -> Iterator[str]:
    """The app served as ``make app`` serves it, with a fake AWS secret in its environment
    (which no download may carry)."""
    with serve(tmp_path, {"AWS_SECRET_ACCESS_KEY": FAKE_SECRET}) as server:
        yield server.url


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
            page.get_by_label("Region of the quota").fill("us-east-1")
            page.get_by_label("Target users").fill("1,500")
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
    assert "today's quota serves" in first and "To serve 1,500 users" in first
    assert len(reader.pages[0].images) == 1
    text = "".join(p.extract_text() for p in reader.pages)
    assert "Browser test: an agent-assist tool" in text and "123456789012" in text
    assert FAKE_SECRET not in text and FAKE_SECRET.encode() not in data


def test_a_bad_quota_in_the_browser_clears_the_answer(chromium: str, app_url: str) -> None:
    """A value the browser sends as typed (no widget clamps it): a negative TPM is an error
    under the field and the earlier answer is gone, not left on screen beside it."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{app_url}/what-if", wait_until="domcontentloaded")
            users = page.get_by_text("Users at the requested quota")
            users.wait_for(timeout=90_000)
            field = page.get_by_label("TPM quota (tokens per minute)")
            field.fill("-600,000")
            field.press("Enter")
            page.get_by_text("TPM quota must be above 0, got -600,000").wait_for(timeout=60_000)
            page.get_by_text("No answer until the inputs marked").wait_for(timeout=30_000)
            assert users.count() == 0
        finally:
            browser.close()

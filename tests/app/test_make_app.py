"""``make app`` starts without a terminal: the repository's .streamlit/config.toml makes
Streamlit headless (no e-mail prompt, no browser), keeps usage statistics on the machine,
shows a minimal toolbar and listens on loopback only."""

from __future__ import annotations

import tomllib
from pathlib import Path

import httpx

from tests.app.serve import ROOT, serve


def test_the_config_is_headless_private_minimal_and_local() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["headless"] is True
    assert config["server"]["address"] == "127.0.0.1"
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["toolbarMode"] == "minimal"


def test_the_app_starts_without_a_terminal_and_serves_a_page(tmp_path: Path) -> None:
    with serve(tmp_path) as server:
        page = httpx.get(server.url, timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
    (out,) = server.output
    assert "You can now view your Streamlit app" in out, out
    assert "email" not in out.lower() and "Welcome to Streamlit" not in out, out
    assert "usage statistics" not in out.lower(), out
    assert not (tmp_path / ".streamlit" / "credentials.toml").exists()

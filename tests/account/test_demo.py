"""The offline account demo: quotas from the emulator, synthetic usage, plan, request filed."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from capacity.usage import read_usage
from llmcap.account_demo import run_account_demo


def test_account_demo_runs_offline(tmp_path: Path) -> None:
    buf = io.StringIO()
    out = run_account_demo(tmp_path / "demo", Console(file=buf, width=160))
    text = buf.getvalue()
    assert "L-0E7AA8B7" in text and "300,000" in text  # the quota read from the emulator
    assert "SYNTHETIC" in text and "Forecast: p99 minute reaches 80%" in text
    assert "--quota-code L-0E7AA8B7 --desired-value" in text
    assert "PENDING" in text
    _, meta = read_usage(out / "usage.parquet")
    assert meta.source.startswith("synthetic") and meta.quota_tpm == 300_000
    assert (out / "forecast.png").stat().st_size > 0

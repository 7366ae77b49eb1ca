"""`llmcap report --historical-usage usage.parquet`: production usage feeds the report."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from capacity.usage import SyntheticTraffic, UsageMeta, synthetic_usage, write_usage
from llmcap.commands.report import _history


def test_usage_parquet_from_llmcap_usage_is_summarized_for_the_report(tmp_path: Path) -> None:
    end = datetime(2026, 11, 30, tzinfo=UTC)
    frame = synthetic_usage(SyntheticTraffic(growth_per_day=0.03, quota_tpm=300_000), end)
    path = tmp_path / "usage.parquet"
    meta = UsageMeta("us.meta.llama3-3-70b-instruct-v1:0", "us-west-2", quota_tpm=300_000)
    write_usage(path, frame, meta)
    history = _history(path)
    assert isinstance(history, dict)
    assert history["meta"]["quota_tpm"] == 300_000

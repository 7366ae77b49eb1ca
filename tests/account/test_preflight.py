"""Cost and preflight: the price table, monthly cost, ``bench --dry-run`` and ``--budget-usd``
(nothing is sent), quota warnings read from the emulator's Service Quotas API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capacity.usage import PriceError, load_prices, monthly_cost
from emulator import Emulator
from llmcap.cli import build_parser, main
from llmcap.commands.bench import config_from_args
from llmcap.preflight import estimate_sweep

LLAMA = "us.meta.llama3-3-70b-instruct-v1:0"


def test_price_lookup_strips_profile_prefixes_and_names_the_fix(tmp_path: Path) -> None:
    table = load_prices()
    p = table.price("us.anthropic.claude-sonnet-4-20250514-v1:0", "us-west-2")
    assert (p.input, p.output, p.cache_read, p.cache_write) == (0.003, 0.015, 0.0003, 0.00375)
    assert p.request_cost(1000, 100, 2000, 0) == pytest.approx(0.003 + 0.0015 + 0.0006)
    with pytest.raises(PriceError, match="--prices FILE"):
        table.price("acme.model-v1", "us-east-1")
    with pytest.raises(PriceError, match="Region 'ap-south-1'"):
        table.price(LLAMA, "ap-south-1")
    own = tmp_path / "prices.json"
    own.write_text(json.dumps({"source": "mine", "as_of": "today", "prices": [
        {"match": "acme.model", "regions": ["eu-west-1"], "input": 1, "output": 2}]}))  # fmt: skip
    assert load_prices(own).price("acme.model-v1", "eu-west-1").output == 2
    own.write_text("{}")
    with pytest.raises(PriceError, match="is invalid"):
        load_prices(own)


def test_monthly_cost_arithmetic() -> None:
    p = load_prices().price(LLAMA, "us-east-1")
    c = monthly_cost(p, 120, input_tokens=1000, output_tokens=500, peak_to_average=2,
                     active_hours_per_day=12)  # fmt: skip
    # 60 req/min on average × 60 × 730 h × 12/24 × (1.5k tokens × $0.00072/1k)
    assert c.monthly_usd == pytest.approx(60 * 60 * 730 * 0.5 * 1.5 * 0.00072)
    assert "$" in c.describe() and "/month" in c.describe()


def _config(*argv: str) -> object:
    return config_from_args(build_parser().parse_args(["bench", *argv]))


def test_dry_run_numbers_for_interval_mode() -> None:
    cfg = _config("--prompt", "synthetic:1000", "--levels", "1,10", "--batches", "6",
                  "--max-tokens", "200", "--interval-s", "2", "--region", "us-west-2",
                  "--model-id", LLAMA)  # fmt: skip
    est = estimate_sweep(cfg, read_quota=False)  # type: ignore[arg-type]
    lv = est.levels[1]
    assert (lv.requests, lv.peak_rpm, lv.peak_tpm) == (60, 300.0, 300.0 * 1200)
    assert lv.cost_usd == pytest.approx(60 * 1200 * 0.00072 / 1000)
    assert est.total_requests == 66
    cfg = _config("--mode", "concurrency", "--duration-s", "10", "--levels", "4",
                  "--region", "us-west-2")  # fmt: skip
    est = estimate_sweep(cfg, read_quota=False)  # type: ignore[arg-type]
    assert est.levels[0].peak_tpm is None and est.total_cost_usd is None


def test_dry_run_sends_nothing_and_warns_from_the_live_quota(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with Emulator(tpm=300_000) as emu:
        code = main([
            "bench", "--dry-run", "--endpoint-url", emu.url, "--region", "us-west-2",
            "--prompt", "synthetic:2000", "--levels", "1,100", "--batches", "3",
        ])  # fmt: skip
        stats = emu.service.stats.snapshot()
    out = capsys.readouterr().out
    assert code == 0
    assert "TPM quota: 300,000 (read live from http://127.0.0.1" in out
    assert "warning: synthetic-2000 level 100 reserves 14,100,000 tokens/min" in out
    assert "level 1 reserves" not in out
    assert "total: 303 requests" in out
    assert stats["requests"] == 0  # the quota was read; no model request was sent


def test_budget_refuses_before_starting(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["bench", "--budget-usd", "0.5", "--out", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: the sweep may cost $80.") and "--budget-usd 0.5" in err
    assert not any(tmp_path.iterdir())  # no run directory: nothing started
    code = main(["bench", "--budget-usd", "5", "--mode", "concurrency", "--duration-s", "1",
                 "--levels", "1", "--out", str(tmp_path), "--quiet"])  # fmt: skip
    assert code == 2 and "cannot be bounded" in capsys.readouterr().err


def test_a_real_run_warns_about_throttled_levels_and_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with Emulator("fast", tpm=3_000) as emu:
        code = main([
            "bench", "--endpoint-url", emu.url, "--region", "us-west-2", "--prompt", "small",
            "--levels", "1,5", "--batches", "1", "--max-tokens", "8", "--quiet",
            "--out", str(tmp_path),
        ])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert "warning: small level 5 reserves" in err and "level 1 reserves" not in err
    assert any(tmp_path.iterdir())  # the sweep ran

"""The CLI glue of real traffic (``llmcap/commands/_traffic.py``), called directly: the same
outputs as the CloudWatch path of ``llmcap usage`` plus the traffic's; bad sources are one line
and exit 2."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from capacity.usage import SyntheticLogs, read_usage, write_invocation_logs
from llmcap.commands import usage
from llmcap.commands._traffic import (
    add_scaling_args,
    add_traffic_source_args,
    load_traffic,
    run_usage_from_traffic,
)
from llmcap.errors import EXIT_USAGE, UserError, describe


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_traffic_source_args(p, with_common=True)
    add_scaling_args(p)
    return p


def test_the_flags_fit_the_usage_command() -> None:
    """``llmcap usage`` already has --model-id, --region, --aws-profile, --out, --json, --tpm:
    the source flags add to it without a clash."""
    top = argparse.ArgumentParser()
    subparsers = top.add_subparsers()
    usage.register(subparsers)
    sub = subparsers.choices["usage"]
    add_traffic_source_args(sub)
    args = top.parse_args(
        ["usage", "--region", "us-east-1", "--model-id", "m", "--from-logs", "/x", "--tz", "UTC"]
    )
    assert (args.from_logs, args.tz, args.executor, args.model_id) == ("/x", "UTC", "duckdb", "m")


def test_usage_from_a_template_writes_the_cloudwatch_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    model = "us.anthropic.claude-sonnet-4-20250514-v1:0"
    args = parser().parse_args(
        ["--from-trace", "azure-code-2023", "--model-id", model, "--tpm", "2000000", "-o", str(out)]
    )
    assert run_usage_from_traffic(args) == 0
    names = {p.name for p in out.iterdir()}
    assert {
        "usage.parquet",
        "usage_summary.json",
        "summary.md",
        "usage_vs_quota.png",
        "daily_profile.png",
        "traffic_rates.png",
        "token_distributions.png",
        "traffic.json",
    } <= names
    frame, meta = read_usage(out / "usage.parquet")
    assert meta.model_id == model and meta.quota_tpm == 2_000_000 and meta.burndown == 5.0
    assert frame["invocations"].sum() == 8819
    printed = capsys.readouterr().out
    assert "Historical usage" in printed and "requests per second" in printed
    summary = json.loads((out / "usage_summary.json").read_text())
    assert summary["invocations"] == 8819


def test_several_models_get_a_folder_each_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    write_invocation_logs(logs, SyntheticLogs(requests=500, models=("m.a", "us.m.b")))
    out = tmp_path / "out"
    args = parser().parse_args(["--from-logs", str(logs), "-o", str(out), "--json"])
    assert run_usage_from_traffic(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [m["model_id"] for m in printed["models"]] == ["m.a", "us.m.b"]
    assert (out / "m.a" / "usage.parquet").exists() and (out / "us.m.b" / "summary.md").exists()
    only = parser().parse_args(["--from-logs", str(logs), "--model-id", "us.m.b", "-o", str(out)])
    assert load_traffic(only).models == ("us.m.b",)


def test_scaling_flags(tmp_path: Path) -> None:
    args = parser().parse_args(
        ["--from-trace", "azure-conv-2023", "--trace-users", "50", "--target-users", "100"]
    )
    assert len(load_traffic(args)) == 2 * 19_366
    half = parser().parse_args(["--from-trace", "azure-conv-2023", "--target-users", "100"])
    with pytest.raises(UserError, match="--target-users and --trace-users go together"):
        load_traffic(half)


@pytest.mark.parametrize(
    ("flags", "text"),
    [
        (["--from-logs", "/nowhere/at/all"], "no such file or folder"),
        (["--from-trace", "/nowhere.csv"], "no such file or folder"),
        ([], "no traffic source"),
    ],
)
def test_bad_sources_are_one_line_and_exit_2(flags: list[str], text: str, tmp_path: Path) -> None:
    args = parser().parse_args([*flags, "-o", str(tmp_path / "out")])
    with pytest.raises(Exception) as err:
        run_usage_from_traffic(args)
    failure = describe(err.value)
    assert failure.code == EXIT_USAGE and text in failure.line and "\n" not in failure.line


def test_naive_trace_times_need_tz(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp,input_tokens,output_tokens\n2026-03-02 10:00:00,1,2\n")
    args = parser().parse_args(["--from-trace", str(trace), "-o", str(tmp_path / "o")])
    with pytest.raises(Exception) as err:
        run_usage_from_traffic(args)
    failure = describe(err.value)
    assert failure.code == EXIT_USAGE and "--tz" in failure.line
    ok = parser().parse_args(["--from-trace", str(trace), "--tz", "UTC", "-o", str(tmp_path / "o")])
    assert run_usage_from_traffic(ok) == 0

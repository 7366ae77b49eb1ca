"""Real traffic through the commands a user types: ``llmcap usage --from-logs/--from-trace``
writes the CloudWatch path's outputs plus the traffic's; ``llmcap plan --from-trace`` sizes the
quota by replaying the requests (``tpm`` under ``--json``); bad sources are one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capacity.usage import SyntheticLogs, read_usage, write_invocation_logs
from llmcap.cli import main

SONNET = "us.anthropic.claude-sonnet-4-20250514-v1:0"
LLAMA = "us.meta.llama3-3-70b-instruct-v1:0"


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_usage_from_a_template_writes_the_cloudwatch_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["usage", "--from-trace", "azure-code-2023", "--model-id", SONNET, "--tpm", "2000000",
            "-o", str(out)]  # fmt: skip
    assert main(argv) == 0
    names = {p.name for p in out.iterdir()}
    assert {
        "usage.parquet", "usage_summary.json", "summary.md", "usage_vs_quota.png",
        "daily_profile.png", "traffic_rates.png", "token_distributions.png", "traffic.json",
    } <= names  # fmt: skip
    frame, meta = read_usage(out / "usage.parquet")
    assert meta.model_id == SONNET and meta.quota_tpm == 2_000_000 and meta.burndown == 5.0
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
    assert main(["usage", "--from-logs", str(logs), "-o", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [m["model_id"] for m in printed["models"]] == ["m.a", "us.m.b"]
    assert (out / "m.a" / "usage.parquet").exists() and (out / "us.m.b" / "summary.md").exists()
    assert main(["usage", "--from-logs", str(logs), "--model-id", "us.m.b", "-o", str(out),
                 "--json"]) == 0  # fmt: skip
    assert [m["model_id"] for m in json.loads(capsys.readouterr().out)["models"]] == ["us.m.b"]


def test_plan_from_a_trace_sizes_the_quota_by_replay(
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["plan", "--from-trace", "azure-code-2023", "--model-id", LLAMA, "--max-tokens", "512"]
    assert main([*base, "--tpm", "600000", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    sizing = doc["models"][LLAMA]
    assert doc["tpm"] == sizing["tpm"] > 600_000 and doc["rule"] == "bucket"
    assert sizing["at_recommended"]["throttled_share"] <= 0.001
    assert sizing["current"]["throttled"] > 0  # today's quota throttles this traffic
    assert sizing["tpm_other_rule"] > 0 and sizing["other_rule"] == "window"
    assert doc["objective"].startswith("none")
    # Twice the users: the trace's copies superposed, and a larger quota.
    assert main([*base, "--trace-users", "100", "--target-users", "200", "--json"]) == 0
    twice = json.loads(capsys.readouterr().out)
    assert twice["scaled"] == {"trace_users": 100.0, "target_users": 200.0}
    assert twice["models"][LLAMA]["requests"] == 2 * sizing["requests"]
    assert twice["tpm"] > doc["tpm"]
    assert main([*base, "--throttle-target", "0.01"]) == 0
    text = capsys.readouterr().out
    assert "Request Cross-region model inference tokens per minute" in text and "L-0E7AA8B7" in text
    assert "under rule 'window' it would take" in text


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["usage", "--from-logs", "/nowhere/at/all"], "no such file or folder"),
        (["usage", "--from-trace", "/nowhere.csv"], "no such file or folder"),
        (["usage"], "CloudWatch usage needs --region and --model-id"),
        (["plan", "--from-trace", "azure-conv-2023", "--target-users", "100"],
         "--target-users and --trace-users go together"),
        (["plan", "--tpm", "1000", "--input-tokens", "10", "--output-tokens", "5"],
         "no --max-tokens"),
        (["plan", "--from-trace", "azure-conv-2023", "--endpoint", "mantle", "--input-tpm", "1e6",
          "--output-tpm", "1e5"], "--endpoint mantle is not sized from traffic here"),
        (["plan", "--from-trace", "azure-conv-2023", "--reserved-input-tpm", "100000"],
         "run `llmcap compare` with the same --from-logs/--from-trace"),
    ],
)  # fmt: skip
def test_bad_sources_are_one_line_and_exit_2(
    argv: list[str], text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "-o", str(tmp_path / "out")] if argv[0] == "usage" else argv) == 2
    assert text in one_line(capsys.readouterr().err)


def test_naive_trace_times_need_tz(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp,input_tokens,output_tokens\n2026-03-02 10:00:00,1,2\n")
    argv = ["usage", "--from-trace", str(trace), "-o", str(tmp_path / "o")]
    assert main(argv) == 2
    assert "--tz" in one_line(capsys.readouterr().err)
    assert main([*argv, "--tz", "UTC"]) == 0

"""``llmcap compare`` as a user types it: the table of the demo's workload, ``--json`` equal to
``capacity.compare`` on the same inputs, traffic sized as ``plan --from-trace`` sizes it, and
every bad input one line (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capacity.compare import GivenFigures, compare
from capacity.planning import Quota, Workload
from capacity.usage import load_prices
from llmcap.cli import main
from tests.capacity.report.test_traffic_report import write_trace

LLAMA = "us.meta.llama3-3-70b-instruct-v1:0"
DEMO = ["compare", "--tpm", "600000", "--model-id", LLAMA, "--region", "us-east-1",
        "--input-tokens", "43", "--output-tokens", "350", "--max-tokens", "350",
        "--think-time-s", "30", "--target-users", "2000", "--replay-minutes", "10"]  # fmt: skip


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_json_is_capacity_compare_on_the_same_inputs(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*DEMO, "--priority-premium", "0.2", "--reserved-price-input", "1m=2,3m=1.5",
            "--reserved-price-output", "15", "--deferrable-share", "0.3", "--json"]  # fmt: skip
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    given = GivenFigures(priority_premium=0.2, reserved_price_input={"1m": 2.0, "3m": 1.5},
                         reserved_price_output={"1m": 15.0, "3m": 15.0},
                         deferrable_share=0.3)  # fmt: skip
    want = compare(
        Quota(600_000, model_id=LLAMA), Workload(43, 350, 350, think_time_s=30), 2000,
        load_prices().price(LLAMA, "us-east-1"), given=given, minutes=10,
    )  # fmt: skip
    assert printed == json.loads(want.to_json())
    assert printed["options"][1]["lines"][0] == {
        "kind": "tpm", "value": 1722941.0, "code": "L-0E7AA8B7",
        "name": "Cross-region model inference tokens per minute for Meta Llama 3.3 70B Instruct",
        "via": "Service Quotas",
    }  # fmt: skip


def test_the_table_says_what_each_option_needs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(DEMO) == 0
    out = capsys.readouterr().out
    for words in ("On-demand Standard, in-Region", "Priority tier", "bedrock-mantle",
                  "Reserved capacity, 3 months", "Provisioned Throughput, 6 months",
                  "Batch inference", "TPM 1,722,941 (L-0E7AA8B7)", "$45,279",
                  "needs --priority-premium", "n/a: needs --pt-unit-input-tpm",
                  "AWS claims 'up to 25% better output tokens per second'"):  # fmt: skip
        assert words in out, words
    assert "Priority premium 20 %" not in out  # nothing unpublished without input


def test_traffic_is_sized_as_plan_from_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = write_trace(tmp_path / "trace.csv", n=600, minutes=5)
    src = ["--from-trace", str(trace), "--model-id", LLAMA, "--tpm", "300000"]
    assert main(["plan", *src, "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)["tpm"]
    assert main(["compare", *src, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["source"] == "traffic" and doc["baseline"] == "standard-cross-region"
    assert doc["options"][1]["lines"][0]["value"] == planned


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--max-tokens", None], "error: no --max-tokens — give the requests' max_tokens"),
        (["--model-id", None], "error: no --model-id — name the model"),
        (["--region", "ap-south-1"], "no on-demand price for meta.llama3-3-70b-instruct in Region"),
        (["--reserved-price-input", "2m=3"], "use PRICE or TERM=PRICE,… with terms 1m, 3m"),
        (["--flex-discount", "1.2"], "use a share in [0, 1)"),
        (["--pt-unit-input-tpm", "1000000"], "needs both its input and its output tokens"),
    ],
)
def test_bad_inputs_are_one_line(
    extra: list[str | None], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = list(DEMO)
    flag, value = extra
    if value is None:
        i = argv.index(str(flag))
        del argv[i : i + 2]
    else:
        argv += [str(flag), value]
    assert main(argv) == 2
    assert message in one_line(capsys.readouterr().err)


def test_workload_flags_are_refused_with_traffic(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["compare", "--from-trace", "azure-code-2023", "--input-tokens", "43"]
    assert main(argv) == 2
    assert "--input-tokens with real traffic — drop them" in one_line(capsys.readouterr().err)

"""``llmcap plan``: tables, JSON, --model, and one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmcap.cli import main
from tests.capacity.plan_fakes import FakeModel

MODEL_FORMAT = "llmcap.capacity-model"  # the "format" tag of model.json

SEED_COMPLEX = ["--tpm", "10000", "--input-tokens", "600", "--output-tokens", "300",
                "--max-tokens", "400", "--requests-per-user-per-min", "0.1"]  # fmt: skip


def run(argv: list[str]) -> int:
    return main(["plan", *argv])


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("error: ")
    return lines[0]


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def binding_row(out: str) -> str:
    (row,) = [line for line in out.splitlines() if "◀" in line]
    return row


def test_table_shows_users_per_constraint_and_the_binding_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(SEED_COMPLEX) == 0
    out = capsys.readouterr().out
    assert "Users supported, by constraint" in out
    # The bucket rule: 10,000 / settlement 900 = 11.1 req/min → 111 users at 0.1 req/min each.
    assert binding_row(out).startswith("│ tokens per minute (sustained) ")
    assert "Answer: 111 users" in out
    assert "10,000 / 900" in out  # the arithmetic is shown


def test_window_rule_reproduces_the_seed_blogs_100_users(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run([*SEED_COMPLEX, "--quota-rule", "window"]) == 0
    out = capsys.readouterr().out
    assert "Answer: 100 users" in out and "10,000 / 1,000" in out


def test_verify_replays_the_plan_through_the_ledger(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--tpm", "2000000", "--input-tokens", "500", "--output-tokens", "300",
            "--max-tokens", "1000", "--think-time-s", "30", "--verify", "--json"]  # fmt: skip
    assert run(argv) == 0
    doc = json.loads(capsys.readouterr().out)["plan"]
    assert doc["requests_per_min"] == pytest.approx(2500)
    assert doc["reservation_slots"] == pytest.approx(1333.33, abs=0.01)
    check = doc["verification"]
    assert check["throttled_share"] < 0.01
    assert check["agreement"] == pytest.approx(1.0, abs=0.05)


def test_target_users_adds_the_quota_to_request(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--tpm", "600000", "--rpm", "800", "--model-id", "us.meta.llama3-3-70b-instruct-v1:0",
            "--input-tokens", "500", "--output-tokens", "300", "--max-tokens", "1000",
            "--think-time-s", "30", "--target-users", "600"]  # fmt: skip
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert "Quota to request for 600 users" in out
    # --rpm given: RPM is requested too. TPM = 1.2 × 800 × 1,108.4 = 1,064,088.
    assert "L-0E7AA8B7" in out and "1,064,088" in out and "1,331" in out
    assert "Feasible: yes" in out


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([*SEED_COMPLEX, "--json", "--target-users", "100", "--headroom", "0"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["plan"]["users"] == pytest.approx(10_000 / 900 / 0.1)
    assert doc["plan"]["binding"] == "tpm"
    assert doc["request"]["tpm"] == 9_000


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (SEED_COMPLEX[2:], "give --tpm, --input-tokens and --output-tokens, or --from-usage"),
        ([*SEED_COMPLEX[:6], "--max-tokens", "100"], "Workload.output_tokens (300) must be <="),
        ([*SEED_COMPLEX, "--peak-to-average", "0.5"], "Workload.peak_to_average must be >= 1"),
        ([*SEED_COMPLEX, "--slo-ttft-p95", "1"], "a latency objective needs a performance model"),
        ([*SEED_COMPLEX, "--target-users", "2e9"], "target users must be between 1 and"),
    ],
)
def test_bad_values_print_one_line_and_exit_2(
    argv: list[str], text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(argv) == 2
    assert text in one_line_error(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["--tpm", "lots", *SEED_COMPLEX[2:]], "argument --tpm: 'lots': use a number above 0"),
        (["--tpm", "0", *SEED_COMPLEX[2:]], "argument --tpm: '0': use a number above 0"),
        ([*SEED_COMPLEX, "--tpd", "nan"], "argument --tpd: 'nan': use a number above 0"),
        ([*SEED_COMPLEX, "--target-users", "-4"], "argument --target-users: '-4'"),
        ([*SEED_COMPLEX, "--think-time-s", "3"], "not allowed with argument"),
    ],
)
def test_argument_errors_print_one_line_and_exit_2(
    argv: list[str], text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(argv) == 2
    assert text in one_line_error(capsys.readouterr().err)


@pytest.fixture
def fake_model_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand in for ``capacity.fitting.CapacityModel`` with a fake loader."""
    import capacity.fitting

    class CapacityModel:
        @staticmethod
        def load(path: Path) -> FakeModel:
            if not Path(path).exists():
                raise FileNotFoundError(f"no such model file: {path}")
            return FakeModel(ttft_per_inflight_s=0.02)

    monkeypatch.setattr(capacity.fitting, "CapacityModel", CapacityModel)


@pytest.mark.usefixtures("fake_model_module")
def test_model_and_slo_add_the_latency_constraint_and_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_file = tmp_path / "model.json"
    model_file.write_text(json.dumps({"format": MODEL_FORMAT}), encoding="utf-8")
    argv = ["--tpm", "10000000", "--input-tokens", "43", "--output-tokens", "350",
            "--max-tokens", "1024", "--think-time-s", "30", "--peak-to-average", "1.5",
            "--model", str(model_file), "--slo-ttft-p95", "1.5",
            "--target-users", "300"]  # fmt: skip
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert binding_row(out).startswith("│ latency / SLO ")
    assert "Predicted at that load: p95 TTFT 1.5 s" in out
    assert "Feasible: no" in out and "client-side concurrency cap" in out


def test_missing_or_foreign_model_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    absent = tmp_path / "absent.json"
    assert main(["plan", *SEED_COMPLEX, "--model", str(absent)]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"error: {absent}: cannot read") and "— check the path" in line
    notes = tmp_path / "notes.json"
    notes.write_text('{"hello": "world"}', encoding="utf-8")
    assert main(["plan", *SEED_COMPLEX, "--model", str(notes)]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"error: {notes}: not a performance model" in line
    assert "— pass a model.json from `llmcap fit` or a twin.json from `llmcap twin fit`" in line


MANTLE = ["--endpoint", "mantle", "--input-tpm", "100000", "--output-tpm", "20000",
          "--input-tokens", "500", "--output-tokens", "300", "--max-tokens", "1000",
          "--cache-read-tokens", "2000", "--model-id", "openai.gpt-oss-120b-1:0"]  # fmt: skip


def test_mantle_plan_names_both_quotas_and_asks_for_both(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run([*MANTLE, "--target-users", "500", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["endpoint"] == "mantle" and doc["tpm"] is None
    assert doc["plan"]["binding"] == "output_tpm"  # 20,000 / 300 < 100,000 / 500
    assert [a["kind"] for a in doc["asks"]] == ["input_tpm", "output_tpm"]
    assert all(a["code"] is None for a in doc["asks"])
    assert run(MANTLE) == 0
    out = capsys.readouterr().out
    assert "Bedrock Mantle input tokens per minute for gpt-oss-120b (code not published)" in out
    assert binding_row(out).startswith("│ output tokens per minute (sustained) ")


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["--endpoint", "mantle", "--input-tpm", "1000", "--input-tokens", "5",
          "--output-tokens", "5", "--max-tokens", "10"], "give --input-tpm and --output-tpm"),
        ([*SEED_COMPLEX, "--reserved-input-tpm", "50000", "--reserved-output-tpm", "20000"],
         "Quota.reserved_input_tpm must be >= 100,000"),
        ([*SEED_COMPLEX, "--service-tier", "gold"], "invalid choice: 'gold'"),
    ],
)  # fmt: skip
def test_bad_endpoint_tier_and_reserved_inputs_are_one_line(
    argv: list[str], text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(argv) == 2
    assert text in one_line(capsys.readouterr().err)


def test_reserved_capacity_plan_for_a_reserved_tier_workload(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [*SEED_COMPLEX, "--reserved-input-tpm", "100000", "--reserved-output-tpm", "10000",
            "--service-tier", "reserved", "--json"]  # fmt: skip
    assert run(argv) == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    # Reserved: min(100,000 / 600, 10,000 / 300) = 33.3 req/min, plus 10,000 / 900 on demand.
    assert plan["reserved_requests_per_min"] == pytest.approx(10_000 / 300)
    assert plan["requests_per_min_by_constraint"]["tpm"] == pytest.approx(
        10_000 / 300 + 10_000 / 900
    )

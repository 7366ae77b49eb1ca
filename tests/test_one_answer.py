"""One question, one answer: the same quota, workload, model and target asked through the Python
API, ``llmcap plan --json`` and ``llmcap report``'s JSON give the same users today, the same TPM
to request and the same "users at the requested quota, limited by" — with the default
objective, with one the user gives and with none — and each names the objective it used.
(The app's pages are held to the same answer in tests/app; the demo in tests/llmcap.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from capacity import Objective, Quota, Workload, answer, objective
from capacity.fitting import CapacityModel, fit_capacity
from capacity.records import SyntheticPrompt, synthetic_records
from llmcap.cli import main

LLAMA = "us.meta.llama3-3-70b-instruct-v1:0"
TARGET = 2_000


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, CapacityModel]:
    """A run of records (two prompt sizes, closed loop) and the model fitted on it."""
    folder = tmp_path_factory.mktemp("one-answer")
    run = folder / "run"
    run.mkdir()
    prompts = [SyntheticPrompt("small", 43), SyntheticPrompt("large", 3000, ttft_s=0.5)]
    records: pd.DataFrame = synthetic_records(
        prompts, levels=(1, 10, 20, 40), requests_per_level=120, model_id=LLAMA
    )
    records.to_parquet(run / "records.parquet")
    model = fit_capacity(records, n_boot=20)
    return run, model.save(folder / "model.json"), model


CASES: dict[str, tuple[list[str], dict[str, Any]]] = {
    "default": ([], {}),
    "given": (["--slo-ttft-p95", "0.9"], {"ttft_p95_s": 0.9}),
    "none": (["--no-slo"], {"use_default": False}),
}


def _workload(model: CapacityModel) -> Workload:
    """The largest measured prompt (the report's default), 350-token answers, 30 s think time."""
    large = max(model.prompts, key=lambda p: p.input_tokens)
    out = large.output_tokens
    return Workload(large.input_tokens, out, max(out, 350.0), think_time_s=30.0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_api_plan_and_report_give_one_answer(
    case: str,
    evidence: tuple[Path, Path, CapacityModel],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run, model_path, model = evidence
    flags, options = CASES[case]
    workload = _workload(model)
    goal: Objective = objective(model, workload.prompt_tokens, **options)
    api = answer(Quota(600_000, model_id=LLAMA), workload, model, goal, TARGET)
    assert api.request is not None
    assert goal.source == {"default": "default", "given": "given", "none": "none"}[case]

    tokens = ["--input-tokens", repr(workload.input_tokens), "--output-tokens",
              repr(workload.output_tokens), "--max-tokens", repr(workload.max_tokens)]  # fmt: skip
    argv = ["plan", "--tpm", "600000", "--model-id", LLAMA, "--model", str(model_path),
            "--think-time-s", "30", "--target-users", str(TARGET), "--json",
            *tokens, *flags]  # fmt: skip
    assert main(argv) == 0
    plan = json.loads(capsys.readouterr().out)

    out = tmp_path / "report"
    argv = ["report", str(run), "--model", str(model_path), "--tpm", "600000",
            "--model-id", LLAMA, "--region", "us-east-1", "--target-users", str(TARGET),
            "--use-case", "Support assistant", "--format", "json", "-o", str(out),
            *flags]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    report = json.loads((out / "quota_request.json").read_text())

    text = goal.describe()
    assert plan["objective"]["text"] == report["objective"] == text
    assert plan["users_today"] == api.users_today == int(report["users_today"] + 1e-9)
    assert plan["tpm"] == api.tpm == {a["kind"]: a["desired"] for a in report["asks"]}["tpm"]
    assert plan["users_at_request"] == api.users_at_request
    assert int(report["users_requested"] + 1e-9) == api.users_at_request
    assert plan["limited_by_at_request"] == api.limited_by_at_request
    assert report["binding_requested"] == api.limited_by_at_request
    assert plan["headroom_delivered"] == pytest.approx(api.headroom_delivered)
    assert report["headroom_delivered"] == pytest.approx(api.headroom_delivered)


@pytest.mark.parametrize("rule", ["bucket", "window"])
def test_from_traffic_the_api_plan_and_report_give_one_tpm(
    rule: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """From a trace scaled to the target, ``llmcap plan --from-trace --json``, ``llmcap report
    --from-trace`` (its ask, its request and its replay) and the Python API ask one TPM: the
    replay's under the rule named (the app is held to it in tests/app/test_traffic_pages.py)."""
    from capacity.report import build_report, measure_traffic
    from capacity.usage import traffic_template

    source = ["--from-trace", "azure-conv-2023", "--model-id", LLAMA, "--trace-users", "100",
              "--target-users", "40", "--tpm", "100000", "--quota-rule", rule]  # fmt: skip
    assert main(["plan", *source, "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    out = tmp_path / "report"
    argv = ["report", *source, "--region", "us-east-1", "--use-case", "Support assistant",
            "--format", "json", "-o", str(out)]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    report = json.loads((out / "quota_request.json").read_text())
    quota = Quota(100_000, model_id=LLAMA, rule=rule)  # type: ignore[arg-type]
    traffic = measure_traffic(
        traffic_template("azure-conv-2023", model_id=LLAMA), quota, target_users=40,
        trace_users=100,
    )  # fmt: skip
    api = build_report(use_case="Support assistant", region="us-east-1", current=quota,
                       target_users=40, traffic=traffic, figures=False)  # fmt: skip
    tpm = plan["tpm"]
    assert report["request"]["tpm"] == report["replay"]["tpm"] == tpm
    assert {a["kind"]: a["desired"] for a in report["asks"]}["tpm"] == tpm
    assert api.request["tpm"] == tpm and report["replay"]["rule"] == rule
    assert report["users_today"] == api.users_today
    assert report["replay"]["tpm_other_rule"] == plan["models"][LLAMA]["tpm_other_rule"]

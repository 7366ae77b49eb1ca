"""``llmcap summarize`` and ``llmcap fit`` through their argparse handlers."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from capacity.fitting import CapacityModel
from capacity.records import SyntheticPrompt, synthetic_records
from llmcap.cli import main


def run(argv: list[str]) -> int:
    return main(argv)  # the console script's handler: errors become one line


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("runs") / "run-1"
    path.mkdir()
    prompts = (SyntheticPrompt("small", 43), SyntheticPrompt("large", 6027, kappa=4.6e-4))
    synthetic_records(prompts, requests_per_level=150, throttle_rate=0.02).to_parquet(
        path / "records.parquet"
    )
    return path


def test_summarize_prints_seed_tables_and_writes_csv(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_csv = tmp_path / "summary.csv"
    assert run(["summarize", str(run_dir), "--csv", str(out_csv)]) == 0
    out = capsys.readouterr().out
    for text in ("Median TPS", "Response", "TTFT p50", "small vs large", "Difference"):
        assert text in out
    assert len(pd.read_csv(out_csv)) == 14


def test_fit_prints_parameters_knees_warnings_and_saves(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_path = tmp_path / "model.json"
    argv = ["fit", str(run_dir), "-o", str(model_path), "--slo-ttft-p95", "0.5", "--boot", "20"]
    assert run(argv) == 0
    out = capsys.readouterr().out
    for text in ("USL fits vs measured", "λ", "κ", "N*", "Knees", "SLO limit", "warning:", "wrote"):
        assert text in out, text
    model = CapacityModel.load(model_path)
    assert [p.prompt_label for p in model.prompts] == ["small", "large"]
    assert json.loads(model_path.read_text())["format"] == "llmcap.capacity-model"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["summarize", "nowhere"], "nowhere: no such file or directory"),
        (["fit", "nowhere"], "nowhere: no such file or directory"),
        (["fit", "RUN", "--slo-ttft-p95", "-1"], "--slo-ttft-p95: '-1': use a number above 0"),
        (["summarize", "RUN", "--csv", "/nonexistent/dir/x.csv"], "cannot write"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(
    run_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert run([str(run_dir) if a == "RUN" else a for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err

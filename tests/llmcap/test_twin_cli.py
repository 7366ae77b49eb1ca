"""``llmcap twin fit|predict``, ``llmcap probe`` and ``plan --model twin.json``: results, and
one-line errors with exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capacity.report import QuotaRequestReport
from llmcap.cli import main
from tests.capacity.serving.twin_probe import probe_records, save_probe


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The probe's run directory and its twin.json (in a tmp dir)."""
    return save_probe(tmp_path_factory.mktemp("twin"))


@pytest.fixture(scope="module")
def twin_file(probe: tuple[Path, Path]) -> Path:
    return probe[1]


def one_line_error(capsys: pytest.CaptureFixture[str], *words: str) -> None:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, err


def test_predict_prints_levels_with_bands_and_flags_extrapolation(
    twin_file: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plot = tmp_path / "twin.png"
    argv = ["twin", "predict", str(twin_file), "--levels", "2,24", "--prompt", "large",
            "--samples", "3", "--batches", "15", "--plot", str(plot)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "EXTRAPOLATED" in out and "note: extrapolated" in out
    assert plot.stat().st_size > 10_000
    assert main([*argv[:-2], "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [d["extrapolated"] for d in doc] == [False, True]
    low, est, high = (doc[1]["values"]["tps_p50"][k] for k in ("low", "estimate", "high"))
    assert low <= est <= high


def test_predict_with_a_quota_reports_throttling(
    twin_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["twin", "predict", str(twin_file), "--levels", "8", "--prompt", "3000",
            "--samples", "0", "--batches", "10", "--tpm", "60000"]  # fmt: skip
    assert main(argv) == 0
    assert "throttled by the quota" in capsys.readouterr().out


def test_plan_reads_a_twin(twin_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "--tpm", "400000", "--input-tokens", "3000", "--output-tokens", "60",
            "--max-tokens", "60", "--think-time-s", "10", "--json"]  # fmt: skip
    argv += ["--model", str(twin_file)]
    assert main(argv) == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert plan["users"] > 0


def test_report_reads_a_twin(
    probe: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, twin = probe
    out = tmp_path / "report"
    argv = ["report", str(run), "--model", str(twin), "--tpm", "600000", "--region", "us-east-1",
            "--target-users", "2000", "--use-case", "Agent assist", "--format", "md,json",
            "-o", str(out)]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert "large prompt: today" in capsys.readouterr().out  # the largest measured prompt
    report = QuotaRequestReport.from_json((out / "quota_request.json").read_text())
    assert report.workload["input_tokens"] == pytest.approx(3000)  # from the run's records
    assert report.predictor is not None and report.predictor["kind"] == "twin"
    markdown = (out / "quota_request.md").read_text()
    method = markdown.split("## 10. Method", 1)[1]
    assert "### Performance model" in method and "calibrated digital twin" in method
    assert "- replicas: " in method and "- alpha_in_s = " in method  # replicas, coefficients
    assert "- max_running: only a lower bound" in method  # what the probe could not pin down
    assert "- capacity limit: not seen" in method and "- model error (σ, log scale)" in method
    assert "the probe cannot see where this endpoint saturates" in method  # at the target
    assert "- extrapolated: " in method  # the target lies beyond the probe
    assert "extrapolated from the twin's serving model" in markdown
    assert "from the calibrated twin at" in markdown  # the latency formula names its source
    assert "probe closer to the target" in markdown and "calibrate a twin" not in markdown
    assert "calibrated digital twin" in (out / "quota_request_case.txt").read_text()
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["quota_ask.png", "scaling.png"]


def test_report_refuses_a_json_that_is_no_model(
    probe: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.json"
    notes.write_text('{"meeting": "Tuesday"}', encoding="utf-8")
    argv = ["report", str(probe[0]), "--model", str(notes), "--tpm", "600000",
            "--region", "us-east-1", "--target-users", "10", "--use-case", "x",
            "-o", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 2
    one_line_error(capsys, f"error: {notes}: not a performance model", "— pass a model.json")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["twin", "predict", "missing.json", "--levels", "5"], ["missing.json", "cannot read"]),
        (["twin", "predict", "{twin}", "--levels", "five"], ["--levels", "whole numbers"]),
        (["twin", "predict", "{twin}", "--levels", "5", "--prompt", "huge"], ["huge", "small"]),
        (["twin", "predict", "{twin}", "--levels", "5", "--mode", "concurrency", "--tpm", "9"],
         ["--tpm", "open-loop"]),
        (["twin", "predict", "{twin}"], ["--levels"]),
        (["twin", "fit", "no/such/run"], ["no/such/run"]),
        (["probe", "--dry-run"], ["--budget-tpm"]),
        (["probe", "--budget-tpm", "1000", "--dry-run"], ["1000", "raise it"]),
        (["probe", "--budget-usd", "0.0001", "--dry-run"], ["--budget-usd", "raise it"]),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], words: list[str], twin_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(twin_file) if a == "{twin}" else a for a in argv]
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main(argv))
    assert exc.value.code == 2
    one_line_error(capsys, *words)


def test_fit_names_what_the_probe_lacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "one-level.parquet"
    probe_records(levels=(4,), batches=4).to_parquet(path)
    assert main(["twin", "fit", str(path), "-o", str(tmp_path / "t.json")]) == 2
    one_line_error(capsys, "one load level", "--levels")


def test_probe_plan_fits_the_quota_and_prints_its_cost(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "--budget-tpm", "600000", "--dry-run", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["tokens"] == sum(level["tokens"] for level in doc["levels"])
    assert max(level["tokens"] for level in doc["levels"]) <= 0.9 * 600_000
    for prompt in ("small", "large"):
        assert len({lv["level"] for lv in doc["levels"] if lv["prompt"] == prompt}) == 3
    assert main(["probe", "--budget-tpm", "600000", "--budget-usd", "0.65", "--dry-run"]) == 0
    out = capsys.readouterr().out
    cost = float(out.split("about $")[1].split()[0])
    assert cost <= 0.65


def test_plan_on_a_twin_names_its_model_scope_and_quota_code(
    twin_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from capacity.serving import load_model_table

    argv = ["plan", "--tpm", "400000", "--input-tokens", "3000", "--output-tokens", "60",
            "--max-tokens", "60", "--think-time-s", "10", "--model", str(twin_file)]  # fmt: skip
    assert main(argv) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    model_id = "us.meta.llama3-3-70b-instruct-v1:0"  # what the probe's records measured
    code = next(q.code for q in load_model_table().quotas_for(model_id)
                if q.kind == "tpm" and q.scope == "cross-region")  # fmt: skip
    assert "unnamed model" not in out
    assert f"({code}), model {model_id}" in out
    # What the twin knows and cannot see, at the plan's operating point.
    assert "Performance model: The latency curve came from a calibrated digital twin" in out
    assert "capacity limit: not seen" in out and "model error (σ, log scale)" in out
    assert main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["predictor"]["kind"] == "twin"
    assert doc["plan"]["quota"]["model_id"] == model_id
    assert doc["plan"]["quota"]["scope"] == "cross-region"


def test_fit_on_published_aggregates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import csv

    from capacity.serving._published import COLUMNS
    from tests.capacity.serving.test_published import aggregates
    from tests.capacity.serving.twin_probe import TRUTH

    table = tmp_path / "sweeps.csv"
    with table.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, COLUMNS)
        writer.writeheader()
        for cell in aggregates(TRUTH, (1, 4, 16)):
            o = cell.observed
            writer.writerow({
                "sweep": "known", "source": "a test", "model": "some engine",
                "serving": "simulated", "mode": "concurrency", "level": cell.level,
                "input_tokens": cell.input_tokens, "output_tokens": cell.output_tokens,
                "statistic": "mean", "ttft_s": o["ttft_mean"], "itl_s": o["tpot_mean"],
                "system_output_tps": o["system_tps"], "e2e_s": o["ttlt_mean"],
            })  # fmt: skip
    out = tmp_path / "twin.json"
    argv = ["twin", "fit", "--published", str(table), "--max-level", "4", "--replicas", "2",
            "--workers", "1", "-o", str(out)]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "calibrated on published aggregates: known" in text and "levels ≤ 4" in text
    assert "ITL mean" in text and "system" in text  # means compared with means
    twin = json.loads(out.read_text())["twin"]
    assert twin["meta"]["source"]["sweep"] == "known" and twin["model_id"] is None
    assert [c["level"] for c in twin["cells"]] == [1, 4]
    for bad, words in (
        ([str(table), "--published", str(table)], ["not both"]),
        (["--sweep", "known"], ["either runs or --published"]),
        (["--published", str(table), "--max-level", "0"], ["--max-level: '0'"]),
    ):
        assert main(["twin", "fit", *bad]) == 2
        one_line_error(capsys, *words)

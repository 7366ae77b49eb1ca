"""Every failure visible, every error one line: the rows of issue 13, one test each."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import (
    ClientError,
    NoCredentialsError,
    ProfileNotFound,
    UnauthorizedSSOTokenError,
)

from capacity.records import SyntheticPrompt, synthetic_records
from emulator import Emulator
from emulator.runner import free_port
from llmcap.cli import main
from llmcap.errors import UserError, describe

ROOT = Path(__file__).resolve().parents[2]


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


@pytest.fixture
def no_aws_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An AWS configuration with no profiles and no credentials."""
    empty = tmp_path / "aws-empty"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):  # fmt: skip
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_missing_aws_profile_is_one_line_naming_it(
    no_aws_config: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs"
    argv = ["bench", "--aws-profile", "my-profile", "--region", "us-west-2", "--out", str(out)]
    assert main(argv) == 2
    line = one_line(capsys.readouterr().err)
    assert "'my-profile'" in line and "aws configure list-profiles" in line
    assert not out.exists()  # checked before a run directory exists


def test_no_credentials_for_bedrock_is_one_line(
    no_aws_config: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs"
    assert main(["bench", "--region", "us-west-2", "--out", str(out)]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("error: no AWS credentials found — ") and "--aws-profile" in line
    assert not out.exists()


@pytest.mark.parametrize("argv", [["--tpm", "-5"], ["--rpm", "0"], ["--port", "99999"]])
def test_emulate_rejects_bad_numbers_in_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["emulate", *argv]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"error: llmcap emulate: argument {argv[0]}: ")
    assert line.endswith("— see `llmcap emulate --help`")


def test_emulate_prints_the_port_it_bound() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmcap", "emulate", "--profile", "fast", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = first.split(" on ")[1].strip()
        port = int(url.rsplit(":", 1)[1])
        assert port != 0
        with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
            assert json.loads(r.read())["status"] == "ok"
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_demo_checks_every_argument_before_the_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    for flag, value in (("--tpm", "-1"), ("--rpm", "0"), ("--target-users", "x")):
        assert main(["demo", "--quick", "--out", str(out), flag, value]) == 2
        assert one_line(capsys.readouterr().err).startswith(f"error: llmcap demo: argument {flag}")
    assert not out.exists()  # nothing ran


def test_unknown_prompt_starts_nothing_and_leaves_no_run_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "--prompt", "medium", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "built-in emulator" not in err  # the emulator was not started
    assert one_line(err) == (
        "error: prompt 'medium' is neither small, large, synthetic:N nor an existing file"
    )
    assert not (tmp_path / "runs").exists()


def test_a_sweep_that_fails_after_creating_its_run_dir_removes_it(tmp_path: Path) -> None:
    from bench import Endpoint, SweepConfig, run_sweep

    config = SweepConfig(
        endpoint=Endpoint(endpoint_url="http://127.0.0.1:9", client="nope"), prompt="small",
        levels=(1,), batches=1, out=tmp_path, progress=False,
    )  # fmt: skip
    with pytest.raises(ValueError, match="--client 'nope'"):
        run_sweep(config)
    assert list(tmp_path.iterdir()) == []


def test_every_request_failing_stops_after_the_first_batch_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    argv = ["bench", "--endpoint-url", dead, "--prompt", "small", "--levels", "3,5",
            "--batches", "50", "--interval-s", "0.05",
            "--out", str(tmp_path), "--run-id", "r"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "3 of 3 requests did not succeed" in err
    assert 'error ConnectionRefusedError ×3 (first: "' in err  # count by code, first message
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: stopped: all 3 requests of the first batch failed")
    assert "--keep-going" in last and "Traceback" not in err
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta["status"] == "failed" and "ConnectionRefusedError" in meta["failure"]
    rows = (tmp_path / "r" / "records.jsonl").read_text().splitlines()
    assert len(rows) == 3  # the first batch only: the rest of the sweep was not sent


def test_a_bad_model_id_fails_the_first_batch_with_the_endpoints_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Emulator("fast") as emu:
        argv = ["bench", "--endpoint-url", emu.url, "--model-id", "no-such-model",
                "--prompt", "small", "--levels", "2", "--batches", "20", "--interval-s", "0.05",
                "--out", str(tmp_path)]  # fmt: skip
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert "ValidationException ×2" in err and "model identifier is invalid" in err


def test_keep_going_measures_a_failing_endpoint_anyway(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    argv = ["bench", "--quiet", "--endpoint-url", dead, "--prompt", "small", "--levels", "2",
            "--batches", "3", "--interval-s", "0.02", "--keep-going", "--out", str(tmp_path),
            "--run-id", "r"]  # fmt: skip
    assert main(argv) == 0
    assert len((tmp_path / "r" / "records.jsonl").read_text().splitlines()) == 6


def test_live_lines_show_failures_by_code_with_the_first_message() -> None:
    from bench.progress import LevelState

    state = LevelState("small", 5, 5)
    state.add("ok", 0.1, 50.0)
    for _ in range(3):
        state.add("error", float("nan"), float("nan"), "HTTP403", "The security token is invalid")
    state.add("throttled", float("nan"), float("nan"), "ThrottlingException", "Too many")
    assert state.failures_by_code() == (
        "HTTP403 ×3: The security token is invalid; ThrottlingException ×1: Too many"
    )
    assert state.failures_by_code(messages=False) == "HTTP403 ×3; ThrottlingException ×1"


def test_summarize_of_a_run_without_rows_points_at_run_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run-0"
    run.mkdir()
    (run / "run.json").write_text('{"status": "failed"}')
    (run / "records.jsonl").write_text("")
    for command in ("summarize", "fit"):
        assert main([command, str(run)]) == 2
        line = one_line(capsys.readouterr().err)
        assert f"no requests recorded in {run} (the sweep failed before sending: see " in line


def test_summarize_shows_failures_by_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Emulator("fast", tpm=300) as emu:
        argv = ["bench", "--quiet", "--endpoint-url", emu.url, "--prompt", "small", "--levels",
                "4", "--batches", "3", "--interval-s", "0.02", "--max-tokens", "50",
                "--out", str(tmp_path), "--run-id", "r"]  # fmt: skip
        assert main(argv) == 0
    err = capsys.readouterr().err
    assert "requests did not succeed" in err and "throttled ThrottlingException ×" in err
    assert main(["summarize", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "Failures by code" in out and "ThrottlingException" in out


def test_fit_without_o_saves_into_the_run_dir_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run-1"
    run.mkdir()
    prompts = (SyntheticPrompt("small", 43),)
    synthetic_records(prompts, requests_per_level=60).to_parquet(run / "records.parquet")
    assert main(["fit", str(run), "--boot", "10"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {run / 'model.json'} (-o PATH writes elsewhere)" in out
    assert (run / "model.json").is_file()


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "--levels", "abc"],
        ["bench", "--levels", "0,5"],
        ["bench", "--batches", "-1"],
        ["bench", "--mode", "burst"],
        ["summarize"],
        ["fit", "RUN", "--boot", "x"],
        ["nonsense"],
    ],
)
def test_argument_errors_are_one_line_with_the_fix(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    line = one_line(capsys.readouterr().err)
    prog = "llmcap" if argv[0] == "nonsense" else f"llmcap {argv[0]}"
    assert line.startswith(f"error: {prog}: ") and line.endswith(f"— see `{prog} --help`")


def test_plan_argument_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--tpm", "many"]) == 2
    assert one_line(capsys.readouterr().err).startswith("error: llmcap plan: argument --tpm")


def test_levels_error_says_how_to_write_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--levels", "abc"]) == 2
    assert "'abc': write positive levels like 1,5,10" in capsys.readouterr().err


def test_streamlit_keeps_statistics_off_and_listens_on_loopback() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False
    assert config["server"]["address"] == "127.0.0.1"


def _client_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "ConverseStream")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ProfileNotFound(profile="dev"), "AWS profile 'dev' not found — "),
        (NoCredentialsError(), "no AWS credentials found — "),
        (UnauthorizedSSOTokenError(), "run `aws sso login --profile dev`"),
        (
            _client_error(
                "AccessDeniedException",
                "User: arn:aws:iam::123456789012:user/x is not authorized to perform: "
                "bedrock:InvokeModelWithResponseStream on resource: arn:aws:bedrock:...",
            ),
            "may not call bedrock:InvokeModelWithResponseStream — grant "
            "bedrock:InvokeModelWithResponseStream",
        ),
        (FileNotFoundError(2, "No such file or directory", "model.json"), "model.json not found"),
        (PermissionError(13, "Permission denied", "/runs"), "permission denied on /runs — "),
        (UserError("the thing broke", "do this"), "error: the thing broke — do this"),
    ],
)
def test_known_failures_become_one_line_with_the_fix(exc: BaseException, expected: str) -> None:
    failure = describe(exc, aws_profile="dev")
    assert failure.code == 2 and failure.line.startswith("error: ")
    assert expected in failure.line and "\n" not in failure.line


def test_ctrl_c_and_bugs_are_one_line_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert describe(KeyboardInterrupt()).code == 130
    from bench.sweep import SweepFailed, SweepInterrupted

    stopped = describe(SweepInterrupted(Path("runs/r")))
    assert stopped.code == 130 and "llmcap bench --resume runs/r" in stopped.line
    failed = describe(SweepFailed(Path("runs/r"), "all 3 requests of the first batch failed"))
    assert failed.code == 2 and failed.line.startswith("error: stopped: all 3 requests")
    bug = describe(ZeroDivisionError("division by zero"))
    assert bug.code == 1 and "--debug" in bug.line

    from llmcap import cli

    def boom(_args: object) -> int:
        raise KeyboardInterrupt

    args = cli.build_parser().parse_args(["summarize", "x"])
    args.func = boom
    monkeypatch.setattr(cli, "build_parser", lambda: _Fixed(args))
    assert cli.main(["summarize", "x"]) == 130
    assert one_line(capsys.readouterr().err) == "interrupted (Ctrl-C)"


class _Fixed:
    def __init__(self, args: object) -> None:
        self.args = args

    def parse_args(self, _argv: object) -> object:
        return self.args


def test_unsupported_invoke_model_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bench", "--provider", "bedrock-invoke", "--model-id", "mistral.x",
            "--endpoint-url", "http://127.0.0.1:9", "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("error: ") and "mistral.x" in line and "bug" not in line
    assert list(tmp_path.iterdir()) == []  # no run directory left behind


def test_the_checkout_guard_sees_new_files(tmp_path: Path) -> None:
    from tests.conftest import checkout_files

    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "ignored").write_text("")
    before = checkout_files(tmp_path)
    (tmp_path / "runs" / "20260101T000000Z-abcdef").mkdir(parents=True)
    (tmp_path / "runs" / "20260101T000000Z-abcdef" / "run.json").write_text("{}")
    assert checkout_files(tmp_path) - before == {"runs/20260101T000000Z-abcdef/run.json"}


def test_fast_failures_do_not_stop_a_first_batch_that_partly_succeeds(tmp_path: Path) -> None:
    """Injected 500s come back at once while ok requests stream: the first batch is judged by
    the requests sent first, not the first to finish."""
    from capacity.serving import FaultConfig, load_profile

    profile = load_profile("fast").with_overrides(faults=FaultConfig(error_rate={"500": 0.5}))
    with Emulator(profile) as emu:
        argv = ["bench", "--quiet", "--endpoint-url", emu.url, "--prompt", "small",
                "--levels", "10", "--batches", "3", "--interval-s", "0.05", "--max-tokens", "100",
                "--out", str(tmp_path), "--run-id", "r"]  # fmt: skip
        assert main(argv) == 0
    assert len((tmp_path / "r" / "records.jsonl").read_text().splitlines()) == 30


def test_the_live_table_shows_failures_by_code_and_the_first_message() -> None:
    import io

    from rich.console import Console

    from bench.progress import LevelState, SweepProgress

    progress = SweepProgress()
    buffer = io.StringIO()
    progress.console = Console(file=buffer, width=250, force_terminal=False)
    state = LevelState("small", 5, 10)
    for _ in range(4):
        state.add("error", float("nan"), float("nan"), "AccessDeniedException", "not authorized")
    progress.current = state
    progress.console.print(progress._table())
    text = buffer.getvalue()
    assert "failures by code" in text and "AccessDeniedException ×4" in text
    assert "small level 5: AccessDeniedException ×4: not authorized" in text


@pytest.mark.parametrize(
    ("reason", "fix"),
    [
        (
            "all 3 requests of the first batch failed (AccessDeniedException ×3: User: arn:aws:"
            "iam::1:user/x is not authorized to perform: bedrock:InvokeModelWithResponseStream)",
            "grant bedrock:InvokeModelWithResponseStream on the model",
        ),
        ("(UnrecognizedClientException ×3: The security token included ...)", "not valid"),
        ("(ExpiredTokenException ×3: The security token has expired)", "aws sso login --profile p"),
        ("(ValidationException ×2: The provided model identifier is invalid.)", "--model-id"),
        ("(ConnectionRefusedError ×3: [Errno 111] Connection refused)", "nothing answered"),
    ],
)
def test_a_failed_first_batch_gets_the_fix_for_its_code(reason: str, fix: str) -> None:
    from llmcap.errors import fix_for_failed_batch

    assert fix in fix_for_failed_batch(reason, aws_profile="p")

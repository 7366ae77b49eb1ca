"""The emulator's newer fault kinds (a 429 storm, slow headers) and ``--fault`` on its command
line, through real clients; each failure is one row with its status and code."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pytest

from bench import Endpoint, SweepConfig, read_jsonl, run_sweep
from capacity.serving import load_profile
from emulator import Emulator
from emulator.cli import add_arguments, with_faults


def faulty(**faults: str) -> Emulator:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    argv = [f"--fault={kind}={rate}" for kind, rate in faults.items()]
    args = parser.parse_args([*argv, "--slow-headers-s", "1.5"])
    profile = with_faults(load_profile("fast"), args.fault, slow_headers_s=args.slow_headers_s)
    return Emulator(profile)


def sweep(url: str, tmp_path: Path, client: str, read_timeout_s: float = 30.0) -> pd.DataFrame:
    config = SweepConfig(
        endpoint=Endpoint(endpoint_url=url, client=client, read_timeout_s=read_timeout_s),
        prompt="small", mode="sequential", levels=(2,), batches=2, max_tokens=20,
        out=tmp_path, progress=False,
    )  # fmt: skip
    return read_jsonl(run_sweep(config) / "records.jsonl")


@pytest.mark.parametrize("client", ["async", "boto3"])
def test_a_429_storm_is_throttled_rows(tmp_path: Path, client: str) -> None:
    with faulty(throttle="1") as emu:
        df = sweep(emu.url, tmp_path, client)
    assert len(df) == 4 and (df.status == "throttled").all()
    assert (df.error_code == "ThrottlingException").all()


@pytest.mark.parametrize("client", ["async", "boto3"])
def test_slow_headers_delay_the_first_token_or_time_out(tmp_path: Path, client: str) -> None:
    with faulty(**{"slow-headers": "1"}) as emu:
        slow = sweep(emu.url, tmp_path / "slow", client)
        cut = sweep(emu.url, tmp_path / "cut", client, read_timeout_s=0.5)
    assert (slow.status == "ok").all()
    assert ((slow.first_token_s - slow.start_s) >= 1.5).all()
    assert (slow.output_tokens == 20).all()  # the tokens waited; none were lost
    assert len(cut) == 4 and (cut.status == "timeout").all()


def test_fault_flags_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="emu")
    add_arguments(parser)
    for bad in ("500=2", "teapot=0.1", "drop"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--fault", bad])
        assert "KIND=RATE" in capsys.readouterr().err
    args = parser.parse_args(["--fault", "503=0.5", "--fault", "drop=0.25"])
    faults = with_faults(load_profile("fast"), args.fault).faults
    assert faults.error_rate == {"503": 0.5} and faults.drop_rate == 0.25

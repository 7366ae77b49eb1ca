"""Every provider against the emulator: tokens, times, server ids, and failures as data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from bench import Endpoint, SweepConfig, run_sweep
from bench.prompts import DATA_DIR
from capacity.records import load_records
from capacity.serving import FaultConfig, load_profile
from emulator import Emulator
from emulator.tokens import count_tokens

SMALL_INPUT = count_tokens((DATA_DIR / "small.txt").read_text().strip()) + 35
CASES = [
    ("bedrock-converse", "async", "us.meta.llama3-3-70b-instruct-v1:0"),
    ("bedrock-converse", "boto3", "us.meta.llama3-3-70b-instruct-v1:0"),
    ("bedrock-invoke", "async", "anthropic.claude-3-haiku-20240307-v1:0"),
    ("bedrock-invoke", "async", "us.meta.llama3-3-70b-instruct-v1:0"),
    ("bedrock-invoke", "async", "us.amazon.nova-lite-v1:0"),
    ("bedrock-invoke", "boto3", "us.amazon.nova-lite-v1:0"),
    ("openai", "async", "us.meta.llama3-3-70b-instruct-v1:0"),
]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with Emulator("fast") as emu:
        yield emu.url


def sweep(url: str, tmp_path: Path, endpoint: Endpoint | None = None, **kw: object) -> pd.DataFrame:
    config = SweepConfig(
        endpoint=endpoint or Endpoint(endpoint_url=url),
        prompt="small",
        mode="sequential",
        levels=(2,),
        batches=2,
        max_tokens=30,
        out=tmp_path,
        progress=False,
        **kw,  # type: ignore[arg-type]
    )
    return load_records(run_sweep(config))  # derived metrics come from capacity


@pytest.mark.parametrize(("provider", "client", "model_id"), CASES)
def test_provider_parses_tokens_and_times(
    url: str, tmp_path: Path, provider: str, client: str, model_id: str
) -> None:
    endpoint = Endpoint(provider=provider, client=client, model_id=model_id, endpoint_url=url)
    df = sweep(url, tmp_path, endpoint)
    assert len(df) == 4
    assert (df.status == "ok").all(), df.error_message.tolist()
    assert (df.output_tokens == 30).all() and not df.tokens_estimated.any()
    assert (df.input_tokens == SMALL_INPUT).all() or provider == "bedrock-invoke"
    assert (df.server_request_id.str.len() > 10).all()
    # fast profile: 20 ms gateway + 2 ms steps → TTFT ~22 ms, ~500 tokens/s
    assert df.ttft_s.between(0.015, 0.5).all()
    assert df.tps.between(100, 700).all()  # fast profile ~500 tok/s; loose for a loaded CI
    assert (df.start_s < df.first_token_s).all() and (df.last_token_s <= df.end_s).all()
    # uniform 2 ms steps: the longest gap between text chunks is at least the mean one (TPOT)
    # and, on a quiet loop, a few steps at most
    assert (df.max_gap_s >= df.tpot_s - 1e-9).all() and (df.max_gap_s < 0.2).all()


def faulty_url(**faults: object) -> Emulator:
    profile = load_profile("fast")
    return Emulator(profile.with_overrides(faults=FaultConfig(**faults)))  # type: ignore[arg-type]


@pytest.mark.parametrize("client", ["async", "boto3"])
def test_throttles_become_throttled_rows(tmp_path: Path, client: str) -> None:
    with Emulator("fast", tpm=200) as emu:  # one request's reservation is 43 + 30 = 73 tokens
        df = sweep(emu.url, tmp_path, Endpoint(endpoint_url=emu.url, client=client))
    assert len(df) == 4
    assert set(df.status) == {"ok", "throttled"}
    assert (df[df.status == "throttled"].error_code == "ThrottlingException").all()


@pytest.mark.parametrize("client", ["async", "boto3"])
def test_mid_stream_throttle_is_a_throttled_row(tmp_path: Path, client: str) -> None:
    with Emulator("fast", tpm=100, throttle="mid-stream") as emu:
        df = sweep(emu.url, tmp_path, Endpoint(endpoint_url=emu.url, client=client))
    throttled = df[df.status == "throttled"]
    assert len(throttled) >= 2
    assert (throttled.error_code == "throttlingException").all()


@pytest.mark.parametrize("client", ["async", "boto3"])
@pytest.mark.parametrize(
    ("faults", "status", "code"),
    [
        ({"midstream_error_rate": 1.0}, "error", "modelStreamErrorException"),
        ({"error_rate": {"503": 1.0}}, "error", "ServiceUnavailableException"),
        ({"drop_rate": 1.0}, "error", None),
        ({"stall_rate": 1.0, "stall_s": 2.0}, "timeout", None),
    ],
)
def test_faults_become_rows_and_never_escape(
    tmp_path: Path, client: str, faults: dict[str, object], status: str, code: str | None
) -> None:
    with faulty_url(**faults) as emu:
        endpoint = Endpoint(endpoint_url=emu.url, client=client, read_timeout_s=0.5)
        df = sweep(emu.url, tmp_path, endpoint)
    assert len(df) == 4
    assert (df.status == status).all(), df[["status", "error_code", "error_message"]]
    if code is not None:
        assert (df.error_code == code).all()
    if "midstream_error_rate" in faults:  # tokens arrived before the failure
        assert df.first_token_s.notna().all()


def test_openai_429_is_a_throttled_row(tmp_path: Path) -> None:
    with Emulator("fast", tpm=100) as emu:
        endpoint = Endpoint(provider="openai", endpoint_url=emu.url + "/v1")
        df = sweep(emu.url, tmp_path, endpoint)
    assert (df.status == "throttled").sum() >= 2
    assert (df[df.status == "throttled"].error_code == "rate_limit_exceeded").all()


def test_openai_errors_and_timeouts(tmp_path: Path) -> None:
    with faulty_url(stall_rate=1.0, stall_s=2.0) as emu:
        endpoint = Endpoint(provider="openai", endpoint_url=emu.url, read_timeout_s=0.5)
        df = sweep(emu.url, tmp_path, endpoint)
    assert (df.status == "timeout").all()


def test_bad_model_for_invoke_is_a_clear_error(tmp_path: Path, url: str) -> None:
    endpoint = Endpoint(provider="bedrock-invoke", model_id="mistral.x", endpoint_url=url)
    with pytest.raises(ValueError, match="bedrock-invoke has no request body"):
        sweep(url, tmp_path, endpoint)

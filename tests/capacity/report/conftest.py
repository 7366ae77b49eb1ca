"""Shared evidence for the report tests: synthetic runs of two prompt sizes (the endpoint's
ground truth is known), a fitted model, a run directory on disk with a planted fake AWS key."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from capacity.fitting import CapacityModel, fit_capacity
from capacity.planning import Quota, Workload
from capacity.records import SyntheticPrompt, synthetic_records

LLAMA = "us.meta.llama3-3-70b-instruct-v1:0"
FAKE_ACCESS_KEY = "AKIAFAKEKEY7EXAMPLE9"
FAKE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYFAKESECRET"
FAKE_TOKEN = "FwoGZXIvYXdzEFAKESESSIONTOKENplanted0123456789"
SECRETS = (FAKE_ACCESS_KEY, FAKE_SECRET, FAKE_TOKEN)


def make_records() -> pd.DataFrame:
    """Closed-loop runs at six levels, 43- and 3,000-token prompts, 2 % throttled."""
    prompts = [
        SyntheticPrompt("small", 43, kappa=5e-6),
        SyntheticPrompt("large", 3000, kappa=5e-6, ttft_s=0.5),
    ]
    return synthetic_records(
        prompts,
        levels=(1, 10, 20, 30, 40, 50),
        requests_per_level=150,
        throttle_rate=0.02,
        model_id=LLAMA,
        run_id="synthetic-run",
    )


@pytest.fixture(scope="session")
def records() -> pd.DataFrame:
    return make_records()


@pytest.fixture(scope="session")
def model(records: pd.DataFrame) -> CapacityModel:
    return fit_capacity(records, n_boot=20)


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory, records: pd.DataFrame) -> Path:
    """A run directory as ``llmcap bench`` writes it, whose run.json holds a planted key."""
    folder = tmp_path_factory.mktemp("runs") / "20260101T000000Z-planted"
    folder.mkdir()
    records.to_parquet(folder / "records.parquet")
    config = {
        "endpoint": {"model_id": LLAMA, "region": "us-east-1"},
        "aws_access_key_id": FAKE_ACCESS_KEY,
        "aws_secret_access_key": FAKE_SECRET,
        "aws_session_token": FAKE_TOKEN,
    }
    (folder / "run.json").write_text(json.dumps({"tool": "llmcap", "config": config}))
    return folder


@pytest.fixture()
def planted_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake AWS credentials in the environment, as a developer's shell would have them."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", FAKE_TOKEN)


CURRENT = Quota(tpm=600_000, rpm=800, model_id=LLAMA)
WORKLOAD = Workload(
    input_tokens=43, output_tokens=350, max_tokens=350, think_time_s=30.0, peak_to_average=1.5
)

"""Each load mode does what it says, judged from the records it writes (emulator over loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench import Endpoint, SweepConfig, run_sweep
from bench.strategies import LevelPlan, arrival_offsets
from capacity.records import load_records
from emulator import Emulator


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with Emulator("fast") as emu:
        yield emu.url


def sweep(url: str, tmp_path: Path, **kw: object) -> pd.DataFrame:
    config = SweepConfig(
        endpoint=Endpoint(endpoint_url=url),
        prompt="small",
        max_tokens=20,
        out=tmp_path,
        progress=False,
        **kw,  # type: ignore[arg-type]
    )
    return load_records(run_sweep(config))  # derived metrics come from capacity


def test_interval_writes_batches_times_level_rows_on_schedule(url: str, tmp_path: Path) -> None:
    df = sweep(url, tmp_path, mode="interval", levels=(1, 4), batches=5, interval_s=0.1)
    assert len(df) == 5 * 1 + 5 * 4
    assert (df.status == "ok").all()
    for _, level in df.groupby("level"):
        planned = level.groupby("batch").scheduled_s.first().to_numpy()
        assert np.diff(planned) == pytest.approx([0.1] * 4, abs=1e-6)
        assert level.lateness_s.max() < 0.1  # launched on schedule (loose bound for CI)
        assert level.lateness_s.median() < 0.02


def test_sequential_batches_never_overlap(url: str, tmp_path: Path) -> None:
    df = sweep(url, tmp_path, mode="sequential", levels=(3,), batches=4)
    assert len(df) == 12
    spans = df.groupby("batch").agg(first=("start_s", "min"), last=("end_s", "max"))
    assert (spans["first"].to_numpy()[1:] >= spans["last"].to_numpy()[:-1]).all()


def test_concurrency_mode_keeps_the_level_in_flight(url: str, tmp_path: Path) -> None:
    df = sweep(url, tmp_path, mode="concurrency", levels=(6,), n_requests=60)
    assert len(df) == 60
    # exact sweep-line over [start, end]: time-weighted in-flight count while all were busy
    events = sorted([(t, 1) for t in df.start_s] + [(t, -1) for t in df.end_s])
    until = df.start_s.max()
    active, prev, area = 0, events[0][0], 0.0
    for t, d in events:
        if t > until:
            break
        area += active * (t - prev)
        active, prev = active + d, t
    assert area / (until - events[0][0]) == pytest.approx(6, rel=0.05)


def test_rate_mode_constant_arrivals_match_the_rate(url: str, tmp_path: Path) -> None:
    df = sweep(url, tmp_path, mode="rate", levels=(40.0,), duration_s=1.0, arrival="constant")
    assert len(df) == 40
    gaps = np.diff(np.sort(df.scheduled_s.to_numpy()))
    assert gaps == pytest.approx([1 / 40] * 39, abs=1e-6)
    assert df.lateness_s.median() < 0.02


def test_rate_mode_poisson_arrivals_are_exponential(url: str, tmp_path: Path) -> None:
    df = sweep(url, tmp_path, mode="rate", levels=(100.0,), n_requests=150, seed=3)
    assert len(df) == 150
    gaps = np.diff(np.sort(df.scheduled_s.to_numpy()))
    assert stats.kstest(gaps, "expon", args=(0, 1 / 100)).pvalue > 0.01


def test_poisson_schedule_statistics_for_a_long_run() -> None:
    offsets = arrival_offsets(LevelPlan("rate", 20.0, n_requests=20_000, seed=1))
    gaps = np.diff(offsets)
    assert gaps.mean() == pytest.approx(1 / 20, rel=0.03)
    assert stats.kstest(gaps, "expon", args=(0, 1 / 20)).pvalue > 0.01


def test_rate_mode_cap_delays_instead_of_dropping(url: str, tmp_path: Path) -> None:
    df = sweep(
        url, tmp_path, mode="rate", levels=(200.0,), n_requests=40, max_inflight=2,
        arrival="constant",
    )  # fmt: skip
    assert len(df) == 40 and (df.status == "ok").all()
    assert df.active_at_start.max() <= 2
    assert df.lateness_s.max() > 0.1  # the cap made arrivals late, and that is recorded

"""A small simulated probe of a known serving model, and the twin calibrated on it (cached)."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import pandas as pd

from capacity.records import validate_records
from capacity.serving import Profile, Twin, calibrate, interval_schedule, load_profile, simulate
from capacity.serving._calibrate import records_from_results

PROMPTS = {"small": 40, "large": 3000}
LEVELS = (1, 4, 8)
OUTPUT = 60
TRUTH = dataclasses.replace(
    load_profile("fast").serving,
    t_w_s=0.005, c_b_s=20e-6, c_kv_s=5e-9, c_f_s=4e-6, alpha0_s=0.2, alpha_in_s=60e-6,
    replicas=2, chunk_budget_tokens=4096, alpha_jitter_cv=0.05, step_jitter_cv=0.03,
)  # fmt: skip


def truth_profile() -> Profile:
    """The known endpoint: no template overhead, so input tokens are the prompt."""
    return load_profile("fast").with_overrides(serving=TRUTH, prompt_overhead_tokens=0)


def probe_records(
    levels: tuple[int, ...] = LEVELS, batches: int = 15, throttled: bool = False
) -> pd.DataFrame:
    """Interval-mode probe records of the known endpoint, levels run one after another."""
    profile = truth_profile()
    frames, clock = [], 0.0
    for label, tokens in PROMPTS.items():
        for level in levels:
            schedule = interval_schedule(level, batches, input_tokens=tokens, max_tokens=OUTPUT)
            results = simulate(profile, schedule, seed=7)
            if throttled:
                results = [dataclasses.replace(r, status="throttled") for r in results]
            frame = records_from_results(
                results, mode="interval", level=level, label=label, offset_s=clock
            )
            clock = float(frame["end_s"].max()) + 1.0
            frames.append(frame)
    return validate_records(pd.concat(frames, ignore_index=True), source="simulated probe")


@functools.cache
def fitted_twin() -> Twin:
    """The twin of the known endpoint (fitted once per test session)."""
    return calibrate(probe_records(), replicas=(1, 2, 3), workers=1, max_nfev=6)


def save_probe(folder: Path) -> tuple[Path, Path]:
    """The probe as a run directory (``records.parquet``) and its twin as ``twin.json``, both
    under ``folder`` (a tmp dir): what ``llmcap report`` and the app are given."""
    run = folder / "20260101T000000Z-probe"
    run.mkdir(parents=True)
    probe_records().to_parquet(run / "records.parquet")
    return run, fitted_twin().save(folder / "twin.json")

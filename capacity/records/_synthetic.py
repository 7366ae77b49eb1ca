"""Synthetic request records with a known ground truth, for tests, demos and benchmarks.

A closed loop per level: ``level`` clients each send requests back to back. Per-request decode
speed is lognormal around the USL ``x(N) = λ/(1 + σ(N−1) + κN(N−1))`` at N = level (so the
median tps at a level is exactly x(level)); TTFT is ``ttft_s + ttft_slope_s·(N − 1)`` plus an
exponential tail of scale ``ttft_scale_s``. Levels run one after another on one clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from capacity.records._schema import RECORD_COLUMNS
from capacity.records._validate import validate_records


@dataclass(frozen=True)
class SyntheticPrompt:
    """The ground truth of one prompt size."""

    label: str
    input_tokens: int
    lam: float = 136.0
    sigma: float = 0.002
    kappa: float = 3e-5
    tps_cv: float = 0.08
    ttft_s: float = 0.3
    ttft_slope_s: float = 0.001
    ttft_scale_s: float = 0.03

    def tps_median(self, n: float) -> float:
        """The true median per-request tps at concurrency ``n``."""
        return self.lam / (1 + self.sigma * (n - 1) + self.kappa * n * (n - 1))

    def ttft_quantile(self, n: float, q: float) -> float:
        """The true q-quantile of TTFT at concurrency ``n``."""
        return self.ttft_s + self.ttft_slope_s * (n - 1) - self.ttft_scale_s * math.log(1 - q)


def synthetic_records(
    prompts: Sequence[SyntheticPrompt],
    *,
    levels: Sequence[int] = (1, 5, 10, 20, 30, 40, 50),
    requests_per_level: int = 600,
    output_tokens: int = 350,
    throttle_rate: float = 0.0,
    seed: int = 0,
    run_id: str = "synthetic",
    model_id: str = "synthetic-model",
) -> pd.DataFrame:
    """Validated records of a closed-loop sweep over ``levels`` for each prompt.

    ``throttle_rate`` of the requests (at random) are throttled: no tokens, 20 ms to fail.
    """
    rng = np.random.default_rng(seed)
    parts: list[dict[str, np.ndarray]] = []
    clock = 0.0
    for prompt in prompts:
        for level in levels:
            per_slot = max(1, math.ceil(requests_per_level / level))
            shape = (level, per_slot)
            tps = prompt.tps_median(level) * np.exp(rng.normal(0, prompt.tps_cv, shape))
            ttft = (
                prompt.ttft_s
                + prompt.ttft_slope_s * (level - 1)
                + rng.exponential(prompt.ttft_scale_s, shape)
            )
            throttled = rng.random(shape) < throttle_rate
            busy = np.where(throttled, 0.02, ttft + (output_tokens - 1) / tps + 0.005)
            start = clock + np.cumsum(busy, axis=1) - busy
            first = np.where(throttled, np.nan, start + ttft)
            last = np.where(throttled, np.nan, first + (output_tokens - 1) / tps)
            end = start + busy
            clock = float(end.max()) + 1.0
            size = level * per_slot
            parts.append(
                {
                    "prompt_label": np.full(size, prompt.label, dtype=object),
                    "level": np.full(size, float(level)),
                    "batch": np.tile(np.arange(per_slot), level),
                    "start_s": start.ravel(),
                    "first_token_s": first.ravel(),
                    "last_token_s": last.ravel(),
                    "end_s": end.ravel(),
                    "input_tokens": np.full(size, float(prompt.input_tokens)),
                    "output_tokens": np.where(throttled, np.nan, float(output_tokens)).ravel(),
                    "status": np.where(throttled, "throttled", "ok").astype(object).ravel(),
                }
            )
    columns = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    n = columns["start_s"].size
    frame = pd.DataFrame(columns)
    frame["run_id"] = run_id
    frame["request_id"] = np.arange(n).astype(str)
    frame["provider"] = "synthetic"
    frame["model_id"] = model_id
    frame["mode"] = "concurrency"
    frame["max_tokens"] = output_tokens
    frame["temperature"] = 0.5
    throttled_rows = (frame["status"] == "throttled").to_numpy(dtype=bool)
    error_code = np.full(n, None, dtype=object)
    error_code[throttled_rows] = "ThrottlingException"
    frame["error_code"] = pd.array(error_code, dtype="string")
    frame = frame[[c for c in RECORD_COLUMNS if c in frame.columns]]
    return validate_records(frame, source="synthetic", run_id=run_id)

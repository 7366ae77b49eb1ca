"""When the client distorted its own measurement (``capacity.serving.client_load``): the rule on
hand-made levels, the one-line refusal of calibration, and records without the measure."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from capacity.records import validate_records
from capacity.serving import (
    ClientOverloadError,
    calibrate,
    check_client_load,
    client_load,
    client_overload,
    probe_cells,
)
from tests.capacity.record_factory import rec
from tests.capacity.serving.twin_probe import probe_records

TPOT_S = 2.0 / 349  # rec(): first token at 0.3 s, 350 tokens by 2.3 s


def level(
    lags_s: list[float], *, label: str = "small", level: float = 5, cpu: float = 0.05, **kw: Any
) -> list[dict[str, object]]:
    """One level's ok requests, one per lag (the client's measure of itself)."""
    return [
        rec(prompt_label=label, level=level, mode="interval", loop_lag_s=lag,
            client_cpu_share=cpu, scheduled_s=0.0, **kw)
        for lag in lags_s
    ]  # fmt: skip


def records(*levels: list[dict[str, object]]) -> pd.DataFrame:
    rows = [row for lv in levels for row in lv]
    frame = pd.DataFrame([{**r, "request_id": str(i)} for i, r in enumerate(rows)])
    return validate_records(frame, source="hand-made")


def test_the_median_lag_against_twice_the_inter_token_time() -> None:
    # TPOT 5.73 ms, TTFT 300 ms: the bound is 2 × 5.73 = 11.5 ms (a tenth of TTFT is 30 ms)
    quiet = level([0.011] * 5, level=5)
    loud = level([0.012] * 5, level=10)
    (a, b) = client_load(records(quiet, loud))
    assert a.tpot_p50_s == pytest.approx(TPOT_S) and a.ttft_p50_s == pytest.approx(0.3)
    assert a.lag_per_token_time == pytest.approx(0.011 / TPOT_S)
    assert not a.distorted and b.distorted
    # the median, not the worst request: four of ten stalled for 50 ms, the rest did not
    spiky = client_load(records(level([0.05] * 4 + [0.001] * 6)))[0]
    assert not spiky.distorted and spiky.lag_p95_s == pytest.approx(0.05)


def test_a_tenth_of_ttft_binds_when_the_first_token_is_quick() -> None:
    # TTFT 50 ms, TPOT 50 ms: 2 × TPOT is 100 ms, a tenth of TTFT 5 ms
    fast_first: dict[str, Any] = {
        "first_token_s": 0.05, "last_token_s": 0.05 + 349 * 0.05, "end_s": 17.6,
    }  # fmt: skip
    (ok,) = client_load(records(level([0.0049] * 5, **fast_first)))
    (bad,) = client_load(records(level([0.0051] * 5, **fast_first)))
    assert not ok.distorted and bad.distorted


def test_the_refusal_is_one_line_naming_the_levels_the_figures_and_the_fix() -> None:
    frame = records(
        level([0.001] * 5, level=1),
        level([0.03] * 5, level=5),
        level([0.06] * 5, level=10),
        level([0.04] * 5, level=10, label="large"),
    )
    message = client_overload(frame)
    assert message is not None and "\n" not in message
    assert message.startswith(
        "the client was overloaded during small levels 5 and 10, large level 10 (worst, small "
        "level 10: event-loop lag p50 60.0 ms"
    )
    assert "10.5x the inter-token time" in message and "client CPU 5% of a core" in message
    assert message.endswith("other processes held the CPU), so its timings carry its own "
                            "stalls; rerun on a quiet machine or with --workers")  # fmt: skip
    with pytest.raises(ClientOverloadError, match=r"^the client was overloaded"):
        check_client_load(frame)
    saturated = client_overload(records(level([0.03] * 5, cpu=0.97)))
    assert saturated is not None and saturated.endswith(
        "the client itself was saturated), so its timings carry its own stalls; "
        "rerun with --workers"
    )
    unknown = client_overload(records(level([0.03] * 5, cpu=math.nan)))
    assert unknown is not None and unknown.endswith("rerun on a quiet machine or with --workers")


def test_what_cannot_be_judged_passes() -> None:
    assert client_load(records(level([0.5] * 4))) == []  # fewer than 5 requests
    old = records(level([math.nan] * 5))  # a run written before the client measured itself
    assert client_load(old) == [] and client_overload(old) is None
    check_client_load(old)
    failed = records(level([0.5] * 5, status="throttled"))  # no ok request: nothing measured
    assert client_load(failed) == []


def with_lag(probe: pd.DataFrame, per_tpot: float, labels: tuple[str, ...]) -> pd.DataFrame:
    """The probe as if its client had stalled ``per_tpot`` inter-token times on every request of
    the prompts ``labels`` (the others on time)."""
    out = probe.copy()
    hit = out["prompt_label"].isin(labels).to_numpy()
    out["loop_lag_s"] = np.where(hit, per_tpot * out["tpot_s"].to_numpy(float), 0.001)
    out["client_cpu_share"] = 0.05
    return validate_records(out, source="probe with the client's measure")


def test_calibration_refuses_a_probe_the_client_distorted() -> None:
    probe = probe_records(batches=3)
    cells = probe_cells(with_lag(probe, 0.5, ("small", "large")))  # stalls under 2 TPOTs: fine
    assert len(cells) == len(probe_cells(probe))
    distorted = with_lag(probe, 3.0, ("large",))
    with pytest.raises(ClientOverloadError, match=r"during large levels 4 and 8 \(worst"):
        probe_cells(distorted)  # level 1: 3 requests, not judged (nor calibrated on)
    with pytest.raises(ClientOverloadError, match=r"rerun on a quiet machine or with --workers$"):
        calibrate(distorted, workers=1)  # refused before any simulation

"""The digital twin: calibration recovers a known serving model from a small simulated probe,
names what a bad probe lacks, predicts beyond the probe (saying so) and round-trips as JSON."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest

from capacity.planning import Quota, Workload, plan_capacity
from capacity.records import validate_records
from capacity.serving import (
    CalibrationError,
    Twin,
    calibrate,
    interval_schedule,
    load_profile,
    load_twin,
    simulate,
)
from capacity.serving._twin import run_stats
from tests.capacity.serving.twin_probe import (
    OUTPUT,
    TRUTH,
    fitted_twin,
    probe_records,
    truth_profile,
)


@pytest.mark.parametrize("name", ["t_w_s", "alpha0_s", "alpha_in_s", "c_f_s"])
def test_calibration_recovers_known_coefficients_within_its_intervals(name: str) -> None:
    low, estimate, high = fitted_twin().identification.intervals[name]
    truth = getattr(TRUTH, name)
    assert low <= truth <= high, (name, low, estimate, high, truth)
    assert high / low < 4  # pinned down, not the prior's decade either way


def test_the_twin_reproduces_its_probe_and_predicts_a_held_out_level() -> None:
    twin = fitted_twin()
    for row in twin.fit_quality():
        assert abs(row["tpot_p50"]["error"]) < 0.05
        assert abs(row["ttft_p50"]["error"]) < 0.05
    # Level 16 (2x the probe's heaviest) against the known endpoint.
    forecast = twin.forecast("interval", 16, 3000, samples=4, batches=20)
    schedule = interval_schedule(16, 20, input_tokens=3000, max_tokens=OUTPUT)
    truth = run_stats(simulate(truth_profile(), schedule, seed=3))
    for key in ("tps_p50", "ttft_p50", "output_tps"):
        assert forecast.values[key][1] == pytest.approx(truth[key], rel=0.10), key


def test_cells_carry_the_median_longest_gap_when_the_records_have_it() -> None:
    from capacity.serving import probe_cells

    records = probe_records()
    cells = probe_cells(records)
    assert all(c.observed["gap_p50"] >= c.observed["tpot_p50"] > 0 for c in cells)
    assert all(0 < c.se["gap_p50"] < 0.5 for c in cells)
    heavy = [c for c in cells if c.level == max(c.level for c in cells)]
    assert any(c.observed["gap_p50"] > 1.5 * c.observed["tpot_p50"] for c in heavy)
    old = probe_cells(validate_records(records.drop(columns="max_gap_s"), source="old run"))
    assert not any("gap_p50" in c.observed or "gap_p50" in c.se for c in old)
    for row in fitted_twin().fit_quality():  # the fitted twin reproduces the gaps too
        assert abs(row["gap_p50"]["error"]) < 0.1


def test_unpinned_coefficients_and_replicas_are_reported() -> None:
    ident = fitted_twin().identification
    assert "chunk_budget_tokens" in ident.not_identified
    assert "max_running" in ident.not_identified
    assert TRUTH.replicas in ident.replicas_consistent


def test_a_probe_with_one_level_says_so() -> None:
    with pytest.raises(CalibrationError, match=r"one load level .*--levels"):
        calibrate(probe_records(levels=(4,), batches=6), workers=1)


def test_a_probe_where_everything_was_throttled_says_so() -> None:
    with pytest.raises(CalibrationError, match="no request of the probe succeeded"):
        calibrate(probe_records(batches=3, throttled=True), workers=1)


def test_unvalidated_records_are_refused_with_the_fix() -> None:
    raw = probe_records(batches=3).drop(columns=["ttft_s", "tpot_s", "tps"])
    with pytest.raises(CalibrationError, match=r"lack tpot_s, ttft_s.*load_records"):
        calibrate(raw, workers=1)


def test_a_probe_without_streaming_timestamps_says_so() -> None:
    records = probe_records(batches=3).copy()
    records["first_token_s"] = records["last_token_s"]  # one chunk: a non-streaming API
    records = validate_records(records.drop(columns=["ttft_s", "tpot_s", "tps"]))
    with pytest.raises(CalibrationError, match="no streaming timestamps"):
        calibrate(records, workers=1)


def test_predict_is_a_predictor_that_flags_extrapolation_and_plans(tmp_path: Path) -> None:
    twin = fitted_twin()
    inside = twin.predict(2, 40)
    beyond = twin.predict(200, 3000)
    assert not inside.extrapolated
    assert beyond.extrapolated and any("extrapolated" in n for n in beyond.notes)
    assert beyond.tps_p50 < inside.tps_p50
    assert beyond.ttft_s[0.95] >= beyond.ttft_s[0.5]
    half = twin.predict(2.5, 40)  # fractional concurrency interpolates
    assert min(inside.tps_p50, twin.predict(3, 40).tps_p50) <= half.tps_p50
    plan = plan_capacity(
        Quota(tpm=400_000),
        Workload(input_tokens=3000, output_tokens=OUTPUT, max_tokens=OUTPUT, think_time_s=10),
        model=twin,
    )
    assert plan.users > 0 and math.isfinite(plan.latency_s)


def test_twin_json_round_trips_and_is_an_emulator_profile(tmp_path: Path) -> None:
    twin = fitted_twin()
    path = twin.save(tmp_path / "twin.json")
    again = load_twin(path)
    assert isinstance(again, Twin)
    assert again.members == twin.members
    assert again.identification == twin.identification
    assert again.predict(4, 40) == twin.predict(4, 40)
    profile = load_profile(path)
    assert profile.serving == twin.serving
    assert profile.prompt_overhead_tokens == 0


def test_simulate_any_mode_with_or_without_a_quota() -> None:
    twin = fitted_twin()
    from capacity.serving import QuotaConfig

    for mode in ("interval", "sequential", "concurrency", "rate"):
        results = twin.run(mode, 3, 40, batches=5, duration_s=5, n_requests=20)
        assert results and all(r.status == "ok" for r in results), mode
    throttled = twin.run("interval", 8, 3000, batches=10, quotas=QuotaConfig(tpm=60_000))
    assert any(r.status == "throttled" for r in throttled)
    other = dataclasses.replace(twin.serving, replicas=1)
    assert twin.run("interval", 8, 3000, batches=5, serving=other)


def test_planning_does_not_load_the_twin_or_pandas() -> None:
    code = (
        "import sys, capacity.planning, capacity.serving\n"
        "bad = [m for m in ('pandas', 'statsmodels', 'scipy', 'capacity.serving._calibrate')"
        " if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_prefill_utilisation_crosses_one_where_prefill_outruns_the_replicas() -> None:
    from capacity.serving._twin import prefill_utilisation

    # c_f·chunk = 16 ms per 4,096-token chunk; 3,000-token prompts over 2 replicas.
    light = prefill_utilisation(TRUTH, 10, 3000, OUTPUT, inflight=5)
    heavy = prefill_utilisation(TRUTH, 200, 3000, OUTPUT, inflight=400)
    assert light < 0.1 < 1.0 < heavy


def test_the_estimate_is_the_members_likelihood_weighted_geometric_mean() -> None:
    from capacity.serving._twin import FORECAST_STATS, _weighted_stats

    a = dict.fromkeys(FORECAST_STATS, 1.0) | {"throttled": 0.0}
    b = dict.fromkeys(FORECAST_STATS, 4.0) | {"throttled": 0.5}
    mixed = _weighted_stats([a, b], [0.5, 0.5])
    assert mixed["tps_p50"] == pytest.approx(2.0)  # geometric
    assert mixed["throttled"] == pytest.approx(0.25)  # a share: arithmetic
    assert _weighted_stats([a, b], [1.0, 0.0])["ttft_p50"] == pytest.approx(1.0)


def test_a_forecast_near_saturation_says_so() -> None:
    twin = fitted_twin()
    calm = twin.forecast("interval", 8, 3000, samples=2, batches=10)
    assert not any(n.startswith("near saturation") for n in calm.notes)
    hot = twin.forecast("interval", 150, 3000, samples=2, batches=10)
    assert any(n.startswith("near saturation") for n in hot.notes), hot.notes


def test_the_twin_file_is_complete_and_fit_quality_round_trips(tmp_path: Path) -> None:
    twin = fitted_twin()
    # The probe's records name a cross-Region inference profile: the twin keeps it and its scope.
    assert twin.model_id == "us.meta.llama3-3-70b-instruct-v1:0"
    assert twin.scope == "cross-region"
    again = load_twin(twin.save(tmp_path / "twin.json"))
    assert (again.model_id, again.scope) == (twin.model_id, twin.scope)
    assert again.cells == twin.cells  # schedules included: the probe can be re-simulated
    before, after = twin.fit_quality(), again.fit_quality()
    assert after == before
    assert all(math.isfinite(row["tpot_p50"]["twin"]) for row in after)
    assert again.model_error == twin.model_error


def test_calibration_does_not_depend_on_the_number_of_workers() -> None:
    records = probe_records(batches=8)
    one = calibrate(records, replicas=(1, 2, 3), workers=1, max_nfev=3)
    three = calibrate(records, replicas=(1, 2, 3), workers=3, max_nfev=3)
    assert one.members == three.members
    assert one.ensemble == three.ensemble
    assert one.identification == three.identification
    assert one.model_error == three.model_error

"""fit_capacity and CapacityModel: recovery, predictions, interpolation, knees, JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from capacity.errors import FitError, ModelFileError
from capacity.fitting import CapacityModel, fit_capacity
from capacity.planning import LoadCurve, Quota, Slo, Workload, plan_capacity
from capacity.prediction import Prediction, Predictor
from capacity.records import SyntheticPrompt, synthetic_records
from tests.capacity.record_factory import frame, rec

SMALL = SyntheticPrompt("small", 43)
LARGE = SyntheticPrompt("large", 6027, lam=126.0, sigma=0.002, kappa=4.6e-4, ttft_s=0.8)


@pytest.fixture(scope="module")
def model() -> CapacityModel:
    records = synthetic_records((SMALL, LARGE), requests_per_level=400, throttle_rate=0.02)
    return fit_capacity(records, concurrency="offered", n_boot=100)


def test_recovers_the_synthetic_truth(model: CapacityModel) -> None:
    assert [p.prompt_label for p in model.prompts] == ["small", "large"]
    for truth, pm in zip((SMALL, LARGE), model.prompts, strict=True):
        d = pm.decode
        for value, (lo, hi) in ((truth.lam, d.lam_ci), (truth.kappa, d.kappa_ci)):
            assert lo <= value <= hi, (pm.prompt_label, value, lo, hi)
        assert pm.input_tokens == truth.input_tokens and pm.output_tokens == 350
        for level in (1.0, 20.0, 50.0):
            p = model.predict(level, truth.input_tokens)
            assert p.tps_p50 == pytest.approx(truth.tps_median(level), rel=0.02)
            assert p.ttft_s[0.95] == pytest.approx(truth.ttft_quantile(level, 0.95), rel=0.05)
            assert not p.extrapolated and p.notes == ()


def test_prediction_shape_and_consistency(model: CapacityModel) -> None:
    predictor: Predictor = model  # CapacityModel satisfies the planner's protocol (mypy checks)
    p = predictor.predict(30, 43)
    assert isinstance(p, Prediction)
    assert set(p.ttft_s) == set(p.ttlt_s) == {0.5, 0.95, 0.99}
    assert p.ttft_s[0.5] <= p.ttft_s[0.95] <= p.ttft_s[0.99]
    assert all(p.ttlt_s[q] >= p.ttft_s[q] for q in p.ttft_s)
    assert 0 < p.tps_p5 <= p.tps_p50
    assert p.system_output_tps == pytest.approx(model.prompts[0].throughput.throughput(30.0))
    assert model.predict(0.5, 43).tps_p50 == model.predict(1, 43).tps_p50


def test_interpolates_between_prompt_sizes_and_says_when_it_extrapolates(
    model: CapacityModel,
) -> None:
    small, large, mid = model.predict(20, 43), model.predict(20, 6027), model.predict(20, 3035)
    assert mid.tps_p50 == pytest.approx((small.tps_p50 + large.tps_p50) / 2)
    assert not mid.extrapolated and "interpolated between" in mid.notes[0]
    beyond = model.predict(20, 9000)
    assert beyond.extrapolated and "extrapolated linearly" in beyond.notes[0]
    assert beyond.tps_p50 < large.tps_p50
    far = model.predict(200, 43)
    assert far.extrapolated and any("1.5× extrapolation limit" in n for n in far.notes)
    huge = model.predict(10_000, 6027)  # the planner's search range: finite, positive
    values = [huge.tps_p50, huge.tps_p5, huge.system_output_tps, *huge.ttlt_s.values()]
    assert all(math.isfinite(v) and v > 0 for v in values)
    with pytest.raises(ValueError, match="concurrency must be a finite number"):
        model.predict(-1, 43)


def test_knees_are_read_off_the_planners_capacity_curve(model: CapacityModel) -> None:
    large = model.prompts[1]
    k = model.knees(6027)
    curve = LoadCurve(Workload(6027, large.output_tokens, large.output_tokens), model)
    assert k.peak_concurrency == pytest.approx(curve.n_peak)
    assert k.output_tokens == pytest.approx(large.output_tokens)
    assert k.efficient_concurrency == pytest.approx(large.throughput.concurrency_at_efficiency(0.8))
    assert k.slo_concurrency is None and k.recommended_concurrency == k.peak_concurrency
    bound = model.predict(30, 6027).ttft_s[0.95]
    k = model.knees(6027, slo=Slo(ttft_p95_s=bound))
    assert k.slo_concurrency == pytest.approx(30, abs=0.05)
    assert k.recommended_concurrency == pytest.approx(min(k.peak_concurrency, 30), abs=0.05)
    assert k.slo == f"p95 TTFT <= {bound:g} s"
    # The planner finds the same SLO limit: one curve, one Slo.
    plan = plan_capacity(Quota(tpm=1e9), Workload(6027, large.output_tokens,
                         large.output_tokens), model, Slo(ttft_p95_s=bound))  # fmt: skip
    assert plan.inflight == pytest.approx(k.slo_concurrency, rel=1e-3)
    floor = model.predict(20, 43).tps_p5
    tps = model.knees(43, slo=Slo(min_tps_p5=floor))
    assert model.predict(tps.slo_concurrency or 0, 43).tps_p5 == pytest.approx(floor, rel=1e-4)
    fails = model.knees(43, slo=Slo(ttft_p95_s=0.01))
    assert fails.slo_concurrency == 0.0 and any("fails with one" in n for n in fails.notes)


def test_json_round_trip_is_exact(model: CapacityModel, tmp_path: Path) -> None:
    path = model.save(tmp_path / "model.json")
    back = CapacityModel.load(path)
    assert back == model
    assert back.save(tmp_path / "again.json").read_text() == path.read_text()
    for c in (1.0, 17.3, 64.0):
        assert back.predict(c, 2000) == model.predict(c, 2000)
    assert json.loads(path.read_text())["version"] == CapacityModel.VERSION


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not JSON"),
        ('{"format": "other"}', "not an llmcap capacity model"),
        ('{"format": "llmcap.capacity-model", "version": 99}', "newer than this llmcap reads"),
        (
            '{"format": "llmcap.capacity-model", "version": 1, "concurrency": "measured",'
            ' "model_id": "m", "notes": [], "prompts": [{"prompt_label": "x"}]}',
            "missing field 'input_tokens'",
        ),
    ],
)
def test_unreadable_model_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "m.json"
    path.write_text(content)
    with pytest.raises(ModelFileError, match=message):
        CapacityModel.load(path)
    with pytest.raises(ModelFileError, match="cannot read"):
        CapacityModel.load(tmp_path / "missing.json")


def test_measured_concurrency_is_the_default_and_offered_mode_is_noted() -> None:
    # interval-mode levels 1–4 whose requests never overlap: measured concurrency is 1 at all
    rows = [
        rec(
            level=float(level),
            start_s=10.0 * i,
            first_token_s=10.0 * i + 0.3,
            last_token_s=10.0 * i + 2.3 + 0.1 * i,
            end_s=10.0 * i + 2.5 + 0.1 * i,
            mode="interval",
        )
        for i, level in enumerate((1, 2, 3, 4))
    ]
    with pytest.raises(FitError, match="needs at least 3 distinct concurrency levels, got 1"):
        fit_capacity(frame(*rows), n_boot=10)
    offered = fit_capacity(frame(*rows), concurrency="offered", n_boot=10)
    assert offered.concurrency == "offered"
    assert offered.prompts[0].concurrency == (1.0, 2.0, 3.0, 4.0)
    assert any("not in-flight concurrency" in n for n in offered.notes)


def test_too_few_levels_is_a_fit_error() -> None:
    rows = [
        rec(level=1.0),
        rec(level=2.0, start_s=5.0, first_token_s=5.3, last_token_s=7.0, end_s=7.1),
    ]
    with pytest.raises(FitError, match="prompt 'small': the USL needs at least 3"):
        fit_capacity(frame(*rows), concurrency="offered")
    with pytest.raises(ValueError, match="concurrency must be"):
        fit_capacity(frame(*rows), concurrency="nominal")  # type: ignore[arg-type]


def test_measured_basis_obeys_littles_law() -> None:
    records = synthetic_records((LARGE,), requests_per_level=400, seed=5)
    m = fit_capacity(records, n_boot=20)
    pm = m.prompts[0]
    n30 = pm.concurrency[pm.levels.index(30.0)]
    level = records[records["level"] == 30.0]
    little = n30 * 350 / level["e2e_s"].mean()  # X = N · tokens per request / latency
    assert m.predict(n30, 6027).system_output_tps == pytest.approx(little, rel=0.03)

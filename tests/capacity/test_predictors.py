"""``capacity.load_predictor`` (model.json or twin.json, one loader) and
``capacity.describe_predictor`` (where a plan's latency curve came from)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capacity import ModelFileError, load_predictor
from capacity.fitting import CapacityModel, fit_capacity
from capacity.predictors import describe_predictor
from capacity.records import SyntheticPrompt, synthetic_records
from capacity.serving import Twin
from tests.capacity.serving.twin_probe import fitted_twin

FIX = "— pass a model.json from `llmcap fit` or a twin.json from `llmcap twin fit`"


@pytest.fixture(scope="module")
def model() -> CapacityModel:
    records = synthetic_records(
        [SyntheticPrompt("small", 43), SyntheticPrompt("large", 2000)],
        levels=(1, 10, 30),
        requests_per_level=90,
    )
    return fit_capacity(records, n_boot=10)


def test_one_loader_reads_a_fitted_model_and_a_twin(model: CapacityModel, tmp_path: Path) -> None:
    path = model.save(tmp_path / "model.json")
    fitted = load_predictor(path)
    assert isinstance(fitted, CapacityModel)
    assert fitted.save(tmp_path / "again.json").read_text() == path.read_text()
    twin = load_predictor(fitted_twin().save(tmp_path / "twin.json"))
    assert isinstance(twin, Twin) and twin.to_dict() == fitted_twin().to_dict()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ('{"hello": "world"}', ["not a performance model (no format tag", FIX]),
        (
            '{"format": "llmcap.quota-request-report"}',
            ["format 'llmcap.quota-request-report'", FIX],
        ),
        ("[1, 2]", ["not a performance model", FIX]),
        ("{oops", ["not JSON", FIX]),
        ('{"format": "llmcap.capacity-model", "version": 99}', ["newer", "— refit it"]),
        ('{"format": "llmcap-twin", "version": 1}', ["malformed twin file", "refit"]),
    ],
)
def test_a_bad_file_names_itself_and_the_fix(
    tmp_path: Path, content: str, words: list[str]
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ModelFileError) as info:
        load_predictor(path)
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value)
    for word in words:
        assert word in str(info.value)
    with pytest.raises(ModelFileError, match=r"cannot read .* — check the path"):
        load_predictor(tmp_path / "missing.json")


def test_a_twin_is_described_with_its_identification_and_extrapolation() -> None:
    twin = fitted_twin()
    inside = describe_predictor(twin)
    assert inside is not None and inside.is_twin and inside.notes == ()
    assert "calibrated digital twin" in inside.source
    text = "\n".join(inside.details)
    assert f"replicas: {twin.replica_summary()}" in text
    for name in twin.identification.intervals:
        assert f"{name} = " in text
    for name, why in twin.identification.not_identified.items():
        assert why in text, name
    beyond = describe_predictor(twin, 60 * twin.probe_inflight, 3000)
    assert beyond is not None
    assert any(n.startswith("extrapolated") for n in beyond.notes)
    assert not set(beyond.notes) & {
        f"{k}: {v}" for k, v in twin.identification.not_identified.items()
    }
    assert json.loads(json.dumps(beyond.to_dict()))["kind"] == "twin"


def test_a_fitted_model_and_no_model_are_described(model: CapacityModel) -> None:
    info = describe_predictor(model, 5, 43)
    assert info is not None and info.kind == "fitted" and not info.is_twin
    assert "fitted CapacityModel" in info.source and "small (43 tokens)" in info.details[0]
    assert describe_predictor(None) is None


def test_a_twins_predictions_carry_the_probes_range() -> None:
    twin = fitted_twin()
    assert twin.predict(3.5, 40).measured_concurrency_max == pytest.approx(twin.probe_inflight)

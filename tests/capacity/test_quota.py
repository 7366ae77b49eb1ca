"""Planning inputs: validation names the field and the range; the Bedrock data table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from capacity.errors import CapacityError, ModelFileError
from capacity.planning import (
    DEFAULT_THINK_TIME_S,
    PlanInputError,
    Quota,
    Slo,
    Workload,
    default_quota,
)
from capacity.serving import (
    base_model_id,
    burndown_for,
    load_model_table,
    resolve_burndown,
)

LLAMA_US = "us.meta.llama3-3-70b-instruct-v1:0"


def workload(**kw: Any) -> Workload:
    base: dict[str, Any] = {"input_tokens": 500, "output_tokens": 300, "max_tokens": 1000}
    return Workload(**(base | kw))


@pytest.mark.parametrize(
    ("kwargs", "field", "range_text"),
    [
        ({"tpm": 0}, "Quota.tpm", "> 0"),
        ({"tpm": -1}, "Quota.tpm", "> 0"),
        ({"tpm": float("nan")}, "Quota.tpm", "finite"),
        ({"tpm": float("inf")}, "Quota.tpm", "finite"),
        ({"tpm": True}, "Quota.tpm", "number"),
        ({"tpm": 10, "rpm": 0}, "Quota.rpm", "> 0"),
        ({"tpm": 10, "tpd": -5}, "Quota.tpd", "> 0"),
        ({"tpm": 10, "scope": "regional"}, "Quota.scope", "one of"),
        ({"tpm": 10, "model_id": " "}, "Quota.model_id", "non-empty"),
        ({"tpm": 10, "model_id": LLAMA_US, "scope": "on-demand"}, "Quota.scope", "cross-region"),
    ],
)
def test_bad_quota_names_field_and_range(
    kwargs: dict[str, Any], field: str, range_text: str
) -> None:
    with pytest.raises(PlanInputError, match=field) as info:
        Quota(**kwargs)
    assert range_text in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "field", "range_text"),
    [
        ({"input_tokens": 0}, "Workload.input_tokens", "> 0"),
        ({"output_tokens": -3}, "Workload.output_tokens", "> 0"),
        ({"max_tokens": 0}, "Workload.max_tokens", "> 0"),
        ({"output_tokens": 1200}, "Workload.output_tokens", "<= max_tokens"),
        ({"cache_read_tokens": -1}, "Workload.cache_read_tokens", ">= 0"),
        ({"cache_write_tokens": -1}, "Workload.cache_write_tokens", ">= 0"),
        ({"burndown": 0}, "Workload.burndown", "> 0"),
        ({"think_time_s": -1}, "Workload.think_time_s", ">= 0"),
        ({"requests_per_user_per_min": 0}, "Workload.requests_per_user_per_min", "> 0"),
        ({"think_time_s": 5, "requests_per_user_per_min": 1}, "Workload", "not both"),
        ({"peak_to_average": 0.5}, "Workload.peak_to_average", ">= 1"),
        ({"active_hours_per_day": 0}, "Workload.active_hours_per_day", "(0, 24]"),
        ({"active_hours_per_day": 25}, "Workload.active_hours_per_day", "(0, 24]"),
        ({"latency_s": 0}, "Workload.latency_s", "> 0"),
    ],
)
def test_bad_workload_names_field_and_range(
    kwargs: dict[str, Any], field: str, range_text: str
) -> None:
    with pytest.raises(PlanInputError, match=field) as info:
        workload(**kwargs)
    assert range_text in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({}, "at least one"),
        ({"ttft_p95_s": 0}, "Slo.ttft_p95_s must be > 0"),
        ({"min_tps_p5": -1}, "Slo.min_tps_p5 must be > 0"),
        ({"ttft_p95_s": 2, "ttlt_p95_s": 1}, "Slo.ttlt_p95_s"),
    ],
)
def test_bad_slo(kwargs: dict[str, Any], text: str) -> None:
    with pytest.raises(PlanInputError, match=text.replace("(", r"\(")):
        Slo(**kwargs)


def test_errors_belong_to_the_capacity_hierarchy() -> None:
    assert issubclass(PlanInputError, CapacityError)
    assert issubclass(PlanInputError, ValueError)


def test_scope_follows_the_model_id_unless_given() -> None:
    assert Quota(tpm=1, model_id=LLAMA_US).scope == "cross-region"
    assert Quota(tpm=1, model_id="meta.llama3-3-70b-instruct-v1:0").scope == "on-demand"
    assert Quota(tpm=1).scope == "on-demand"
    assert Quota(tpm=1, model_id="amazon.nova-lite-v1:0", scope="cross-region").scope == (
        "cross-region"
    )


def test_token_charges_per_request() -> None:
    w = workload(cache_read_tokens=200, cache_write_tokens=100)
    # admission: 500 input + 200 cache read + 100 cache write + 1,000 max_tokens = 1,800
    assert w.reservation_tokens == 1800
    # settlement: 500 + 100 cache write + 5 × 300 output = 2,100 (cache reads are free)
    assert w.settlement_tokens(5) == 2100
    assert w.effective_think_time_s == DEFAULT_THINK_TIME_S
    assert workload(requests_per_user_per_min=1).effective_think_time_s is None


@pytest.mark.parametrize(
    ("model_id", "burndown"),
    [
        ("us.anthropic.claude-3-7-sonnet-20250219-v1:0", 5),
        ("anthropic.claude-sonnet-4-20250514-v1:0", 5),
        ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", 5),
        ("us.anthropic.claude-opus-4-1-20250805-v1:0", 5),
        ("anthropic.claude-haiku-4-5-20251001-v1:0", 5),
        ("anthropic.claude-3-5-sonnet-20241022-v2:0", 1),
        (LLAMA_US, 1),
        ("amazon.nova-lite-v1:0", 1),
        ("arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc", 1),
        (None, 1),
    ],
)
def test_burndown_by_model_id(model_id: str | None, burndown: float) -> None:
    found = burndown_for(model_id)
    assert found.value == burndown
    assert found.source  # every value says where it comes from


def test_workload_burndown_overrides_the_table() -> None:
    found = resolve_burndown(3.0, "anthropic.claude-sonnet-4-20250514-v1:0")
    assert (found.value, found.rule) == (3.0, "Workload.burndown")


def test_quota_codes_and_defaults() -> None:
    table = load_model_table()
    llama = {q.kind: q for q in table.quotas_for(LLAMA_US, "cross-region")}
    assert (llama["rpm"].code, llama["rpm"].default) == ("L-DEDE703C", 800)
    assert (llama["tpm"].code, llama["tpm"].default) == ("L-0E7AA8B7", 600_000)
    assert llama["tpm"].source and "Llama 3.3 70B" in llama["tpm"].name
    codes = {
        "us.anthropic.claude-3-7-sonnet-20250219-v1:0": "L-6E888CC2",
        "us.anthropic.claude-sonnet-4-20250514-v1:0": "L-59759B4A",
        "us.amazon.nova-lite-v1:0": "L-7C42E72A",
    }
    for model_id, code in codes.items():
        tpm = [q for q in table.quotas_for(model_id, "cross-region") if q.kind == "tpm"]
        assert [q.code for q in tpm] == [code]
    assert table.quotas_for("mistral.unknown-v1:0") == ()
    assert base_model_id(LLAMA_US) == "meta.llama3-3-70b-instruct-v1:0"


def test_default_quota_is_bedrocks_published_default() -> None:
    q = default_quota(LLAMA_US)
    # Llama's RPM (800) is no longer enforced on bedrock-runtime: the default leaves it out.
    assert (q.tpm, q.rpm, q.tpd, q.scope) == (600_000, None, None, "cross-region")
    with pytest.raises(PlanInputError, match="no published on-demand TPM"):
        default_quota("amazon.nova-lite-v1:0", scope="on-demand")


def test_a_table_file_overrides_the_shipped_one(tmp_path: Path) -> None:
    doc = json.loads(
        (Path(__file__).parents[2] / "capacity/data/bedrock_models.json").read_text("utf-8")
    )
    doc["burndown"]["rules"].append({"match": "meta.llama3-3", "burndown": 2, "source": "test"})
    path = tmp_path / "models.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert burndown_for(LLAMA_US, load_model_table(path)).value == 2
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(ModelFileError, match="invalid"):
        load_model_table(path)

"""The batch replay (capacity.serving.replay) against the live ledger, AWS's worked example, the
serving model and an independent per-minute computation."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from capacity.serving import (
    QUOTA_RULES,
    REJECTION_KINDS,
    SERVICE_TIERS,
    Admission,
    Cluster,
    QuotaLedger,
    QuotaLimits,
    QuotaRule,
    ReplayError,
    RequestArrays,
    Sequence,
    ServingModel,
    load_profile,
    replay,
    unloaded_latency_s,
)

LLAMA = "meta.llama3-3-70b-instruct-v1:0"  # burndown 1, max output 4,096 in the model table
SONNET4 = "anthropic.claude-sonnet-4-20250514-v1:0"  # burndown 5, max output 65,536


def requests(
    arrival_s: Any,
    input_tokens: Any,
    output_tokens: Any,
    *,
    max_tokens: Any = -1,
    latency_s: Any = 1.0,
    cache_read: Any = 0,
    cache_write: Any = 0,
    ok: Any = True,
) -> RequestArrays:
    n = len(arrival_s)

    def col(x: Any, dtype: Any) -> Any:
        return np.broadcast_to(np.asarray(x, dtype=dtype), (n,)).copy()

    return RequestArrays(
        arrival_s=col(arrival_s, float), input_tokens=col(input_tokens, np.int64),
        cache_read_tokens=col(cache_read, np.int64), cache_write_tokens=col(cache_write, np.int64),
        output_tokens=col(output_tokens, np.int64), max_tokens=col(max_tokens, np.int64),
        latency_s=col(latency_s, float), ok=col(ok, bool),
    )  # fmt: skip


def ledger_verdicts(
    r: RequestArrays, limits: QuotaLimits, burndown: float, model_id: str = "m"
) -> list[int]:
    """The live ledger driven event by event: admissions at arrival, settlements at arrival +
    latency, ordered by (time, arrival rank, admission before settlement). Returns the
    REJECTION_KINDS index of each refusal (-1 admitted), in the order given."""
    clock = [0.0]
    ledger = QuotaLedger(limits, lambda: clock[0])
    rank = np.argsort(r.arrival_s, kind="stable")
    events = []
    for k, i in enumerate(rank.tolist()):
        events.append((float(r.arrival_s[i]), k, 0, i))
        events.append((float(r.arrival_s[i] + r.latency_s[i]), k, 1, i))
    out = [-2] * len(r)
    open_: dict[int, Admission] = {}
    tiers = r.service_tier
    for t, _, kind, i in sorted(events):
        clock[0] = t
        if kind == 0:
            verdict = ledger.admit(
                model_id, int(r.input_tokens[i]), int(r.max_tokens[i]),
                cache_read_tokens=int(r.cache_read_tokens[i]),
                cache_write_tokens=int(r.cache_write_tokens[i]),
                service_tier="default" if tiers is None else SERVICE_TIERS[int(tiers[i])],
            )  # fmt: skip
            if isinstance(verdict, Admission):
                open_[i] = verdict
                out[i] = -1
            else:
                out[i] = REJECTION_KINDS.index(verdict.kind)
        elif i in open_:
            ledger.settle(open_.pop(i), int(r.input_tokens[i]), int(r.output_tokens[i]), burndown)
    return out


_tokens = st.integers(0, 2_000)
_request = st.tuples(
    st.integers(0, 400),  # arrival in half seconds: many ties
    _tokens, st.integers(0, 300), st.integers(0, 300), _tokens, _tokens,
    st.sampled_from([0.0, 0.5, 3.0, 30.0, 59.5, 61.0, 95.25]),
)  # fmt: skip


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(_request, min_size=1, max_size=60),
    tpm=st.none() | st.integers(1, 20_000),
    rpm=st.none() | st.integers(1, 6),
    tpd=st.none() | st.integers(1, 200_000),
    rule=st.sampled_from(["bucket", "window"]),
    burndown=st.sampled_from([1.0, 5.0, 1.5]),
)
def test_replay_decides_exactly_as_the_ledger_event_by_event(
    rows: list[tuple[int, ...]],
    tpm: int | None,
    rpm: int | None,
    tpd: int | None,
    rule: Any,
    burndown: float,
) -> None:
    a, inp, cr, cw, out, mx, lat = (np.array(c) for c in zip(*rows, strict=True))
    a = (a - a.min()) / 2.0  # the ledger's windows start at its first reading: arrival 0
    r = requests(a, inp, out, max_tokens=mx, latency_s=lat, cache_read=cr, cache_write=cw)
    limits = QuotaLimits(tpm=tpm, rpm=rpm, tpd=tpd, rule=rule)
    got = replay(r, LLAMA, limits, burndown=burndown)
    assert got.verdicts.tolist() == ledger_verdicts(r, limits, burndown)


@st.composite
def _limits(draw: st.DrawFn) -> tuple[QuotaLimits, int]:
    """Any endpoint's quotas, with or without Reserved capacity, and the scale of the requests'
    token counts (up to 2,000 × scale each): large enough with Reserved capacity, whose
    minimums are 100,000 input and 10,000 output tokens per minute, for it to overflow."""
    rule: QuotaRule = draw(st.sampled_from(QUOTA_RULES))
    reserved: dict[str, Any] = {}
    scale = draw(st.sampled_from([1, 10]))
    if draw(st.booleans()):
        scale = 50
        reserved = {"reserved_input_tpm": draw(st.integers(100_000, 400_000)),
                    "reserved_output_tpm": draw(st.integers(10_000, 100_000))}  # fmt: skip
    q = st.none() | st.integers(1, 20_000 * scale)
    if draw(st.booleans()):
        limits = QuotaLimits(endpoint="mantle", input_tpm=draw(q), output_tpm=draw(q),
                             rule=rule, **reserved)  # fmt: skip
    else:
        limits = QuotaLimits(tpm=draw(q), rpm=draw(st.none() | st.integers(1, 6)),
                             tpd=draw(st.none() | st.integers(1, 200_000 * scale)), rule=rule,
                             **reserved)  # fmt: skip
    return limits, scale


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(_request, min_size=1, max_size=60),
    tiers=st.lists(st.sampled_from(SERVICE_TIERS), min_size=60, max_size=60),
    drawn=_limits(),
    burndown=st.sampled_from([1.0, 5.0, 1.5]),
)
def test_every_endpoint_tier_and_reserved_capacity_replays_as_the_ledger_decides(
    rows: list[tuple[int, ...]],
    tiers: list[str],
    drawn: tuple[QuotaLimits, int],
    burndown: float,
) -> None:
    """The same check for bedrock-mantle's two buckets, Reserved capacity overflowing to the
    on-demand quota, and requests of every service tier."""
    limits, scale = drawn
    a, inp, cr, cw, out, mx, lat = (np.array(c) for c in zip(*rows, strict=True))
    a = (a - a.min()) / 2.0
    r = dataclasses.replace(
        requests(a, inp * scale, out * scale, max_tokens=mx * scale, latency_s=lat,
                 cache_read=cr * scale, cache_write=cw * scale),
        service_tier=np.array(tiers[: len(rows)]),
    )  # fmt: skip
    got = replay(r, LLAMA, limits, burndown=burndown)
    assert got.verdicts.tolist() == ledger_verdicts(r, limits, burndown)


@pytest.mark.parametrize(
    ("rule", "tpm", "rpm", "tpd"),
    [
        ("bucket", 2_000_000, 500, 20_000_000),  # TPM and TPD refuse
        ("bucket", 2_000_000, 300, 10_000_000),  # RPM and TPD
        ("window", 2_500_000, 500, 25_000_000),  # TPM and TPD
        ("window", 2_000_000, 300, 10_000_000),  # RPM and TPD
    ],
)
def test_replay_matches_the_ledger_on_a_long_random_trace(
    rule: Any, tpm: int, rpm: int, tpd: int
) -> None:
    # Thousands of bursty requests: levels carry float rounding, debts (burndown 5), refunds.
    rng = np.random.default_rng(7)
    n = 6_000
    gaps = np.where(rng.random(n) < 0.2, rng.exponential(0.5, n), rng.exponential(0.01, n))
    a = np.round(np.cumsum(gaps) * 4) / 4  # quarter seconds: ties
    r = requests(
        a, rng.integers(0, 4_000, n), rng.integers(0, 1_500, n),
        max_tokens=rng.integers(0, 2_000, n), latency_s=rng.choice([0.0, 2.0, 7.5, 40.0], n),
        cache_read=rng.integers(0, 500, n), cache_write=rng.integers(0, 200, n),
    )  # fmt: skip
    limits = QuotaLimits(tpm=tpm, rpm=rpm, tpd=tpd, rule=rule)
    got = replay(r, SONNET4, limits)
    want = ledger_verdicts(r, limits, 5.0)
    assert got.verdicts.tolist() == want
    by_kind = {k: want.count(i) for i, k in enumerate(REJECTION_KINDS[:3])}  # runtime kinds
    assert got.throttled_by_kind == by_kind
    assert sum(v > 0 for v in by_kind.values()) == 2  # two quotas bind


@pytest.mark.parametrize(
    "limits",
    [
        QuotaLimits(endpoint="mantle", input_tpm=700_000, output_tpm=250_000,
                    reserved_input_tpm=300_000, reserved_output_tpm=60_000),
        QuotaLimits(endpoint="mantle", input_tpm=700_000, output_tpm=150_000, rule="window",
                    reserved_input_tpm=300_000, reserved_output_tpm=60_000),
        QuotaLimits(tpm=2_000_000, tpd=20_000_000, reserved_input_tpm=300_000,
                    reserved_output_tpm=60_000),
        QuotaLimits(tpm=3_000_000, tpd=25_000_000, rule="window", reserved_input_tpm=300_000,
                    reserved_output_tpm=60_000),
    ],
)  # fmt: skip
def test_reserved_overflow_and_mantle_match_the_ledger_on_a_long_random_trace(
    limits: QuotaLimits,
) -> None:
    rng = np.random.default_rng(11)
    n = 6_000
    gaps = np.where(rng.random(n) < 0.2, rng.exponential(0.5, n), rng.exponential(0.01, n))
    a = np.round(np.cumsum(gaps) * 4) / 4
    r = requests(
        a - a[0], rng.integers(0, 4_000, n), rng.integers(0, 1_500, n),
        max_tokens=rng.integers(0, 2_000, n), latency_s=rng.choice([0.0, 2.0, 7.5, 40.0], n),
        cache_read=rng.integers(0, 500, n), cache_write=rng.integers(0, 200, n),
    )  # fmt: skip
    r = dataclasses.replace(r, service_tier=rng.choice(SERVICE_TIERS, n))
    got = replay(r, SONNET4, limits)
    assert got.verdicts.tolist() == ledger_verdicts(r, limits, 5.0)
    assert 0 < got.admitted_on_reserved < got.reserved_requests  # Reserved capacity overflows
    assert sum(v > 0 for v in got.throttled_by_kind.values()) == 2  # two quotas bind
    # What Reserved capacity did not take went to the on-demand quota: served, or throttled there.
    throttled = int(np.count_nonzero(r.reserved_tier() & (got.verdicts >= 0)))
    assert (
        got.minutes.overflowed.sum() + throttled == got.reserved_requests - got.admitted_on_reserved
    )


@pytest.mark.parametrize(
    ("max_tokens", "policy", "model_id", "slots"),
    [
        (1_000, "model default", LLAMA, 1_333),  # AWS: "~1,333 concurrent requests"
        (-1, 64_000, LLAMA, 31),  # no max_tokens on a model whose default is 64,000
        (-1, "model default", SONNET4, 2_000_000 // (500 + 65_536)),  # 30: the table's 65,536
    ],
)
def test_a_burst_admits_floor_tpm_over_the_reservation(
    max_tokens: int, policy: Any, model_id: str, slots: int
) -> None:
    """AWS's worked example: 2,000,000 TPM, 500 input tokens; 1,333 vs 31 concurrent requests
    on 2 M TPM with and without max_tokens."""
    n = 2_000
    burst = requests(np.zeros(n), 500, 300, max_tokens=max_tokens, latency_s=20.0)
    got = replay(burst, model_id, QuotaLimits(tpm=2_000_000), max_tokens=policy)
    assert got.admitted == slots
    assert got.throttled_by_kind == {"tokens": n - slots, "requests": 0, "tokens_per_day": 0}
    assert got.worst_minute is not None and got.worst_minute.throttled == n - slots
    assert got.throttled_minutes == 1


def test_per_minute_series_match_an_independent_computation() -> None:
    rng = np.random.default_rng(3)
    n = 5_000
    r = requests(
        rng.uniform(0, 900, n), rng.integers(10, 3_000, n), rng.integers(0, 800, n),
        max_tokens=rng.choice([-1, 1_000, 2_000], n), latency_s=rng.uniform(0.5, 90, n),
        cache_read=rng.integers(0, 300, n), cache_write=rng.integers(0, 100, n),
    )  # fmt: skip
    got = replay(r, SONNET4, QuotaLimits(tpm=1_500_000, rule="window"))
    df = pd.DataFrame({k: getattr(r, k) for k in (f.name for f in dataclasses.fields(r))})
    df["max_eff"] = df["max_tokens"].where(df["max_tokens"] >= 0, 65_536)
    df["reserved"] = df.input_tokens + df.cache_read_tokens + df.cache_write_tokens + df.max_eff
    df["charged"] = df.input_tokens + df.cache_write_tokens + 5 * df.output_tokens
    df["minute"] = (df.arrival_s // 60).astype(int)
    df["end_minute"] = ((df.arrival_s + df.latency_s) // 60).astype(int)
    df["ok_replay"] = got.verdicts == -1
    m = got.minutes
    size = len(m.requests)
    expect = df.groupby("minute").size().reindex(range(size), fill_value=0)
    assert m.requests.tolist() == expect.tolist()
    expect = df.groupby("minute").reserved.sum().reindex(range(size), fill_value=0)
    assert m.reserved_tokens.tolist() == expect.tolist()
    adm = df[df.ok_replay]
    expect = adm.groupby("end_minute").charged.sum().reindex(range(size), fill_value=0)
    assert m.settled_tokens.tolist() == expect.tolist()
    expect = df[~df.ok_replay].groupby("minute").size().reindex(range(size), fill_value=0)
    assert m.throttled.tolist() == expect.tolist()
    assert got.peak_reserved_tpm == df.groupby("minute").reserved.sum().max()
    assert got.throttled_minutes == int((expect > 0).sum())
    assert got.worst_minute is not None
    assert got.worst_minute.throttled == expect.max()
    assert got.worst_minute.minute == expect.idxmax()
    # Rule "window": no minute admits more reservations than the quota.
    assert m.admitted_reserved_tokens.max() <= 1_500_000


@pytest.mark.parametrize("prompt", [0, 1, 700, 4_096, 4_097, 30_000])
@pytest.mark.parametrize("output", [0, 1, 2, 350, 3_000])
def test_unloaded_latency_is_the_serving_models_for_one_request(prompt: int, output: int) -> None:
    model = dataclasses.replace(
        load_profile("llama3.3-70b-bedrock").serving, step_jitter_cv=0.0, alpha_jitter_cv=0.0
    )
    for serving in (model, dataclasses.replace(model, c_f_s=2e-2, t_w_s=1e-3, c_kv_s=1e-6)):
        cluster = Cluster(serving)
        seq = Sequence(0, prompt, output, 0.0)
        cluster.submit(seq, 0.0)
        cluster.advance(math.inf)
        got = unloaded_latency_s(serving, np.array([prompt]), np.array([output]))
        assert got[0] == pytest.approx(seq.last_token_s, rel=1e-9)


def test_unknown_latency_comes_from_the_serving_model() -> None:
    serving = ServingModel(alpha0_s=10.0, alpha_in_s=0.0, t_w_s=1.0, c_b_s=0.0, c_a_s=0.0,
                           c_kv_s=0.0, c_f_s=0.0)  # fmt: skip
    # 100 input tokens: one prefill step (1 s) and 4 decode steps: 10 + 1 + 4 = 15 s
    r = requests([0.0, 0.0], 100, 5, max_tokens=1_000, latency_s=[np.nan, 60.0])
    got = replay(r, LLAMA, QuotaLimits(), serving=serving)
    assert got.minutes.settled_tokens.tolist() == [105, 105]  # one ends at 15 s, one at 60 s
    assert any("1 requests have no logged latency" in n for n in got.notes)


def test_failed_requests_are_demand_or_left_out() -> None:
    # Two successful requests (outputs 100 and 300) and one that failed (throttled in the log).
    r = requests([0.0, 1.0, 2.0], 1_000, [100, 300, 0], max_tokens=1_000, latency_s=5.0,
                 ok=[True, True, False])  # fmt: skip
    tight = QuotaLimits(tpm=4_000)  # two reservations of 2,000 fit, a third does not
    demand = replay(r, LLAMA, tight)
    assert demand.requests == 3 and demand.verdicts.tolist() == [-1, -1, 0]
    assert any("1 requests that failed" in n and "200 output tokens" in n for n in demand.notes)
    full = replay(r, LLAMA, QuotaLimits())
    assert full.minutes.settled_tokens.tolist() == [1_100 + 1_300 + 1_200]  # median output 200
    left_out = replay(r, LLAMA, tight, failed="exclude")
    assert left_out.requests == 2 and left_out.verdicts.tolist() == [-1, -1, -2]


def test_a_max_tokens_cap_lowers_reservations_and_cuts_outputs() -> None:
    r = requests([0.0] * 4, 500, [100, 200, 900, 2_000], max_tokens=[-1, 4_000, 800, 3_000])
    got = replay(r, LLAMA, QuotaLimits(), max_tokens_cap=1_000)
    # reservations: 500 + min(4,096 / 4,000 / 800 / 3,000, 1,000); outputs cut to 1,000
    assert got.minutes.reserved_tokens.tolist() == [4 * 500 + 1_000 + 1_000 + 800 + 1_000]
    assert got.minutes.settled_tokens.tolist() == [4 * 500 + 100 + 200 + 900 + 1_000]
    assert any("1 outputs (25.00 %) are cut" in n for n in got.notes)


def test_a_model_the_table_does_not_know_is_named_in_the_notes() -> None:
    r = requests([0.0], 500, 100)
    got = replay(r, "acme.unknown-model-v1", QuotaLimits())
    assert got.minutes.reserved_tokens.tolist() == [500 + 8_192]  # llmcap's default maximum
    assert got.burndown == 1.0
    assert any("acme.unknown-model-v1 is not in the model table" in n for n in got.notes)


def test_to_dict_is_json_ready() -> None:
    import json

    r = requests(np.arange(10.0) * 20, 500, 100, max_tokens=1_000)
    got = replay(r, LLAMA, QuotaLimits(tpm=3_000, rpm=5))
    d = json.loads(json.dumps(got.to_dict()))
    assert d["quota"] == {"tpm": 3_000, "rpm": 5, "tpd": None, "rule": "bucket",
                          "endpoint": "runtime", "input_tpm": None, "output_tpm": None,
                          "reserved_input_tpm": None, "reserved_output_tpm": None}  # fmt: skip
    assert d["requests"] == 10 and "verdicts" not in d
    assert d["minutes"]["requests"] == got.minutes.requests.tolist()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"input_tokens": np.array([1.5, 2.0])}, r"input_tokens has dtype float64"),
        ({"output_tokens": np.array([1, -1])}, r"output_tokens has a value below 0"),
        ({"max_tokens": np.array([-2, 10])}, r"max_tokens has a value below -1"),
        ({"arrival_s": np.array([0.0, np.nan])}, r"arrival_s must be finite"),
        ({"latency_s": np.array([np.inf, 1.0])}, r"latency_s must be >= 0"),
        ({"ok": np.array([True])}, r"ok has shape \(1,\)"),
    ],
)
def test_bad_columns_are_named(change: dict[str, Any], match: str) -> None:
    good = dataclasses.asdict(requests([0.0, 1.0], 10, 10))
    with pytest.raises(ReplayError, match=match):
        RequestArrays(**{**good, **change})


def test_bad_options_are_named() -> None:
    r = requests([0.0], 10, 10)
    with pytest.raises(ReplayError, match="max_tokens policy must be"):
        replay(r, LLAMA, QuotaLimits(), max_tokens="unset")  # type: ignore[arg-type]
    with pytest.raises(ReplayError, match="no requests to replay"):
        replay(requests([0.0], 10, 10, ok=False), LLAMA, QuotaLimits(), failed="exclude")

"""Tests for Bedrock-style quota enforcement (emulator/quota.py), on a hand-driven clock."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, strategies as st

from capacity.serving import (
    THROTTLE_MESSAGES,
    Admission,
    QuotaLedger,
    QuotaLimits,
    Rejection,
)

TOKENS_MSG = "Too many tokens, please wait before trying again."
REQUESTS_MSG = "Too many requests, please wait before trying again."
TPD_MSG = "Too many tokens per day, please wait before trying again."


class FakeClock:
    """A clock that only moves when the test says so."""

    def __init__(self, t_s: float = 0.0) -> None:
        self.t_s = t_s

    def __call__(self) -> float:
        return self.t_s

    def advance(self, dt_s: float) -> None:
        self.t_s += dt_s


def ledger(clock: FakeClock | None = None, **limits: Any) -> QuotaLedger:
    return QuotaLedger(QuotaLimits(**limits), clock or FakeClock())


def admitted(verdict: Admission | Rejection) -> Admission:
    assert isinstance(verdict, Admission), verdict
    return verdict


def rejected(verdict: Admission | Rejection) -> Rejection:
    assert isinstance(verdict, Rejection), verdict
    return verdict


@given(
    input_tokens=st.integers(0, 50_000),
    max_tokens=st.integers(1, 50_000),
    k=st.integers(0, 200),
    extra=st.integers(0, 100_000),
)
def test_fresh_minute_admits_floor_tpm_over_reservation(
    input_tokens: int, max_tokens: int, k: int, extra: int
) -> None:
    reserved = input_tokens + max_tokens
    tpm = reserved * k + extra % reserved  # so floor(tpm / reserved) == k exactly
    if tpm == 0:
        return
    q = ledger(tpm=tpm)
    for _ in range(k):
        assert admitted(q.admit("m", input_tokens, max_tokens)).reserved_tokens == reserved
    r = rejected(q.admit("m", input_tokens, max_tokens))
    assert (r.kind, r.message, r.model_id) == ("tokens", TOKENS_MSG, "m")
    if k == 0:  # the reservation exceeds the bucket's capacity: it can never fit
        assert r.retry_after_s == math.inf
    else:
        assert r.retry_after_s == pytest.approx((reserved - tpm % reserved) / (tpm / 60))


def test_settlement_refunds_admit_more_requests_immediately() -> None:
    q = ledger(tpm=10_000)
    adms = [admitted(q.admit("m", 100, 900)) for _ in range(10)]  # 10 × 1,000 fills the minute
    rejected(q.admit("m", 100, 900))
    for adm in adms[:3]:  # each charged 100 + 400 = 500: 500 back, 1,500 in all
        assert q.settle(adm, 100, 400) == 500
    assert q.available("m") == {"tpm": 1_500.0}
    admitted(q.admit("m", 100, 900))  # 1,500 ≥ 1,000 ...
    r = rejected(q.admit("m", 100, 900))  # ... but 500 < 1,000
    assert r.retry_after_s == pytest.approx(500 / (10_000 / 60))
    assert q.settle(adms[3], 100, 0) == 100  # failed before any output: max_tokens comes back
    assert q.available("m") == {"tpm": 1_400.0}


@given(outputs=st.lists(st.integers(0, 900), min_size=1, max_size=10))
def test_refunds_follow_the_arithmetic(outputs: list[int]) -> None:
    q = ledger(tpm=10_000)
    adms = [admitted(q.admit("m", 100, 900)) for _ in range(10)]
    level = 0
    for adm, out in zip(adms, outputs, strict=False):
        level += 1_000 - q.settle(adm, 100, out)
    assert q.available("m")["tpm"] == level
    extra = 0
    while isinstance(q.admit("m", 100, 900), Admission):
        extra += 1
    assert extra == level // 1_000


def test_burndown_five_charges_output_five_times_and_can_leave_debt() -> None:
    clock = FakeClock()
    q = ledger(clock, tpm=1_000)
    adm = admitted(q.admit("claude", 100, 500))  # reserves 600, level 400
    assert q.settle(adm, 100, 500, burndown=5) == 100 + 5 * 500
    assert q.available("claude") == {"tpm": 400.0 - 2_000.0}  # charged 2,000 more than reserved
    r = rejected(q.admit("claude", 100, 500))
    assert r.retry_after_s == pytest.approx((600 + 1_600) / (1_000 / 60))  # 132 s
    clock.advance(131.9)
    rejected(q.admit("claude", 100, 500))
    clock.advance(0.1)
    admitted(q.admit("claude", 100, 500))


def test_charge_rounds_half_up() -> None:
    q = ledger(tpm=10_000)
    assert q.settle(admitted(q.admit("m", 0, 10)), 0, 3, burndown=1.5) == 5  # 4.5 → 5
    assert q.settle(admitted(q.admit("m", 0, 20)), 0, 10, burndown=1.1) == 11  # not 12


@given(
    tpm=st.integers(1, 10_000_000),
    used_fraction=st.floats(0, 1),
    dt_s=st.floats(0, 120),
    start_s=st.floats(0, 1e6),
)
def test_refill_is_tpm_per_60_seconds_capped(
    tpm: int, used_fraction: float, dt_s: float, start_s: float
) -> None:
    clock = FakeClock(start_s)
    q = ledger(clock, tpm=tpm)
    used = int(tpm * used_fraction)
    admitted(q.admit("m", used, 0))
    clock.advance(dt_s)
    expected = min(tpm, tpm - used + tpm * dt_s / 60)
    assert q.available("m")["tpm"] == pytest.approx(expected, rel=1e-9, abs=1e-3)


@given(
    tpm=st.integers(60, 10_000_000),
    first=st.integers(0, 10_000_000),
    second=st.integers(1, 10_000_000),
    start_s=st.floats(0, 1e6),
)
def test_retry_after_is_exact(tpm: int, first: int, second: int, start_s: float) -> None:
    clock = FakeClock(start_s)
    q = ledger(clock, tpm=tpm)
    first, second = first % tpm + 1, second % tpm + 1
    admitted(q.admit("m", first, 0))
    verdict = q.admit("m", second, 0)
    if isinstance(verdict, Admission):
        return
    wait_s = verdict.retry_after_s
    clock.advance(wait_s * 0.99)  # at least 0.01 tokens short
    rejected(q.admit("m", second, 0))
    clock.advance(wait_s * 0.01)
    admitted(q.admit("m", second, 0))


def test_rpm_is_enforced_with_its_message_and_not_refunded() -> None:
    clock = FakeClock()
    q = ledger(clock, rpm=3)
    adms = [admitted(q.admit("m", 10_000, 10_000)) for _ in range(3)]
    for adm in adms:
        q.settle(adm, 10_000, 0)
    r = rejected(q.admit("m", 1, 1))
    assert (r.kind, r.message) == ("requests", REQUESTS_MSG)
    assert r.retry_after_s == pytest.approx(20.0)  # one request per 60/3 s
    clock.advance(20.0)
    admitted(q.admit("m", 1, 1))


def test_tpd_is_enforced_with_its_message_and_refunded() -> None:
    clock = FakeClock()
    q = ledger(clock, tpd=1_000)
    adms = [admitted(q.admit("m", 100, 200)) for _ in range(3)]
    r = rejected(q.admit("m", 100, 200))
    assert (r.kind, r.message) == ("tokens_per_day", TPD_MSG)
    assert r.retry_after_s == pytest.approx((300 - 100) / (1_000 / 86_400))
    q.settle(adms[0], 100, 0)  # 200 back: level 300
    admitted(q.admit("m", 100, 200))
    r = rejected(q.admit("m", 0, 1_001))
    assert (r.kind, r.retry_after_s) == ("tokens_per_day", math.inf)


def test_messages_are_bedrocks() -> None:
    runtime = {k: THROTTLE_MESSAGES[k] for k in ("tokens", "requests", "tokens_per_day")}
    assert runtime == {"tokens": TOKENS_MSG, "requests": REQUESTS_MSG, "tokens_per_day": TPD_MSG}
    assert len(f'{{"message":"{TOKENS_MSG}"}}'.encode()) == 63  # a real 429 body's length


def test_each_model_id_has_its_own_buckets() -> None:
    q = ledger(tpm=1_000, rpm=10, tpd=5_000)
    admitted(q.admit("us.x", 0, 1_000))
    rejected(q.admit("us.x", 0, 1))
    admitted(q.admit("x", 0, 1_000))
    assert q.available("us.x") == q.available("x") == {"tpm": 0.0, "rpm": 9.0, "tpd": 4_000.0}
    assert q.available("never-seen") == {"tpm": 1_000.0, "rpm": 10.0, "tpd": 5_000.0}


def test_a_rejection_consumes_nothing() -> None:
    clock = FakeClock()
    q = ledger(clock, rpm=10, tpm=1_000, tpd=1_500)
    admitted(q.admit("m", 0, 800))
    before = q.available("m")
    assert rejected(q.admit("m", 0, 500)).kind == "tokens"  # RPM fits, TPM does not
    assert q.available("m") == before
    clock.advance(60.0)  # TPM and RPM full again; TPD has 700 + 1,500 × 60/86,400
    before = q.available("m")
    assert rejected(q.admit("m", 0, 800)).kind == "tokens_per_day"  # RPM and TPM fit
    assert q.available("m") == before
    for _ in range(10):
        admitted(q.admit("m", 0, 0))
    before = q.available("m")
    assert rejected(q.admit("m", 0, 0)).kind == "requests"
    assert q.available("m") == before


def test_a_reservation_above_capacity_is_never_admitted() -> None:
    clock = FakeClock()
    q = ledger(clock, tpm=1_000)
    r = rejected(q.admit("m", 900, 101))
    assert (r.kind, r.message, r.retry_after_s) == ("tokens", TOKENS_MSG, math.inf)
    clock.advance(1e9)
    rejected(q.admit("m", 900, 101))
    admitted(q.admit("m", 900, 100))  # exactly the capacity fits a full bucket


@pytest.mark.parametrize(
    ("field", "value"), [("tpm", 0), ("rpm", -1), ("tpd", 0), ("tpm", -600_000)]
)
def test_invalid_limits_name_the_field(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=rf"QuotaLimits\.{field} must be a positive"):
        QuotaLimits(**{field: value})  # type: ignore[arg-type]


def test_unlimited_admits_everything() -> None:
    q = ledger()
    for _ in range(1_000):
        q.settle(admitted(q.admit("m", 10**9, 10**9)), 10**9, 10**9, burndown=5)
    assert q.available("m") == {}


def test_an_admission_settles_once_and_only_on_its_ledger() -> None:
    q, other = ledger(tpm=1_000), ledger(tpm=1_000)
    adm = admitted(q.admit("m", 0, 500))
    assert q.open_admissions() == 1
    with pytest.raises(ValueError, match="not open on this ledger"):
        other.settle(adm, 0, 0)
    with pytest.raises(ValueError, match="not open on this ledger"):
        q.settle(dataclasses.replace(adm), 0, 0)  # an equal copy is not the admission
    q.settle(adm, 0, 0)
    assert q.open_admissions() == 0
    with pytest.raises(ValueError, match="not open on this ledger"):
        q.settle(adm, 0, 0)
    assert q.available("m") == {"tpm": 1_000.0}  # refunded once, not twice


def test_invalid_arguments_are_rejected_without_side_effects() -> None:
    q = ledger(tpm=1_000)
    with pytest.raises(ValueError, match="must be >= 0"):
        q.admit("m", -1, 10)
    adm = admitted(q.admit("m", 0, 500))
    for args in [(-1, 0, 1.0), (0, -1, 1.0), (0, 0, 0.0), (0, 0, math.nan), (0, 0, math.inf)]:
        with pytest.raises(ValueError):
            q.settle(adm, *args)
    assert q.settle(adm, 0, 0) == 0  # still open after the rejected calls


def test_a_clock_stepping_back_refills_nothing() -> None:
    clock = FakeClock(100.0)
    q = ledger(clock, tpm=6_000)
    admitted(q.admit("m", 0, 6_000))
    clock.advance(-50.0)
    assert q.available("m") == {"tpm": 0.0}
    clock.advance(60.0)  # 10 s past the admission: 10 × 100 tokens
    assert q.available("m")["tpm"] == pytest.approx(1_000.0)


# --- Model-based check against an exact (Fraction) restatement of the rule -----------------

_PERIODS_S = {"tpm": 60, "rpm": 60, "tpd": 86_400}
_KINDS = {"tpm": "tokens", "rpm": "requests", "tpd": "tokens_per_day"}
_tokens = st.integers(0, 2_000)
_burndown = st.sampled_from([1, 5])
_admit = st.tuples(st.just("admit"), st.sampled_from(["m", "us.m"]), _tokens, _tokens)
_op = st.one_of(  # admissions twice as likely, so buckets run dry and rejections happen
    st.tuples(st.just("advance"), st.integers(0, 90)),
    _admit,
    _admit,
    st.tuples(st.just("settle"), st.integers(0, 50), st.integers(0, 3_000), _burndown),
)


@given(
    tpm=st.none() | st.integers(1, 20_000),
    rpm=st.none() | st.integers(1, 6),
    tpd=st.none() | st.integers(1, 200_000),
    ops=st.lists(_op, min_size=10, max_size=60),
)
def test_matches_an_exact_reference_model(
    tpm: int | None, rpm: int | None, tpd: int | None, ops: list[tuple[object, ...]]
) -> None:
    clock = FakeClock()
    q = ledger(clock, tpm=tpm, rpm=rpm, tpd=tpd)
    limits = {name: v for name, v in (("tpm", tpm), ("rpm", rpm), ("tpd", tpd)) if v is not None}
    levels: dict[str, dict[str, Fraction]] = {}
    stamps: dict[str, int] = {}
    now = 0
    open_: list[tuple[Admission, int]] = []

    def refill(model: str) -> dict[str, Fraction]:
        lv = levels.setdefault(model, {k: Fraction(v) for k, v in limits.items()})
        dt = now - stamps.setdefault(model, now)
        for k, cap in limits.items():
            lv[k] = min(Fraction(cap), lv[k] + Fraction(cap * dt, _PERIODS_S[k]))
        stamps[model] = now
        return lv

    for op in ops:
        if op[0] == "advance":
            assert isinstance(op[1], int)
            now += op[1]
            clock.advance(op[1])
        elif op[0] == "admit":
            model, inp, mx = op[1], op[2], op[3]
            assert isinstance(model, str) and isinstance(inp, int) and isinstance(mx, int)
            lv = refill(model)
            need = {"rpm": 1, "tpm": inp + mx, "tpd": inp + mx}
            short = next((k for k in ("rpm", "tpm", "tpd") if k in lv and lv[k] < need[k]), None)
            verdict = q.admit(model, inp, mx)
            if short is None:
                open_.append((admitted(verdict), inp))
                for k in lv:
                    lv[k] -= need[k]
            else:
                r = rejected(verdict)
                assert r.kind == _KINDS[short]
                if need[short] > limits[short]:
                    assert r.retry_after_s == math.inf
                else:
                    wait = (need[short] - lv[short]) * _PERIODS_S[short] / limits[short]
                    assert r.retry_after_s == pytest.approx(float(wait), rel=1e-9)
        elif open_:
            idx, out, burndown = op[1], op[2], op[3]
            assert isinstance(idx, int) and isinstance(out, int) and isinstance(burndown, int)
            adm, inp = open_.pop(idx % len(open_))
            lv = refill(adm.model_id)
            charged = q.settle(adm, inp, out, burndown)
            assert charged == inp + burndown * out
            for k in ("tpm", "tpd"):
                if k in lv:
                    lv[k] = min(Fraction(limits[k]), lv[k] + adm.reserved_tokens - charged)
        for model in ("m", "us.m"):
            expected = refill(model) if model in levels else limits
            got = q.available(model)
            assert got.keys() == expected.keys()
            for k, v in expected.items():
                assert got[k] == pytest.approx(float(v), rel=1e-9, abs=1e-6)

"""``capacity.compare_traffic`` on real traffic: each quota is the smallest whose replay
throttles at most the target — checked against the emulator's ledger driven request by request
(it passes, 0.9× of it fails) — the on-demand Standard TPM is ``llmcap plan --from-trace``'s
(``size_quota``), model units and the monthly cost are recomputed with pandas, and the batch
share is the requests spread evenly."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from capacity.compare import Comparison, GivenFigures, compare_traffic, deferred_mask
from capacity.planning import Quota
from capacity.serving import QuotaLimits, RequestArrays, allowed_throttles, size_quota
from capacity.usage import load_prices
from tests.capacity.compare.ledger_loop import ledger_run

LLAMA = "us.meta.llama3-3-70b-instruct-v1:0"
PRICE = load_prices().price(LLAMA, "us-east-1")
TARGET = 0.001
GIVEN = GivenFigures(pt_unit_input_tpm=500_000, pt_unit_output_tpm=50_000,
                     pt_unit_price_hour={"1m": 30.0}, deferrable_share=0.25)  # fmt: skip


def trace(n: int = 1500, minutes: float = 10.0) -> RequestArrays:
    """``n`` requests over ``minutes``, bursty (a third in the 4th minute), tokens and
    latencies known."""
    rng = np.random.default_rng(11)
    t = np.sort(np.concatenate([rng.uniform(0, 60 * minutes, 2 * n // 3),
                                rng.uniform(180, 240, n - 2 * n // 3)]))  # fmt: skip
    t -= t[0]
    return RequestArrays(
        t, rng.integers(200, 3000, n), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64),
        rng.integers(20, 400, n), np.full(n, 512), rng.uniform(1, 8, n), np.ones(n, dtype=bool),
    )  # fmt: skip


@pytest.fixture(scope="module")
def arrays() -> RequestArrays:
    return trace()


@pytest.fixture(scope="module")
def table(arrays: RequestArrays) -> Comparison:
    return compare_traffic(arrays, LLAMA, PRICE, words="a synthetic trace", quota=Quota(
        600_000, model_id=LLAMA), throttle_target=TARGET, given=GIVEN)  # fmt: skip


def values(c: Comparison, key: str) -> dict[str, float]:
    return {line.kind: line.value for line in c.option(key).lines}


def passes(arrays: RequestArrays, limits: QuotaLimits, tier: str = "default") -> bool:
    throttled, _ = ledger_run(arrays, limits, tier=tier)  # type: ignore[arg-type]
    return throttled <= allowed_throttles(len(arrays), TARGET)


def test_standard_is_plan_from_trace_and_the_ledger_agrees(
    table: Comparison, arrays: RequestArrays
) -> None:
    tpm = size_quota(arrays, LLAMA, throttle_target=TARGET).tpm
    assert values(table, "standard-cross-region") == {"tpm": tpm}
    assert table.option("standard-cross-region").lines[0].code == "L-0E7AA8B7"
    assert passes(arrays, QuotaLimits(tpm=tpm)) and not passes(
        arrays, QuotaLimits(tpm=int(0.9 * tpm))
    )
    throttled, _ = ledger_run(arrays, QuotaLimits(tpm=tpm))
    assert table.option("standard-in-region").throttled_share == throttled / len(arrays)
    assert table.source == "traffic" and table.target_users is None


def test_mantle_input_then_output_tpm_are_the_smallest_that_pass(
    table: Comparison, arrays: RequestArrays
) -> None:
    v = values(table, "mantle")
    i, o = int(v["input_tpm"]), int(v["output_tpm"])

    def mantle(i: int, o: int | None) -> QuotaLimits:
        return QuotaLimits(endpoint="mantle", input_tpm=i, output_tpm=o)

    assert passes(arrays, mantle(i, None)) and not passes(arrays, mantle(int(0.9 * i), None))
    assert passes(arrays, mantle(i, o)) and not passes(arrays, mantle(i, int(0.9 * o)))


def test_reserved_capacity_and_its_overflow_quota_by_the_ledger(
    table: Comparison, arrays: RequestArrays
) -> None:
    v = values(table, "reserved-1m")
    r_in, r_out, tpm = (int(v[k]) for k in ("reserved_input_tpm", "reserved_output_tpm", "tpm"))

    def overflow(a: float, b: float) -> float:
        limits = QuotaLimits(reserved_input_tpm=max(100_000, math.ceil(a)),
                             reserved_output_tpm=max(10_000, math.ceil(b)))  # fmt: skip
        return 1 - ledger_run(arrays, limits, tier="reserved")[1] / len(arrays)

    assert overflow(r_in, r_out) <= 0.05 < overflow(0.9 * r_in, 0.9 * r_out)
    assert table.option("reserved-1m").overflow_share == pytest.approx(overflow(r_in, r_out))

    def with_reserved(t: int) -> QuotaLimits:
        return QuotaLimits(tpm=t, reserved_input_tpm=r_in, reserved_output_tpm=r_out)

    assert passes(arrays, with_reserved(tpm), "reserved")
    assert not passes(arrays, with_reserved(int(0.9 * tpm)), "reserved")


def test_model_units_and_cost_recomputed_with_pandas(
    table: Comparison, arrays: RequestArrays
) -> None:
    minute = (arrays.arrival_s // 60).astype(int)
    frame = pd.DataFrame(
        {"minute": minute, "prompt": arrays.input_tokens, "output": arrays.output_tokens}
    )
    busiest = frame.groupby("minute")[["prompt", "output"]].sum().max()
    units = max(math.ceil(busiest["prompt"] / 500_000), math.ceil(busiest["output"] / 50_000))
    assert values(table, "pt-1m") == {"model_units": units}
    assert table.option("pt-1m").monthly_usd == units * 30 * 730
    assert table.option("pt-none").monthly_usd is None  # no price given for it
    span_s = float(arrays.arrival_s.max() - arrays.arrival_s.min())
    usd = (frame["prompt"].sum() + frame["output"].sum()) * 0.00072 / 1000 * 730 * 3600 / span_s
    assert table.option("standard-cross-region").monthly_usd == pytest.approx(usd, rel=1e-9)
    assert table.option("batch").monthly_usd == pytest.approx(usd * (0.75 + 0.25 * 0.5))


def test_the_batch_share_is_spread_evenly_and_the_rest_sized_alone(
    table: Comparison, arrays: RequestArrays
) -> None:
    mask = deferred_mask(len(arrays), 0.25, arrays.arrival_s)
    assert mask.sum() == math.floor(0.25 * len(arrays))
    gaps = np.diff(np.flatnonzero(mask[np.argsort(arrays.arrival_s)]))
    assert set(gaps.tolist()) == {4}  # every fourth request, in arrival order
    rest = size_quota(arrays.take(~mask), LLAMA, throttle_target=TARGET).tpm
    assert values(table, "batch") == {"tpm": rest, "batch_share": 0.25}


def test_latency_is_the_traffics_logged(table: Comparison, arrays: RequestArrays) -> None:
    o = table.option("priority")
    assert o.latency_s == pytest.approx(float(arrays.latency_s.mean()))
    assert o.ttft_p95_s is None and "logged latency" in o.latency_words
    assert "no latency objective" not in table.objective and table.objective.startswith("none")

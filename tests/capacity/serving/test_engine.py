"""The serving core in virtual time: the step formula, chunked prefill, batching, replicas."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st

from capacity.serving import (
    Cluster,
    Sequence,
    ServiceTier,
    ServingModel,
    SimRequest,
    load_profile,
    simulate,
    simulate_closed_loop,
)

PLAIN = ServingModel(
    t_w_s=0.01, c_b_s=0.0, c_a_s=0.0, c_kv_s=0.0, c_f_s=0.0, alpha0_s=0.1, alpha_in_s=0.0,
    chunk_budget_tokens=1000, max_running=64, replicas=1,
)  # fmt: skip


def run(model: ServingModel, seqs: list[Sequence], at: float = 0.0) -> list[Sequence]:
    cluster = Cluster(model)
    for s in seqs:
        cluster.submit(s, at)
    return cluster.advance(math.inf)


def test_single_request_timeline_is_gateway_plus_one_prefill_step_then_one_step_per_token() -> None:
    (seq,) = run(PLAIN, [Sequence(0, input_tokens=100, output_tokens=5, arrival_s=0.0)])
    # gateway 0.1 s, prefill step 10 ms produces token 1, 4 more decode steps of 10 ms
    assert seq.first_token_s == pytest.approx(0.11)
    assert seq.last_token_s == pytest.approx(0.11 + 4 * 0.01)


def test_prompt_longer_than_chunk_budget_takes_several_prefill_steps() -> None:
    (seq,) = run(PLAIN, [Sequence(0, input_tokens=2500, output_tokens=2, arrival_s=0.0)])
    assert seq.first_token_s == pytest.approx(0.1 + 3 * 0.01)  # ceil(2500 / 1000) steps


def test_step_time_follows_the_formula_with_batch_and_kv_terms() -> None:
    model = ServingModel(
        t_w_s=0.005, c_b_s=1e-3, c_a_s=0.0, c_kv_s=1e-6, c_f_s=0.0, alpha0_s=0.0,
        alpha_in_s=0.0, chunk_budget_tokens=10_000, max_running=64, replicas=1,
    )  # fmt: skip
    seqs = [Sequence(i, input_tokens=1000, output_tokens=3, arrival_s=0.0) for i in range(2)]
    done = run(model, seqs)
    # step 1: prefill both (B=0): t_w = 5 ms → first tokens at 0.005
    assert all(s.first_token_s == pytest.approx(0.005) for s in done)
    # step 2: B=2, K=2·1001: 2 ms + 5 ms + 2.002 ms; step 3: K=2·1002
    step2 = 2e-3 + 0.005 + 2 * 1001 * 1e-6
    step3 = 2e-3 + 0.005 + 2 * 1002 * 1e-6
    assert all(s.last_token_s == pytest.approx(0.005 + step2 + step3) for s in done)


def test_compute_bound_prefill_slows_the_decode_of_others() -> None:
    model = ServingModel(
        t_w_s=0.005, c_b_s=0.0, c_a_s=0.0, c_kv_s=0.0, c_f_s=1e-5, alpha0_s=0.0,
        alpha_in_s=0.0, chunk_budget_tokens=2048, max_running=64, replicas=1,
    )  # fmt: skip
    cluster = Cluster(model)
    a = Sequence(0, 10, 50, 0.0)
    cluster.submit(a, 0.0)
    cluster.advance(0.05)
    b = Sequence(1, 6000, 2, 0.05)
    cluster.submit(b, 0.05)
    cluster.advance(math.inf)
    alone = run(model, [Sequence(0, 10, 50, 0.0)])[0]
    assert a.last_token_s > alone.last_token_s + 0.02  # three 20 ms prefill-chunk steps


def test_max_running_queues_the_rest() -> None:
    model = ServingModel(**{**PLAIN.__dict__, "max_running": 2})
    done = run(model, [Sequence(i, 10, 3, 0.0) for i in range(4)])
    firsts = sorted(s.first_token_s for s in done)
    assert firsts[1] == pytest.approx(0.11)
    assert firsts[2] > firsts[1] + 0.015  # waited for a slot


def test_cancel_frees_the_slot_and_never_finishes() -> None:
    cluster = Cluster(PLAIN)
    a, b = Sequence(0, 10, 1000, 0.0), Sequence(1, 10, 5, 0.0)
    cluster.submit(a, 0.0)
    cluster.submit(b, 0.0)
    cluster.advance(0.2)
    cluster.cancel(a)
    done = cluster.advance(math.inf)
    assert a.cancelled and math.isnan(a.last_token_s)
    assert [s.key for s in done] == [1] or b.finished


def test_least_loaded_router_spreads_over_replicas() -> None:
    model = ServingModel(**{**PLAIN.__dict__, "replicas": 3})
    done = run(model, [Sequence(i, 10, 3, 0.0) for i in range(9)])
    counts = [sum(1 for s in done if s.replica == r) for r in range(3)]
    assert counts == [3, 3, 3]


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 40),
    out=st.integers(1, 60),
    prompt=st.integers(1, 5000),
    replicas=st.integers(1, 3),
)
def test_every_request_gets_exactly_its_tokens_in_order(
    n: int, out: int, prompt: int, replicas: int
) -> None:
    model = ServingModel(**{**PLAIN.__dict__, "replicas": replicas, "c_f_s": 1e-6})
    seen: dict[int, list[int]] = {}

    def listener(t: float, emitted: list[tuple[Sequence, int]]) -> None:
        for seq, count in emitted:
            seen.setdefault(seq.key, []).append(count)

    cluster = Cluster(model)
    for i in range(n):
        cluster.submit(Sequence(i, prompt, out, i * 0.003), i * 0.003)
    done = cluster.advance(math.inf, listener)
    assert sorted(s.key for s in done) == list(range(n))
    for key in range(n):
        assert seen[key] == list(range(1, out + 1))


def test_simulate_reports_client_metrics() -> None:
    profile = load_profile("fast")
    rows = simulate(profile, [SimRequest(0.0, 10, 50)])
    (row,) = rows
    assert row.status == "ok" and row.output_tokens == 50
    assert row.ttft_s > profile.serving.alpha0_s
    assert row.tps == pytest.approx(1 / row.tpot_s)


def test_simulate_applies_the_tpm_quota() -> None:
    profile = load_profile("fast")
    profile = profile.with_overrides(quotas=type(profile.quotas)(tpm=1000))
    # each request reserves (10 + 35 overhead) + 100 = 145 tokens → 6 fit in a fresh bucket
    rows = simulate(profile, [SimRequest(0.0, 10, 100) for _ in range(10)])
    assert [r.status for r in rows].count("ok") == 1000 // 145
    assert [r.status for r in rows].count("throttled") == 10 - 1000 // 145


def test_closed_loop_keeps_the_level_in_flight() -> None:
    profile = load_profile("fast")
    rows = simulate_closed_loop(profile, 8, 80, input_tokens=20, max_tokens=30)
    assert len(rows) == 80
    # sweep-line: until the last start, 8 are in flight at every instant with positive length
    events = sorted([(r.start_s, 1) for r in rows] + [(r.last_token_s, -1) for r in rows])
    last_start = max(r.start_s for r in rows)
    active, prev_t, weighted = 0, 0.0, 0.0
    for t, d in events:
        if t > last_start:
            break
        weighted += active * (t - prev_t)
        active, prev_t = active + d, t
    assert weighted / last_start == pytest.approx(8)


def test_the_waiting_queue_serves_priority_then_standard_then_flex_fifo_within_a_tier() -> None:
    """service-tiers-inference.html: "Priority tier requests are prioritized over Standard and
    Flex tier requests"; Flex gets lower priority than Standard. One request runs at a time
    (max_running 1), so the order of first tokens is the order of the waiting queue."""
    one_at_a_time = ServingModel(
        t_w_s=0.01, c_b_s=0.0, c_a_s=0.0, c_kv_s=0.0, c_f_s=0.0, alpha0_s=0.0, alpha_in_s=0.0,
        chunk_budget_tokens=1000, max_running=1, replicas=1,
    )  # fmt: skip
    tiers = ["default", "flex", "default", "priority", "flex", "priority", "reserved"]
    ranks = {"priority": 0, "reserved": 0, "default": 1, "flex": 2}
    seqs = [Sequence(i, 10, 3, 0.0, priority=ranks[t]) for i, t in enumerate(tiers)]
    cluster = Cluster(one_at_a_time)
    cluster.submit(Sequence(99, 10, 3, 0.0), 0.0)  # already running when the others arrive
    cluster.advance(0.005)
    for s in seqs:
        cluster.submit(s, 0.005)
    cluster.advance(math.inf)
    order = [s.key for s in sorted(seqs, key=lambda s: s.first_token_s)]
    assert order == [3, 5, 6, 0, 2, 1, 4]


def test_priority_keeps_its_ttft_while_standard_queues_under_overload() -> None:
    """Virtual time, the default profile overloaded: Priority requests keep their unloaded
    TTFT while Standard ones queue behind them (the live check does the same on the emulator)."""
    profile = load_profile("fast")
    model = profile.serving.__class__(**{**vars(profile.serving), "max_running": 8})
    tiers: list[ServiceTier] = ["priority" if i % 10 == 0 else "default" for i in range(1_500)]
    schedule = [SimRequest(0.01 * i, 500, 200, label=t, service_tier=t)
                for i, t in enumerate(tiers)]  # fmt: skip
    rows = simulate(profile.with_overrides(serving=model), schedule)
    ttft = {t: sorted(r.ttft_s for r in rows if r.label == t) for t in ("priority", "default")}
    p50 = {t: v[len(v) // 2] for t, v in ttft.items()}
    assert p50["default"] > 10.0  # Standard queues behind the overload for tens of seconds
    # Priority waits only for a running request to finish (no preemption): well under a second.
    assert p50["priority"] < 0.01 * p50["default"]
    assert ttft["priority"][int(0.95 * len(ttft["priority"]))] < 0.5

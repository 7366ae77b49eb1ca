"""Each simulated request's longest inter-token gap, read from the replicas' step ends after the
run, against every token stamp of the same run."""

from __future__ import annotations

import dataclasses
import itertools
import math

from capacity.serving import (
    DEFAULT_PROFILE,
    Cluster,
    Sequence,
    interval_schedule,
    load_profile,
    simulate,
)
from capacity.serving._simulate import max_gaps, simulate_closed_loop, simulate_sequential

PROFILE = load_profile(DEFAULT_PROFILE)


def test_max_gap_is_the_longest_interval_between_token_stamps() -> None:
    model = dataclasses.replace(PROFILE.serving, replicas=2, step_jitter_cv=0.05)
    cluster = Cluster(model, seed=3, record_steps=True)
    stamps: dict[int, list[float]] = {}

    def listener(t: float, emitted: list[tuple[Sequence, int]]) -> None:
        for seq, _ in emitted:
            stamps.setdefault(seq.key, []).append(t)

    seqs = [Sequence(i, 3000 + 100 * i, 1 + 7 * i, 0.05 * i) for i in range(30)]
    for seq in seqs:
        cluster.submit(seq, seq.arrival_s)
    cluster.advance(math.inf, listener)
    for seq, gap in zip(seqs, max_gaps(cluster, seqs), strict=True):
        st = stamps[seq.key]
        assert len(st) == seq.output_tokens
        if len(st) < 2:
            assert math.isnan(gap)
        else:
            assert gap == max(b - a for a, b in itertools.pairwise(st))


def test_a_prefill_chunk_shows_as_one_long_gap() -> None:
    serving = dataclasses.replace(PROFILE.serving, step_jitter_cv=0.0)
    profile = PROFILE.with_overrides(serving=serving)
    alone = simulate(profile, interval_schedule(1, 5, input_tokens=6000, max_tokens=100))
    for r in alone:  # one request at a time: every step is the unloaded step
        assert r.max_gap_s == r.max_gap_s and abs(r.max_gap_s - r.tpot_s) < 1e-3 * r.tpot_s
    busy = simulate(profile, interval_schedule(10, 5, input_tokens=6000, max_tokens=100))
    ok = [r for r in busy if r.status == "ok"]
    # others' prefill chunks interleave: the longest gap is a prefill step, well above TPOT
    assert sum(r.max_gap_s > 1.5 * r.tpot_s for r in ok) > len(ok) / 2
    for rows in (
        simulate_closed_loop(profile, 4, 12, input_tokens=3000, max_tokens=50),
        simulate_sequential(profile, 3, 3, input_tokens=3000, max_tokens=50),
    ):
        assert all(r.tpot_s - 1e-12 <= r.max_gap_s <= r.ttlt_s - r.ttft_s for r in rows)

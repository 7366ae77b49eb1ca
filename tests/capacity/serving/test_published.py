"""A twin from published per-level aggregates: the shipped table reads as the sources state it,
means are compared with simulated means, a capacity limit is identified when the light levels
reach it and carried in the band (and the words) when they do not."""

from __future__ import annotations

import csv
import dataclasses
import functools
import math
from pathlib import Path

import pytest

from capacity.serving import (
    CalibrationError,
    ModelError,
    ProbeCell,
    ServingModel,
    Twin,
    calibrate,
    calibrate_published,
    cell_stats,
    published_cells,
    read_published,
    sweep_levels,
)
from capacity.serving._calibrate import result_stats, system_tps
from capacity.serving._simulate import SimResult
from tests.capacity.serving.twin_probe import TRUTH

TABLE = Path(__file__).resolve().parents[3] / "data" / "reference" / "published_sweeps.csv"
MEDIANS = TABLE.with_name("seed_blog_interval_medians.csv")


def test_the_shipped_table_reads_as_its_sources_state_it() -> None:
    rows = read_published(TABLE)
    nim = {r.level: r for r in sweep_levels(rows, "nim-l33-70b-2xh100-5000-500")}
    stats = nim[50].statistics()
    assert stats == {"ttft_mean": 0.83451, "tpot_mean": 0.05973, "system_tps": 814.37}
    # Little's law on NIM's means: 814.37 / 500 × (0.83451 + 499 × 0.05973) ≈ 50 in flight.
    assert nim[50].little_inflight == pytest.approx(814.37 / 500 * (0.83451 + 499 * 0.05973))
    assert nim[50].little_inflight == pytest.approx(50, rel=0.01)
    oci = {r.level: r for r in sweep_levels(rows, "oci-l33-70b-random")}
    assert oci[256].statistics()["speed_mean"] == 15.27  # output tokens / e2e, TTFT included
    assert (oci[256].input_sd, oci[256].output_sd) == (240, 150)
    # LLMPerf's clients kept 1,976.65 / 300 × 20.16 ≈ 133 in flight at nominal 256: simulated so.
    cell = next(c for c in published_cells(list(oci.values())) if c.level == 256)
    assert cell.closed_level == round(1976.65 / 300 * 20.16)
    unresolved = sweep_levels(rows, "oci-l32-90b-chat-100-100")
    assert all("speed_mean" not in r.statistics() for r in unresolved)  # not compared
    assert all(r.statistics().keys() == {"ttlt_mean", "system_tps"} for r in unresolved)


def test_the_seed_rows_are_the_blogs_medians() -> None:
    rows = sweep_levels(read_published(TABLE), "seed-blog-l33-70b-bedrock")
    with MEDIANS.open() as fh:
        medians = {(int(r["input_tokens"]), float(r["level"])): r for r in csv.DictReader(fh)}
    assert len(rows) == len(medians) == 8
    for r in rows:
        m = medians[(r.input_tokens, r.level)]
        assert r.mode == "interval" and r.statistic == "p50" and r.batches == 60
        assert r.statistics() == {
            "ttft_p50": float(m["median_ttft_s"]),
            "tpot_p50": pytest.approx(1 / float(m["median_tps"])),  # the median of 1/x
        }


@pytest.mark.parametrize(
    ("text", "sweep", "words"),
    [
        ("sweep,level\nx,1\n", None, ["missing columns", "README"]),
        ("{header}\nx,s,m,e,concurrency,one,,,10,0,5,0,mean,0.1,0.01,,,50,\n", "x",
         ["line 2", "level 'one'"]),
        ("{header}\nx,s,m,e,open,1,,,10,0,5,0,mean,0.1,0.01,,,50,\n", "x", ["mode 'open'"]),
        ("{header}\nx,s,m,e,concurrency,1,,,10,0,5,0,mean,0.1,0.01,,,50,\n", "y",
         ["no sweep 'y'", "x"]),
        ("{header}\nx,s,m,e,concurrency,20,,,10,0,5,0,mean,0.1,0.01,,,50,\n", "x",
         ["no level ≤ 10", "--max-level"]),
    ],
)  # fmt: skip
def test_a_bad_table_is_refused_with_one_line(
    tmp_path: Path, text: str, sweep: str | None, words: list[str]
) -> None:
    from capacity.serving._published import COLUMNS

    path = tmp_path / "sweeps.csv"
    path.write_text(text.replace("{header}", ",".join(COLUMNS)))
    with pytest.raises(CalibrationError) as exc:
        calibrate_published(path, sweep, workers=1)
    assert len(str(exc.value).splitlines()) == 1
    for word in words:
        assert word in str(exc.value)


def test_a_mean_row_and_a_p95_row_of_a_level_make_one_cell(tmp_path: Path) -> None:
    from capacity.serving._calibrate import _tail_base
    from capacity.serving._published import COLUMNS

    path = tmp_path / "sweeps.csv"
    path.write_text(
        ",".join(COLUMNS) + "\n"
        "x,s,m,e,concurrency,4,,,100,0,50,0,mean,0.2,0.01,,,150,\n"
        "x,s,m,e,concurrency,4,,,100,0,50,0,p95,0.5,0.02,,,,\n"
    )
    (cell,) = published_cells(read_published(path))
    assert cell.observed == {"ttft_mean": 0.2, "tpot_mean": 0.01, "system_tps": 150.0,
                             "ttft_p95": 0.5, "tpot_p95": 0.02}  # fmt: skip
    assert _tail_base(cell, "ttft_p95") == "ttft_mean"  # a tail is compared with its centre
    # Little's law on the means: 150 / 50 × (0.2 + 49 × 0.01) = 2.07 in flight, not 4.
    assert cell.inflight == pytest.approx(2.07) and cell.closed_level == 2


def test_a_table_of_several_sweeps_asks_which() -> None:
    with pytest.raises(CalibrationError, match=r"choose one with --sweep: nim-l33"):
        calibrate_published(TABLE, workers=1)


def test_means_are_means_and_system_throughput_counts_the_steady_window() -> None:
    def row(start: float, first: float, last: float, n: int) -> SimResult:
        return SimResult("", 0, "ok", start, first, last, 10, n)

    skewed = [row(0, 0.1, 1.0, 10), row(0, 0.1, 1.0, 10), row(0, 2.0, 3.0, 10)]
    stats = result_stats(skewed)
    assert stats["ttft_p50"] == pytest.approx(0.1)
    assert stats["ttft_mean"] == pytest.approx((0.1 + 0.1 + 2.0) / 3)
    assert stats["speed_mean"] == pytest.approx((10 / 1.0 + 10 / 1.0 + 10 / 3.0) / 3)
    # Two requests of 11 tokens, first token at 0 and 10 tokens evenly over [0, 10]: in the
    # window [5, 10] each emits 5 tokens → 10 tokens / 5 s; a request outside adds nothing.
    pair = [row(0, 0, 10, 11), row(0, 0, 10, 11), row(20, 21, 30, 11)]
    assert system_tps(pair, 5.0, 10.0) == pytest.approx(2.0)


def test_model_error_widens_a_band_in_quadrature_and_grows_beyond_the_probe() -> None:
    error = ModelError({"tpot": 0.05}, {"tpot": 0.1}, "test", t90={"tpot": 2.92})
    assert error.half_width("tps_p50", 0.5) == pytest.approx(1.6449 * 0.05)  # inside the probe
    # Beyond it, Student's t for two misses (2.92) on k·ln(ratio), in quadrature.
    half = math.hypot(1.6449 * 0.05, 2.92 * 0.1)
    assert error.half_width("tpot_mean", math.e) == pytest.approx(half)
    low, est, high = error.widen("tpot_mean", math.e, (1.0, 1.0, 1.0))
    assert (low, est, high) == pytest.approx((math.exp(-half), 1.0, math.exp(half)))
    wider = error.widen("tpot_mean", math.e, (0.5, 1.0, 1.0))  # the coefficient band too
    assert wider[0] == pytest.approx(math.exp(-math.hypot(math.log(2), half)))
    assert error.widen("inflight", 9.0, (1.0, 2.0, 3.0)) == (1.0, 2.0, 3.0)  # no family
    assert ModelError.from_dict(error.to_dict()) == error


# -- calibration on aggregates of a known endpoint -----------------------------------------------

INPUT, OUTPUT = 500, 40
MEANS = ("ttft_mean", "tpot_mean", "ttlt_mean", "system_tps")


def aggregates(serving: ServingModel, levels: tuple[int, ...]) -> list[ProbeCell]:
    """Closed-loop means of the known endpoint, as a table would publish them."""
    cells = []
    for level in levels:
        base = ProbeCell(
            label=f"known:concurrency:{level}:{INPUT}", mode="concurrency", level=float(level),
            input_tokens=INPUT, output_tokens=OUTPUT, n_requests=level + max(60, 3 * level),
            observed={}, se={}, inflight=float(level),
        )  # fmt: skip
        got = cell_stats(serving, base, seed=5)
        observed = {k: got[k] for k in MEANS}
        cells.append(dataclasses.replace(base, observed=observed, se=dict.fromkeys(MEANS, 0.03)))
    return cells


LIMITED = dataclasses.replace(TRUTH, replicas=1, max_running=6)


@functools.cache
def twin_of(serving: ServingModel, levels: tuple[int, ...]) -> Twin:
    return calibrate(aggregates(serving, levels), replicas=(1, 2), workers=1, max_nfev=6)


def test_means_of_a_known_endpoint_calibrate_a_twin_that_predicts_a_heavier_level() -> None:
    twin = twin_of(TRUTH, (1, 2, 4, 8))
    held = aggregates(TRUTH, (16,))[0]
    forecast = twin.forecast_cell(held, samples=3)
    for stat in ("tpot_mean", "system_tps", "ttlt_mean"):
        assert forecast.values[stat][1] == pytest.approx(held.observed[stat], rel=0.10), stat
    assert forecast.values["ttft_mean"][1] == pytest.approx(held.observed["ttft_mean"], rel=0.2)
    for row in twin.fit_quality():  # means against simulated means
        assert set(MEANS) <= set(row)
    assert twin.model_error.per_log_ratio  # four levels: the heaviest was left out and predicted


def test_a_limit_the_light_levels_never_reached_is_in_the_band_and_the_words() -> None:
    twin = twin_of(LIMITED, (1, 2, 4))
    assert twin.running_lower_bound == pytest.approx(4, rel=0.1)
    held = aggregates(LIMITED, (24,))[0]  # 6 run, 18 queue: TTFT waits for 3 requests
    forecast = twin.forecast_cell(held, samples=2)
    truth = held.observed["ttft_mean"]
    assert forecast.model_values["ttft_mean"][2] < truth  # the model alone cannot see it
    low, _, high = forecast.values["ttft_mean"]
    assert low <= truth <= high  # the band carries the limit at the probe's load
    assert forecast.cliff and forecast.cliff["system_tps"] < forecast.values["system_tps"][1]
    said = [n for n in forecast.notes if "cannot see where this endpoint saturates" in n]
    assert said and "measure at 24 in flight or accept the risk" in said[0]
    assert any(line.startswith("capacity limit: not seen") for line in twin.describe())


def test_a_limit_the_probe_reached_is_identified() -> None:
    twin = twin_of(LIMITED, (1, 4, 8, 16))  # the gateway holds some: 16 queues, 12 does not
    low, estimate, high = (r * twin.serving.replicas for r in
                           twin.identification.intervals["max_running"])  # fmt: skip
    assert low <= 6 <= high and estimate == pytest.approx(6, abs=1)  # requests running at once
    assert twin.running_lower_bound is None
    assert any(line.startswith("capacity limit: seen") for line in twin.describe())
    held = aggregates(LIMITED, (36,))[0]
    forecast = twin.forecast_cell(held, samples=2)
    assert not forecast.cliff
    assert forecast.values["ttft_mean"][1] == pytest.approx(held.observed["ttft_mean"], rel=0.25)

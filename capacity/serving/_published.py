"""Published load sweeps as calibration cells: a twin from per-level aggregates (docs/twin.md).

A published sweep (``data/reference/published_sweeps.csv``, described in its README) gives, per
load level, aggregates over requests: a mean or a median (``statistic``), maybe a p90 or p95 in
further rows, of TTFT, inter-token latency, end-to-end latency, per-request speed and the
endpoint's output tokens/s. Each (level, prompt size) becomes a ``ProbeCell`` holding those
statistics under the names calibration compares (a mean with the simulated mean, never with a
median), with the workload's lengths (fixed, or normal with the published standard deviations)
and its schedule: a closed loop at the level (``mode`` ``concurrency``) or the seed blog's
batches (``interval``).

A closed loop is simulated at the in-flight count the measurement had: the level, or fewer when
Little's law on the published means says the client kept fewer in flight (mean in flight =
throughput / output tokens × mean end-to-end latency: LLMPerf's clients fall behind their
nominal concurrency at high levels).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capacity.serving._calibrate import CalibrationError, ProbeCell
from capacity.serving._models import load_model_table
from capacity.serving._twin import Twin, calibrate

COLUMNS = (
    "sweep", "source", "model", "serving", "mode", "level", "batches", "interval_s",
    "input_tokens", "input_sd", "output_tokens", "output_sd", "statistic", "ttft_s", "itl_s",
    "per_request_output_tps", "speed_definition", "system_output_tps", "e2e_s",
)  # fmt: skip
"""The columns of a published-sweeps CSV."""

STATISTICS = ("mean", "p50", "p90", "p95")
SPEEDS = ("output/e2e", "1/itl", "unresolved", "")
PUBLISHED_SE = 0.03
"""Log-scale standard error of a published aggregate: the request counts behind a table are
rarely given, and its figures have two or three significant digits (±3 %)."""


@dataclass(frozen=True)
class PublishedLevel:
    """One row of a published sweep (NaN where the source gives nothing)."""

    sweep: str
    source: str
    model: str
    serving: str
    mode: str
    level: float
    batches: int
    interval_s: float
    input_tokens: int
    input_sd: float
    output_tokens: int
    output_sd: float
    statistic: str
    ttft_s: float
    itl_s: float
    per_request_output_tps: float
    speed_definition: str
    system_output_tps: float
    e2e_s: float

    @property
    def mean_e2e_s(self) -> float:
        """The mean end-to-end latency: published, or TTFT + (output − 1) × ITL from means."""
        if self.statistic != "mean":
            return math.nan
        if math.isfinite(self.e2e_s):
            return self.e2e_s
        return self.ttft_s + (self.output_tokens - 1) * self.itl_s

    @property
    def little_inflight(self) -> float:
        """Mean requests in flight by Little's law: completions/s × mean latency (NaN without
        the means it needs). For interval mode, the batch rate × mean latency."""
        e2e = self.mean_e2e_s
        if self.mode == "interval":
            return self.level / self.interval_s * e2e
        return self.system_output_tps / self.output_tokens * e2e

    def statistics(self) -> dict[str, float]:
        """The row's aggregates under calibration's names (``STATS``), where they mean what
        calibration means by them (a speed whose definition is unresolved is left out)."""
        kind = self.statistic
        out: dict[str, float] = {}
        for column, metric in (("ttft_s", "ttft"), ("itl_s", "tpot"), ("e2e_s", "ttlt")):
            value = getattr(self, column)
            if math.isfinite(value):
                out[f"{metric}_{kind}"] = value
        speed = self.per_request_output_tps
        if math.isfinite(speed) and speed > 0:
            if self.speed_definition == "1/itl" and kind == "p50":  # medians commute with 1/x
                out.setdefault("tpot_p50", 1.0 / speed)
            elif self.speed_definition == "output/e2e" and kind == "mean":
                out["speed_mean"] = speed
        if math.isfinite(self.system_output_tps) and kind == "mean":
            out["system_tps"] = self.system_output_tps
        return out


def read_published(path: str | os.PathLike[str]) -> list[PublishedLevel]:
    """Every row of a published-sweeps CSV; raises ``CalibrationError`` naming the file, the
    row and the fix."""
    p = Path(path)
    with p.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = sorted(set(COLUMNS) - set(reader.fieldnames or ()))
        if missing:
            raise CalibrationError(
                f"{p}: not a published-sweeps table (missing columns {', '.join(missing)}); "
                "see data/reference/README.md for the columns"
            )
        return [_row(raw, p, i) for i, raw in enumerate(reader, start=2)]


def _row(raw: Mapping[str, str], path: Path, line: int) -> PublishedLevel:
    def num(key: str) -> float:
        text = (raw.get(key) or "").replace(",", "").strip()
        try:
            return float(text) if text else math.nan
        except ValueError:
            raise CalibrationError(
                f"{path}, line {line}: {key} {text!r} is not a number; write e.g. 0.41"
            ) from None

    level, n_in, n_out = num("level"), num("input_tokens"), num("output_tokens")
    mode, kind, speed = raw["mode"].strip(), raw["statistic"].strip(), raw["speed_definition"]
    problems = []
    if not (level > 0 and n_in > 0 and n_out >= 1):
        problems.append("level, input_tokens and output_tokens must be positive")
    if mode not in ("concurrency", "interval"):
        problems.append(f"mode {mode!r} must be concurrency (closed loop) or interval")
    if kind not in STATISTICS:
        problems.append(f"statistic {kind!r} must be one of {', '.join(STATISTICS)}")
    if speed.strip() not in SPEEDS:
        problems.append(f"speed_definition {speed!r} must be one of {', '.join(SPEEDS[:-1])}")
    if mode == "interval" and not (num("batches") >= 1 and num("interval_s") > 0):
        problems.append("interval mode needs batches ≥ 1 and interval_s > 0")
    if problems:
        raise CalibrationError(f"{path}, line {line}: " + "; ".join(problems))
    return PublishedLevel(
        sweep=raw["sweep"].strip(), source=raw["source"].strip(), model=raw["model"].strip(),
        serving=raw["serving"].strip(), mode=mode, level=level,
        batches=int(num("batches")) if mode == "interval" else 0,
        interval_s=num("interval_s") if mode == "interval" else math.nan,
        input_tokens=round(n_in), input_sd=_zero(num("input_sd")), output_tokens=round(n_out),
        output_sd=_zero(num("output_sd")), statistic=kind, ttft_s=num("ttft_s"),
        itl_s=num("itl_s"), per_request_output_tps=num("per_request_output_tps"),
        speed_definition=speed.strip(), system_output_tps=num("system_output_tps"),
        e2e_s=num("e2e_s"),
    )  # fmt: skip


def _zero(x: float) -> float:
    return 0.0 if math.isnan(x) else x


def sweep_levels(rows: Sequence[PublishedLevel], sweep: str | None = None) -> list[PublishedLevel]:
    """The rows of ``sweep`` (or of the file's only sweep); ``CalibrationError`` names the
    sweeps when the choice is missing or unknown."""
    names = list(dict.fromkeys(r.sweep for r in rows))
    if not names:
        raise CalibrationError("the published table has no rows")
    if sweep is None:
        if len(names) > 1:
            raise CalibrationError(
                f"the table holds {len(names)} sweeps; choose one with --sweep: {', '.join(names)}"
            )
        sweep = names[0]
    chosen = [r for r in rows if r.sweep == sweep]
    if not chosen:
        raise CalibrationError(f"no sweep {sweep!r} in the table; it has {', '.join(names)}")
    return chosen


def published_cells(rows: Sequence[PublishedLevel]) -> list[ProbeCell]:
    """One ``ProbeCell`` per (level, prompt size) of the rows (one sweep), their statistics
    merged (a mean row and a p95 row of the same level make one cell)."""
    groups: dict[tuple[float, int], list[PublishedLevel]] = {}
    for r in rows:
        groups.setdefault((r.level, r.input_tokens), []).append(r)
    return [_cell(group) for group in groups.values()]


def _cell(group: Sequence[PublishedLevel]) -> ProbeCell:
    first = group[0]
    observed: dict[str, float] = {}
    for r in group:
        observed.update(r.statistics())
    inflight = next((r.little_inflight for r in group if math.isfinite(r.little_inflight)),
                    math.nan)  # fmt: skip
    label = f"{first.sweep}:{first.mode}:{first.level:g}:{first.input_tokens}"
    common: dict[str, Any] = {
        "label": label, "mode": first.mode, "level": first.level,
        "input_tokens": first.input_tokens, "output_tokens": max(first.output_tokens, 2),
        "observed": observed, "se": dict.fromkeys(observed, PUBLISHED_SE),
        "inflight": inflight, "input_sd": first.input_sd, "output_sd": first.output_sd,
    }  # fmt: skip
    if first.mode == "interval":
        level = round(first.level)
        arrivals = tuple(b * first.interval_s for b in range(first.batches) for _ in range(level))
        return ProbeCell(n_requests=len(arrivals), arrivals_s=arrivals, batches=first.batches,
                         compared=len(arrivals), **common)  # fmt: skip
    # A closed loop keeps what the client kept: the level, or fewer by Little's law.
    concurrency = min(first.level, inflight) if math.isfinite(inflight) else first.level
    held = max(1, round(concurrency))
    return ProbeCell(n_requests=held + max(60, 3 * held), concurrency=concurrency, **common)


def calibrate_published(
    path: str | os.PathLike[str],
    sweep: str | None = None,
    *,
    max_level: float = 10.0,
    **options: Any,
) -> Twin:
    """A twin calibrated on the levels ≤ ``max_level`` of a published sweep (the CSV at
    ``path``; ``sweep`` may be omitted when it holds one). ``options`` go to ``calibrate``
    (``replicas``, ``seed``, ``workers``, ``progress``, ...). The twin names the sweep it came
    from and, when the model table knows the sweep's model, its model id."""
    rows = sweep_levels(read_published(path), sweep)
    used = [r for r in rows if r.level <= max_level]
    if not used:
        lowest = min(r.level for r in rows)
        raise CalibrationError(
            f"sweep {rows[0].sweep!r} has no level ≤ {max_level:g} (its lowest is "
            f"{lowest:g}); raise --max-level"
        )
    twin = calibrate(published_cells(used), **options)
    first = rows[0]
    known = load_model_table().model(first.model) is not None
    source = {
        "sweep": first.sweep, "model": first.model, "serving": first.serving,
        "url": first.source, "max_level": max_level,
    }  # fmt: skip
    return dataclasses.replace(
        twin,
        model_id=first.model if known else None,
        meta={**twin.meta, "source": source},
    )

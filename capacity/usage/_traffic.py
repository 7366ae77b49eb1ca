"""The traffic analysis: from the aggregates of ``capacity.usage._aggregate`` to rates, peaks,
burstiness and token distributions per model, and the per-minute usage frame the CloudWatch
path writes (docs/traffic.md, "Analysis").

Per model: per-second and per-minute request and token rates over every period from the first
to the last request (empty periods count as 0) with their peak-to-mean; the inter-arrival
coefficient of variation (population standard deviation of the gaps over their mean; not
given when timestamps have whole-second resolution) and the index of dispersion of the
per-second counts (variance over mean: 1 for Poisson arrivals); exact token distributions
(percentiles by linear interpolation, as numpy's default, and power-of-two histograms); the
share of served requests whose prompt (input + cache read + cache write) exceeds 25,000 tokens;
throttles and errors by code. Quota tokens are the settlement rule: input + cache write +
burndown × output (docs/architecture.md, "Quota rules").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from capacity.usage._aggregate import (
    EXECUTORS,
    GROUPINGS,
    LATENCY_QUANTILES,
    VALUE_FIELDS,
    aggregate_duckdb,
    latency_column,
)
from capacity.usage._analysis import UsageSummary, summarize_usage
from capacity.usage._frame import USAGE_COLUMNS, UsageMeta
from capacity.usage._requests import (
    LONG_PROMPT_TOKENS,
    LoadReport,
    RequestTable,
    TrafficSourceError,
)
from capacity.usage._traffic_stats import Distribution, RateStats

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class ModelTraffic:
    """What the traffic of one model looks like; ``usage`` is its per-minute usage frame
    (``USAGE_COLUMNS``), ``seconds`` its per-second rates, ``summary`` the usage summary the
    CloudWatch path prints."""

    model_id: str
    start: str
    end: str
    requests: int
    ok: int
    throttled: int
    errors: int
    error_codes: dict[str, int]
    per_second: RateStats
    per_minute: RateStats
    interarrival_cv: float | None
    dispersion_1s: float
    tokens: dict[str, Distribution]
    max_tokens_known: int
    above_long_prompt: int
    burndown: float
    usage: pd.DataFrame = field(repr=False)
    seconds: pd.DataFrame = field(repr=False)
    summary: UsageSummary = field(repr=False)

    @property
    def share_above_long_prompt(self) -> float:
        """Share of served requests with a prompt above 25,000 tokens."""
        return self.above_long_prompt / self.ok if self.ok else 0.0

    def markdown(self) -> str:
        """A "Traffic" section in Markdown: what per-minute data cannot show."""
        s, mi = self.per_second, self.per_minute
        cv = (
            "n/a (whole-second timestamps)"
            if self.interarrival_cv is None
            else (f"{self.interarrival_cv:.2f}")
        )
        lines = [
            f"## Traffic of `{self.model_id}`",
            "",
            f"{self.requests:,} requests from {self.start} to {self.end}: {self.ok:,} served, "
            f"{self.throttled:,} throttled, {self.errors:,} failed.",
            "",
            "| rate | mean | peak | peak/mean | peak at |",
            "|---|---:|---:|---:|---|",
            f"| requests per second | {s.mean_requests:,.2f} | {s.peak_requests:,.0f} "
            f"| {s.peak_to_mean_requests:.1f}× | {s.peak_at} |",
            f"| requests per minute | {mi.mean_requests:,.1f} | {mi.peak_requests:,.0f} "
            f"| {mi.peak_to_mean_requests:.2f}× | {mi.peak_at} |",
            f"| tokens per minute | {mi.mean_tokens:,.0f} | {mi.peak_tokens:,.0f} "
            f"| {mi.peak_to_mean_tokens:.2f}× | |",
            f"| quota tokens per minute (burndown {self.burndown:g}) | {mi.mean_quota_tokens:,.0f} "
            f"| {mi.peak_quota_tokens:,.0f} | | |",
            "",
            f"- Inter-arrival CV: {cv}; index of dispersion of per-second counts: "
            f"{self.dispersion_1s:.1f} (1 for Poisson arrivals)",
            f"- Requests with more than {LONG_PROMPT_TOKENS:,} prompt tokens: "
            f"{self.above_long_prompt:,} ({self.share_above_long_prompt:.2%})",
            f"- max_tokens known for {self.max_tokens_known:,} of {self.ok:,} served requests",
            "",
            "| tokens per request | mean | p50 | p90 | p99 | max |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, d in self.tokens.items():
            lines.append(
                f"| {name.replace('_', ' ')} | {d.mean:,.0f} | {d.p50:,.0f} | {d.p90:,.0f} "
                f"| {d.p99:,.0f} | {d.max:,.0f} |"
            )
        if self.error_codes:
            lines += ["", "| error code | requests |", "|---|---:|"]
            lines += [f"| {c} | {n:,} |" for c, n in sorted(self.error_codes.items())]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (frames left out; the usage summary included)."""
        return {
            "model_id": self.model_id,
            "start": self.start,
            "end": self.end,
            "requests": self.requests,
            "ok": self.ok,
            "throttled": self.throttled,
            "errors": self.errors,
            "error_codes": self.error_codes,
            "per_second": self.per_second.to_dict(),
            "per_minute": self.per_minute.to_dict(),
            "interarrival_cv": self.interarrival_cv,
            "dispersion_1s": self.dispersion_1s,
            "tokens": {
                k: v.__dict__ | {"histogram": [list(b) for b in v.histogram]}
                for k, v in self.tokens.items()
            },
            "max_tokens_known": self.max_tokens_known,
            "long_prompt_tokens": LONG_PROMPT_TOKENS,
            "above_long_prompt": self.above_long_prompt,
            "share_above_long_prompt": self.share_above_long_prompt,
            "burndown": self.burndown,
            "usage_summary": self.summary.to_dict(),
        }


@dataclass(frozen=True, eq=False)
class TrafficAnalysis:
    """The analysis of every model in a request table, and how the table was read."""

    models: tuple[ModelTraffic, ...]
    report: LoadReport
    executor: str

    def model(self, model_id: str) -> ModelTraffic:
        """The analysis of ``model_id`` (KeyError if absent)."""
        for m in self.models:
            if m.model_id == model_id:
                return m
        raise KeyError(model_id)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "executor": self.executor,
            "load": self.report.to_dict(),
            "models": [m.to_dict() for m in self.models],
        }


def analyze_traffic(
    table: RequestTable,
    *,
    executor: str = "duckdb",
    region: str | None = None,
    quota_tpm: float | None = None,
    quota_rpm: float | None = None,
    burndown: float | None = None,
    threshold: float = 0.8,
    ray_address: str | None = None,
    threads: int | None = None,
) -> TrafficAnalysis:
    """Analyse ``table`` per model with ``executor`` (``duckdb``, or ``ray`` on the Ray
    cluster at ``ray_address``: the same aggregates, see ``capacity.usage._aggregate``).
    ``burndown`` overrides the model table's; ``region`` names the usage frames' Region (else
    the one the logs name); the quotas and ``threshold`` feed the usage summaries."""
    tables = aggregate_traffic(table, executor=executor, ray_address=ray_address, threads=threads)
    return analysis_from_aggregates(
        tables,
        table.report,
        executor=executor,
        region=region,
        quota_tpm=quota_tpm,
        quota_rpm=quota_rpm,
        burndown=burndown,
        threshold=threshold,
    )


def analysis_from_aggregates(
    tables: dict[str, pd.DataFrame],
    report: LoadReport,
    *,
    executor: str,
    region: str | None = None,
    quota_tpm: float | None = None,
    quota_rpm: float | None = None,
    burndown: float | None = None,
    threshold: float = 0.8,
) -> TrafficAnalysis:
    """The analysis from the aggregate tables of one executor (``GROUPINGS``)."""
    from capacity.serving import burndown_for

    missing = [g.name for g in GROUPINGS if g.name not in tables]
    if missing:
        raise ValueError(f"aggregates missing: {missing}")
    if region is None:
        region = report.regions[0] if len(report.regions) == 1 else "unknown"
    models = []
    for model_id in sorted(tables["second"]["model_id"].unique()):
        part = {k: v[v["model_id"] == model_id] for k, v in tables.items()}
        bd = burndown if burndown is not None else burndown_for(model_id).value
        meta = UsageMeta(
            model_id=str(model_id),
            region=region,
            period_s=60,
            quota_tpm=quota_tpm,
            quota_rpm=quota_rpm,
            burndown=bd,
            source=_source(report.fmt),
            notes=tuple(report.lines_for_humans()),
        )
        models.append(_model(part, meta, report, threshold))
    return TrafficAnalysis(tuple(models), report, executor)


def _source(fmt: str) -> str:
    return {"trace": "trace", "llmcap-records": "llmcap-run"}.get(fmt, "invocation-logs")


def _filled(part: pd.DataFrame, key: str) -> pd.DataFrame:
    """The per-period rows from the first to the last period, empty periods as 0."""
    index = np.arange(int(part[key].min()), int(part[key].max()) + 1, dtype=np.int64)
    return part.set_index(key).reindex(index).rename_axis(key).reset_index()


def _rates(frame: pd.DataFrame, key: str, period_s: int, burndown: float) -> RateStats:
    f = frame.fillna({c: 0 for c in frame.columns if c != key})
    tokens = (
        f["ok_input_tokens"]
        + f["ok_cache_read_tokens"]
        + f["ok_cache_write_tokens"]
        + f["ok_output_tokens"]
    ).to_numpy(float)
    quota = _quota(f, burndown)
    requests = f["requests"].to_numpy(float)
    peak = int(np.argmax(requests))
    start = pd.Timestamp(int(f[key].iloc[peak]) * period_s, unit="s", tz="UTC")
    return RateStats(
        period_s=period_s,
        periods=len(f),
        mean_requests=float(requests.mean()),
        peak_requests=float(requests.max()),
        mean_tokens=float(tokens.mean()),
        peak_tokens=float(tokens.max()),
        mean_quota_tokens=float(quota.mean()),
        peak_quota_tokens=float(quota.max()),
        p99_quota_tokens=float(np.percentile(quota, 99)),
        peak_at=start.isoformat(),
    )


def _quota(f: pd.DataFrame, burndown: float) -> Floats:
    return np.asarray(
        f["ok_input_tokens"] + f["ok_cache_write_tokens"] + burndown * f["ok_output_tokens"],
        dtype=float,
    )


def _interarrival_cv(arrivals: pd.DataFrame, whole_seconds: bool) -> float | None:
    """Coefficient of variation of the gaps between consecutive requests (ddof 0)."""
    if whole_seconds:
        return None
    ms = arrivals["ms"].to_numpy(np.int64)
    n = int(arrivals["requests"].sum())
    if n < 3:
        return None
    gaps = np.diff(ms).astype(float) / 1000.0  # same-millisecond requests add gaps of 0
    mean = float(ms[-1] - ms[0]) / 1000.0 / (n - 1)
    if mean <= 0:
        return None
    var = float((gaps**2).sum()) / (n - 1) - mean**2
    return math.sqrt(max(var, 0.0)) / mean


def _usage_frame(minutes: pd.DataFrame) -> pd.DataFrame:
    pct = {latency_column(q) for q in LATENCY_QUANTILES}
    f = minutes.fillna({c: 0 for c in minutes.columns if c not in pct})
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(f["minute"].to_numpy(np.int64) * 60, unit="s", utc=True),
            "invocations": f["ok"].astype(float),
            "throttles": f["throttled"].astype(float),
            "input_tokens": f["ok_input_tokens"].astype(float),
            "output_tokens": f["ok_output_tokens"].astype(float),
            "cache_read_tokens": f["ok_cache_read_tokens"].astype(float),
            "cache_write_tokens": f["ok_cache_write_tokens"].astype(float),
            "estimated_tpm_quota_usage": np.nan,
        }
    )
    n = f["latency_n"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["latency_ms_avg"] = np.where(n > 0, f["latency_sum"].to_numpy(float) / n, np.nan)
    frame["latency_ms_avg"] *= 1000.0
    for q in LATENCY_QUANTILES:
        col = f"latency_ms_p{round(q * 100):d}"
        frame[col] = f[latency_column(q)].to_numpy(float) * 1000.0
    for col in ("ttft_ms_avg", "ttft_ms_p50", "ttft_ms_p90", "ttft_ms_p99"):
        frame[col] = np.nan
    return frame[list(USAGE_COLUMNS)]


def _model(
    part: dict[str, pd.DataFrame], meta: UsageMeta, report: LoadReport, threshold: float
) -> ModelTraffic:
    bd = meta.burndown
    seconds, minutes = _filled(part["second"], "second"), _filled(part["minute"], "minute")
    sec_counts = seconds["requests"].fillna(0).to_numpy(float)
    codes = part["codes"]
    tokens = {}
    values = part["values"]
    for f in VALUE_FIELDS:
        v = values[values["field"] == f]
        d = Distribution.of_counts(v["value"].to_numpy(np.int64), v["requests"].to_numpy(np.int64))
        if d is not None:
            tokens[f] = d
    prompt = values[values["field"] == "prompt_tokens"]
    usage = _usage_frame(minutes)
    sec_frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(seconds["second"].to_numpy(np.int64), unit="s", utc=True),
            "requests": sec_counts,
            "quota_tokens": _quota(seconds.fillna(0), bd),
        }
    )
    totals = part["second"][["requests", "ok", "throttled", "error"]].sum()
    first_ms, last_ms = int(part["arrivals"]["ms"].min()), int(part["arrivals"]["ms"].max())
    return ModelTraffic(
        model_id=meta.model_id,
        start=pd.Timestamp(first_ms, unit="ms", tz="UTC").isoformat(),
        end=pd.Timestamp(last_ms, unit="ms", tz="UTC").isoformat(),
        requests=int(totals["requests"]),
        ok=int(totals["ok"]),
        throttled=int(totals["throttled"]),
        errors=int(totals["error"]),
        error_codes={
            str(c): int(n)
            for c, n in zip(codes["error_code"], codes["requests"], strict=True)
            if c is not None and c == c
        },
        per_second=_rates(seconds, "second", 1, bd),
        per_minute=_rates(minutes, "minute", 60, bd),
        interarrival_cv=_interarrival_cv(part["arrivals"], report.timestamp_resolution_s >= 1),
        dispersion_1s=float(sec_counts.var() / sec_counts.mean()) if sec_counts.mean() else 0.0,
        tokens=tokens,
        max_tokens_known=tokens["max_tokens"].count if "max_tokens" in tokens else 0,
        above_long_prompt=int(prompt.loc[prompt["value"] > LONG_PROMPT_TOKENS, "requests"].sum()),
        burndown=bd,
        usage=usage,
        seconds=sec_frame,
        summary=summarize_usage(usage, meta, threshold=threshold),
    )


def aggregate_traffic(
    table: RequestTable,
    *,
    executor: str = "duckdb",
    ray_address: str | None = None,
    threads: int | None = None,
) -> dict[str, pd.DataFrame]:
    """Every table of ``GROUPINGS`` (keyed by name) computed by ``executor``: ``duckdb`` on this
    machine, or ``ray`` (Ray Data) on the cluster at ``ray_address``."""
    if executor == "duckdb":
        return aggregate_duckdb(table, threads)
    if executor == "ray":
        from capacity.usage._aggregate_ray import aggregate_ray  # Ray loads only when used

        return aggregate_ray(table, ray_address)
    raise TrafficSourceError(f"executor must be one of {EXECUTORS}, not {executor!r}")

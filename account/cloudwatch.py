"""Per-minute Bedrock usage of one model id from CloudWatch (``AWS/Bedrock``, dimension
``ModelId``) as a ``capacity.usage`` frame.

One ``GetMetricData`` request set (paginated) asks for the Sum of Invocations,
InvocationThrottles, InputTokenCount, OutputTokenCount, CacheReadInputTokenCount,
CacheWriteInputTokenCount and EstimatedTPMQuotaUsage, and the Average of TimeToFirstToken and
InvocationLatency; a second asks for their p50/p90/p99. A source that cannot serve percentiles
(moto, or an account without the metric) leaves those columns empty and says so. The emulator
serves all of it from its own traffic (emulator/cloudwatch.py; docs/account.md). Metric math is
not used: every derived number is computed in ``capacity.usage``.

Resolution: CloudWatch keeps 1-minute data for 15 days, 5-minute data for 63 days and hourly
data for 455 days, so ``period_for(days)`` picks 60, 300 or 3600 s and the frame's notes say so.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from account.aws import Connection
from capacity.usage import LATENCY_COLUMNS, SUM_COLUMNS, USAGE_COLUMNS

NAMESPACE = "AWS/Bedrock"
SUMS = {
    "invocations": "Invocations",
    "throttles": "InvocationThrottles",
    "input_tokens": "InputTokenCount",
    "output_tokens": "OutputTokenCount",
    "cache_read_tokens": "CacheReadInputTokenCount",
    "cache_write_tokens": "CacheWriteInputTokenCount",
    "estimated_tpm_quota_usage": "EstimatedTPMQuotaUsage",
}
LATENCY = {"ttft_ms": "TimeToFirstToken", "latency_ms": "InvocationLatency"}
PERCENTILES = ("p50", "p90", "p99")
MAX_DAYS = 455


def period_for(days: float) -> tuple[int, str | None]:
    """The finest period CloudWatch still holds for a window of ``days``, and a note when it is
    coarser than a minute."""
    if days <= 15:
        return 60, None
    if days <= 63:
        return 300, (
            f"{days:g} days is beyond the 15 days CloudWatch keeps 1-minute data: 5-minute "
            "periods are used"
        )
    return 3600, (
        f"{days:g} days is beyond the 63 days CloudWatch keeps 5-minute data: hourly periods "
        "are used"
    )


def _query(qid: str, metric: str, model_id: str, period: int, stat: str) -> dict[str, Any]:
    return {
        "Id": qid,
        "MetricStat": {
            "Metric": {
                "Namespace": NAMESPACE,
                "MetricName": metric,
                "Dimensions": [{"Name": "ModelId", "Value": model_id}],
            },
            "Period": period,
            "Stat": stat,
        },
        "ReturnData": True,
    }


def _get(
    conn: Connection, queries: list[dict[str, Any]], start: datetime, end: datetime
) -> dict[str, dict[datetime, float]]:
    def run(client: Any) -> dict[str, dict[datetime, float]]:
        out: dict[str, dict[datetime, float]] = {q["Id"]: {} for q in queries}
        pages = client.get_paginator("get_metric_data").paginate(
            MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending"
        )
        for page in pages:
            for res in page.get("MetricDataResults", []):
                series = out.setdefault(res["Id"], {})
                for ts, value in zip(res.get("Timestamps", []), res.get("Values", []), strict=True):
                    series[ts.astimezone(UTC)] = float(value)
        return out

    result: dict[str, dict[datetime, float]] = conn.call(
        "cloudwatch", "cloudwatch:GetMetricData", run
    )
    return result


def fetch_usage(
    conn: Connection,
    model_id: str,
    days: float,
    *,
    end: datetime | None = None,
    chunk: timedelta = timedelta(days=1),
) -> tuple[pd.DataFrame, int, list[str]]:
    """The usage frame of ``model_id`` over the ``days`` before ``end`` (now, floored to the
    period), its period in seconds and notes. The window is read ``chunk`` at a time (a day of
    1-minute data for 9 metrics is about 13,000 datapoints, below GetMetricData's 100,800)."""
    if not 0 < days <= MAX_DAYS:
        raise ValueError(f"--days must be in (0, {MAX_DAYS}] (CloudWatch retention)")
    period, note = period_for(days)
    notes = [note] if note else []
    end = end or datetime.now(UTC)
    end = end.replace(second=0, microsecond=0)
    end -= timedelta(seconds=(end.minute * 60) % period)
    start = end - timedelta(days=days)
    # On period boundaries, as CloudWatch stamps its datapoints (a window of 0.02 days is not a
    # whole number of minutes).
    start -= timedelta(seconds=start.timestamp() % period)
    sums = [_query(f"s_{col}", metric, model_id, period, "Sum") for col, metric in SUMS.items()]
    avgs = [
        _query(f"a_{col}_avg", metric, model_id, period, "Average")
        for col, metric in LATENCY.items()
    ]
    pct_queries = [
        _query(f"p_{col}_{p}", metric, model_id, period, p)
        for col, metric in LATENCY.items()
        for p in PERCENTILES
    ]
    data: dict[str, dict[datetime, float]] = {}
    percentiles = True
    lo = start
    while lo < end:
        hi = min(end, lo + max(chunk, timedelta(seconds=period)))
        for qid, series in _get(conn, sums + avgs, lo, hi).items():
            data.setdefault(qid, {}).update(series)
        if percentiles:
            try:
                for qid, series in _get(conn, pct_queries, lo, hi).items():
                    data.setdefault(qid, {}).update(series)
            except (ClientError, BotoCoreError) as exc:  # no extended statistics (moto)
                percentiles = False
                notes.append(
                    f"latency percentiles not available from this source ({type(exc).__name__})"
                )
        lo = hi
    index = pd.date_range(start, end, freq=f"{period}s", inclusive="left", tz="UTC")
    frame = pd.DataFrame({"timestamp": index})

    def column(qid: str, fill: float) -> np.ndarray:
        series = data.get(qid, {})
        return np.array([series.get(ts.to_pydatetime(), fill) for ts in index], dtype=float)

    for col in SUM_COLUMNS:
        # No datapoint means no traffic (0), except for Bedrock's own quota estimate: where it
        # is missing (older data, other APIs) the quota tokens are computed from the counts.
        frame[col] = column(f"s_{col}", np.nan if col == "estimated_tpm_quota_usage" else 0.0)
    if not data.get("s_estimated_tpm_quota_usage"):
        notes.append(
            "EstimatedTPMQuotaUsage has no data: quota tokens are input + cache write + "
            "burndown × output"
        )
    for col in LATENCY_COLUMNS:
        base, _, stat = col.rpartition("_")
        qid = f"a_{col}" if stat == "avg" else f"p_{base}_{stat}"
        frame[col] = column(qid, np.nan)
    if not frame["invocations"].any():
        notes.append(
            f"CloudWatch has no Invocations for ModelId {model_id!r} in this window: check the id "
            "(an inference profile reports under its profile id) and the Region"
        )
    return frame[list(USAGE_COLUMNS)], period, notes

"""CloudWatch ``GetMetricData`` for the ``AWS/Bedrock`` metrics of the emulator's own traffic, so
``llmcap usage --endpoint-url`` reads real numbers offline with real boto3.

What is counted. Every Bedrock-runtime request the emulator answers (Converse, ConverseStream,
InvokeModel, InvokeModelWithResponseStream; not the OpenAI routes, which CloudWatch never sees)
adds samples to per-minute cells of its model id (the id as invoked: a profile id reports under
the profile id, as on Bedrock), in the wall-clock minute the request ended:

==========================  =================================================================
metric                      one sample per request, of
==========================  =================================================================
Invocations                 1, for a request that was served (finished, or its client left)
InputTokenCount             its input tokens (served requests)
OutputTokenCount            the output tokens it sent (served requests)
EstimatedTPMQuotaUsage      the tokens the quota ledger charged at settlement (every admitted
                            request): input + burndown × output
InvocationLatency           ms from arrival to the last token (finished requests)
TimeToFirstToken            ms from arrival to the first token (finished streaming requests)
InvocationThrottles         1, for a request the quota (or an injected 429 storm) refused
InvocationClientErrors      1, for a 4xx other than throttling
InvocationServerErrors      1, for a 5xx or a stream that failed mid-way
==========================  =================================================================

The emulator has no prompt cache, so CacheReadInputTokenCount and CacheWriteInputTokenCount
have no data, and a query for them — or for any other namespace, metric, dimension set or model —
answers an empty series with ``StatusCode: Complete``, as CloudWatch does for a metric that
does not exist. A minute without samples has no datapoint (CloudWatch publishes none either).

Statistics: Sum, SampleCount, Average, Minimum, Maximum and percentiles ``pNN`` / ``pNN.N``
(linear interpolation between order statistics, numpy's default). Each cell keeps at most
``SAMPLE_CAP`` samples (a seeded reservoir) for percentiles — exact up to that many requests a
minute, sampled beyond, as CloudWatch's own percentiles are approximate — and cells older than
``RETENTION_S`` (a day) are dropped. Periods must be multiples of 60 s (the emulator keeps
1-minute data); periods are aligned to multiples of the period since the epoch. Metric math
(``Expression``) is refused with ``InvalidParameterValue``.

Wire formats. botocore picks the first protocol of the service model it supports: JSON 1.0
(``POST /`` with ``X-Amz-Target: GraniteServiceVersion20100801.GetMetricData``, epoch-second
timestamps) in current versions, the query protocol (form-encoded ``Action=GetMetricData``, an
XML answer, ISO 8601 timestamps) in older ones. Both are served from the same request dict.
"""

from __future__ import annotations

import math
import random
import time
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

NAMESPACE = "AWS/Bedrock"
DIMENSION = "ModelId"
TARGET_PREFIX = "GraniteServiceVersion20100801."
API_VERSION = "2010-08-01"
XML_NAMESPACE = "http://monitoring.amazonaws.com/doc/2010-08-01/"
SAMPLE_CAP = 1000
RETENTION_S = 86_400.0
MAX_DATAPOINTS = 100_800  # GetMetricData's default and maximum per call
MAX_QUERIES = 500
_SIMPLE_STATS = ("Sum", "SampleCount", "Average", "Minimum", "Maximum")


class CloudWatchError(Exception):
    """An API error: ``code`` (CloudWatch's error code), ``message`` and HTTP ``status``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class _Cell:
    """The samples of one metric of one model in one minute."""

    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    samples: array[float] = field(default_factory=lambda: array("d"))


class BedrockMetrics:
    """Per-minute samples of the AWS/Bedrock metrics, keyed by model id and metric name.

    ``clock`` gives wall-clock seconds since the epoch (``time.time``); the emulator's service
    records into it from its event loop, and the API reads it from the same loop.
    """

    def __init__(self, clock: Callable[[], float] = time.time, *, seed: int = 0) -> None:
        self._clock = clock
        self._rng = random.Random(seed)
        self._cells: dict[tuple[str, str], dict[int, _Cell]] = {}
        self._oldest_minute = math.inf

    # -- recording ------------------------------------------------------------------------------
    def add(self, model_id: str, metric: str, value: float, t_s: float | None = None) -> None:
        """One sample of ``metric`` for ``model_id`` at ``t_s`` (now by default)."""
        t = self._clock() if t_s is None else t_s
        minute = int(t // 60)
        cell = self._cells.setdefault((model_id, metric), {}).setdefault(minute, _Cell())
        cell.count += 1
        cell.total += value
        cell.low = min(cell.low, value)
        cell.high = max(cell.high, value)
        if len(cell.samples) < SAMPLE_CAP:
            cell.samples.append(value)
        else:  # reservoir sampling (Algorithm R): each sample kept with probability cap/count
            j = self._rng.randrange(cell.count)
            if j < SAMPLE_CAP:
                cell.samples[j] = value
        self._oldest_minute = min(self._oldest_minute, minute)
        self._prune(t)

    def observe(
        self,
        model_id: str,
        outcome: str,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        quota_tokens: int | None = None,
        latency_ms: float | None = None,
        ttft_ms: float | None = None,
    ) -> None:
        """The samples of one request that ended now. ``outcome`` is ``served`` (finished or
        left by its client), ``throttled``, ``client_error`` or ``server_error``; ``quota_tokens``
        is what the ledger charged (None when nothing was admitted)."""
        t = self._clock()
        if outcome == "served":
            self.add(model_id, "Invocations", 1.0, t)
            self.add(model_id, "InputTokenCount", float(input_tokens), t)
            self.add(model_id, "OutputTokenCount", float(output_tokens), t)
        elif outcome == "throttled":
            self.add(model_id, "InvocationThrottles", 1.0, t)
        elif outcome == "client_error":
            self.add(model_id, "InvocationClientErrors", 1.0, t)
        elif outcome == "server_error":
            self.add(model_id, "InvocationServerErrors", 1.0, t)
        else:
            raise ValueError(f"unknown outcome {outcome!r}")
        if quota_tokens is not None:
            self.add(model_id, "EstimatedTPMQuotaUsage", float(quota_tokens), t)
        if latency_ms is not None:
            self.add(model_id, "InvocationLatency", float(latency_ms), t)
        if ttft_ms is not None:
            self.add(model_id, "TimeToFirstToken", float(ttft_ms), t)

    def _prune(self, now_s: float) -> None:
        cutoff = int((now_s - RETENTION_S) // 60)
        if self._oldest_minute >= cutoff:
            return
        oldest = math.inf
        for cells in self._cells.values():
            for minute in [m for m in cells if m < cutoff]:
                del cells[minute]
            oldest = min(oldest, min(cells, default=math.inf))
        self._oldest_minute = oldest

    # -- reading --------------------------------------------------------------------------------
    def series(
        self,
        model_id: str,
        metric: str,
        period_s: int,
        stat: str,
        start_s: float,
        end_s: float,
    ) -> list[tuple[int, float]]:
        """``(period start in epoch seconds, value)`` of every period in ``[start, end)`` that has
        samples, oldest first (``start`` rounded down to the minute)."""
        cells = self._cells.get((model_id, metric), {})
        lo = int(start_s // 60) * 60
        groups: dict[int, list[_Cell]] = {}
        for minute, cell in cells.items():
            t = minute * 60
            if lo <= t < end_s:
                groups.setdefault(t - t % period_s, []).append(cell)
        return [(ts, _statistic(groups[ts], stat)) for ts in sorted(groups)]


def _statistic(cells: list[_Cell], stat: str) -> float:
    count = sum(c.count for c in cells)
    total = sum(c.total for c in cells)
    if stat == "Sum":
        return total
    if stat == "SampleCount":
        return float(count)
    if stat == "Average":
        return total / count
    if stat == "Minimum":
        return min(c.low for c in cells)
    if stat == "Maximum":
        return max(c.high for c in cells)
    return _percentile(cells, float(stat[1:]))


def _percentile(cells: list[_Cell], q: float) -> float:
    """The ``q``-th percentile (linear interpolation) of the cells' samples; a cell that kept a
    reservoir is weighted by its full count."""
    points: list[tuple[float, float]] = []  # (value, weight)
    for c in cells:
        weight = c.count / len(c.samples)
        points.extend((v, weight) for v in c.samples)
    points.sort()
    if all(w == 1.0 for _, w in points):  # exact: every sample kept
        values = [v for v, _ in points]
        pos = q / 100 * (len(values) - 1)
        i = int(pos)
        frac = pos - i
        upper = values[min(i + 1, len(values) - 1)]
        return values[i] + frac * (upper - values[i])
    total = sum(w for _, w in points)
    acc = 0.0
    for value, weight in points:
        acc += weight
        if acc >= q / 100 * total:
            return value
    return points[-1][0]


# -- the API -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Query:
    qid: str
    label: str
    model_id: str | None  # None: not an AWS/Bedrock ModelId series (answers empty)
    metric: str
    period_s: int
    stat: str
    return_data: bool


class CloudWatch:
    """The GetMetricData operation over ``metrics``, in JSON 1.0 and in the query protocol."""

    def __init__(self, metrics: BedrockMetrics) -> None:
        self.metrics = metrics

    def handle_json(self, target: str, body: dict[str, Any]) -> dict[str, Any]:
        """Run the JSON 1.0 operation named by ``target`` (the ``X-Amz-Target`` header)."""
        op = target.removeprefix(TARGET_PREFIX)
        if op != "GetMetricData":
            raise CloudWatchError(
                "InvalidAction", f"The emulator serves CloudWatch GetMetricData only, not {op}."
            )
        answer = self.get_metric_data(
            body.get("MetricDataQueries"), _epoch(body.get("StartTime"), "StartTime"),
            _epoch(body.get("EndTime"), "EndTime"), body.get("ScanBy"),
            body.get("MaxDatapoints"), body.get("NextToken"),
        )  # fmt: skip
        return answer

    def handle_query(self, form: dict[str, str], request_id: str) -> bytes:
        """Run a query-protocol call (form fields) and render CloudWatch's XML answer."""
        action = form.get("Action", "")
        if action != "GetMetricData":
            raise CloudWatchError(
                "InvalidAction", f"The emulator serves CloudWatch GetMetricData only, not {action}."
            )
        tree = _unflatten(form)
        answer = self.get_metric_data(
            tree.get("MetricDataQueries"), _iso(tree.get("StartTime"), "StartTime"),
            _iso(tree.get("EndTime"), "EndTime"), tree.get("ScanBy"),
            tree.get("MaxDatapoints"), tree.get("NextToken"),
        )  # fmt: skip
        return _xml_answer(answer, request_id)

    def get_metric_data(
        self,
        queries: Any,
        start_s: float,
        end_s: float,
        scan_by: Any = None,
        max_datapoints: Any = None,
        next_token: Any = None,
    ) -> dict[str, Any]:
        """The JSON-shaped answer (timestamps in epoch seconds) of one GetMetricData page."""
        parsed = [_parse_query(q) for q in _list(queries, "MetricDataQueries")]
        if not 1 <= len(parsed) <= MAX_QUERIES:
            raise CloudWatchError(
                "InvalidParameterValue", f"MetricDataQueries must hold 1 to {MAX_QUERIES} queries."
            )
        if len({q.qid for q in parsed}) != len(parsed):
            raise CloudWatchError("InvalidParameterValue", "The Ids of the queries must be unique.")
        if not start_s < end_s:
            raise CloudWatchError("InvalidParameterValue", "The StartTime must be before EndTime.")
        limit = MAX_DATAPOINTS if max_datapoints is None else _int(max_datapoints, "MaxDatapoints")
        if not 1 <= limit <= MAX_DATAPOINTS:
            raise CloudWatchError(
                "InvalidParameterValue", f"MaxDatapoints must be 1 to {MAX_DATAPOINTS}."
            )
        descending = (scan_by or "TimestampDescending") == "TimestampDescending"
        results = []
        for q in parsed:
            if not q.return_data:
                continue
            points = [] if q.model_id is None else self.metrics.series(
                q.model_id, q.metric, q.period_s, q.stat, start_s, end_s
            )  # fmt: skip
            if descending:
                points.reverse()
            results.append((q, points))
        return _page(results, limit, next_token)


def _page(
    results: list[tuple[_Query, list[tuple[int, float]]]], limit: int, token: Any
) -> dict[str, Any]:
    """The datapoints ``[offset, offset + limit)`` of all queries' series laid end to end;
    ``NextToken`` is the offset of the next page. A series without datapoints answers on the
    first page."""
    try:
        offset = 0 if token is None else int(str(token))
    except ValueError:
        raise CloudWatchError("InvalidNextToken", "The NextToken is not valid.") from None
    out: list[dict[str, Any]] = []
    end = 0
    for q, points in results:
        lo, end = end, end + len(points)
        a, b = max(lo, offset), min(end, offset + limit)
        if a < b or (not points and offset == 0):
            take = points[a - lo : b - lo] if a < b else []
            out.append(
                {"Id": q.qid, "Label": q.label, "Timestamps": [t for t, _ in take],
                 "Values": [v for _, v in take], "StatusCode": "Complete"}
            )  # fmt: skip
    page: dict[str, Any] = {"MetricDataResults": out, "Messages": []}
    if offset + limit < end:
        page["NextToken"] = str(offset + limit)
    return page


def _parse_query(raw: Any) -> _Query:
    if not isinstance(raw, dict):
        raise CloudWatchError("InvalidParameterValue", "Each query must be a structure.")
    qid = raw.get("Id")
    if not isinstance(qid, str) or not qid[:1].islower():
        raise CloudWatchError(
            "InvalidParameterValue", f"The Id {qid!r} must start with a lowercase letter."
        )
    if raw.get("Expression") is not None:
        raise CloudWatchError(
            "InvalidParameterValue",
            "The emulator does not evaluate metric math (Expression): ask for MetricStat series.",
        )
    stat_block = raw.get("MetricStat")
    if not isinstance(stat_block, dict):
        raise CloudWatchError("InvalidParameterValue", f"Query {qid} needs a MetricStat.")
    metric = stat_block.get("Metric") or {}
    period = _int(stat_block.get("Period"), "Period")
    if period <= 0 or period % 60:
        raise CloudWatchError(
            "InvalidParameterValue",
            f"Period {period} is not served: the emulator keeps 1-minute data, use a multiple "
            "of 60.",
        )
    stat = str(stat_block.get("Stat", ""))
    if stat not in _SIMPLE_STATS and not _is_percentile(stat):
        raise CloudWatchError(
            "InvalidParameterValue",
            f"The statistic {stat!r} is not served: use Sum, SampleCount, Average, Minimum, "
            "Maximum or pNN.",
        )
    dims = [(d.get("Name"), d.get("Value")) for d in _list(metric.get("Dimensions", []), "")]
    name = str(metric.get("MetricName", ""))
    bedrock = metric.get("Namespace") == NAMESPACE and len(dims) == 1 and dims[0][0] == DIMENSION
    return _Query(
        qid=qid, label=str(raw.get("Label") or name), model_id=str(dims[0][1]) if bedrock else None,
        metric=name, period_s=period, stat=stat,
        return_data=_bool(raw.get("ReturnData", True)),
    )  # fmt: skip


def _is_percentile(stat: str) -> bool:
    if not stat.startswith("p"):
        return False
    try:
        q = float(stat[1:])
    except ValueError:
        return False
    return 0 <= q <= 100


def _list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise CloudWatchError("InvalidParameterValue", f"{name or 'The value'} must be a list.")
    return value


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise CloudWatchError("InvalidParameterValue", f"{name} must be a whole number.") from None


def _bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() != "false"


def _epoch(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CloudWatchError("InvalidParameterValue", f"{name} must be a timestamp.")
    return float(value)


def _iso(value: Any, name: str) -> float:
    try:
        stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise CloudWatchError("InvalidParameterValue", f"{name} must be a timestamp.") from None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


# -- the query protocol's wire format ------------------------------------------------------------
def _unflatten(form: dict[str, str]) -> dict[str, Any]:
    """Query-protocol fields (``A.member.1.B.C``) as nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in form.items():
        parts = key.split(".")
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "member":
                continue
            if part.isdigit() and i > 0 and parts[i - 1] == "member":
                index = int(part) - 1
                while len(node) <= index:
                    node.append({})
                if last:
                    node[index] = value
                else:
                    node = node[index]
                continue
            nxt_is_list = not last and parts[i + 1] == "member"
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, [] if nxt_is_list else {})
    return root


def _xml_answer(answer: dict[str, Any], request_id: str) -> bytes:
    def members(tag: str, items: Iterable[str]) -> str:
        return f"<{tag}>" + "".join(f"<member>{i}</member>" for i in items) + f"</{tag}>"

    results = []
    for r in answer["MetricDataResults"]:
        stamps = (
            datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for t in r["Timestamps"]
        )
        results.append(
            f"<member><Id>{escape(r['Id'])}</Id><Label>{escape(r['Label'])}</Label>"
            + members("Timestamps", stamps)
            + members("Values", (repr(float(v)) for v in r["Values"]))
            + f"<StatusCode>{r['StatusCode']}</StatusCode></member>"
        )
    token = answer.get("NextToken")
    body = (
        f'<GetMetricDataResponse xmlns="{XML_NAMESPACE}"><GetMetricDataResult>'
        f"<MetricDataResults>{''.join(results)}</MetricDataResults><Messages/>"
        + (f"<NextToken>{escape(token)}</NextToken>" if token else "")
        + "</GetMetricDataResult>"
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        "</GetMetricDataResponse>"
    )
    return body.encode()


def xml_error(err: CloudWatchError, request_id: str) -> bytes:
    """The query protocol's error document."""
    kind = "Sender" if err.status < 500 else "Receiver"
    return (
        f'<ErrorResponse xmlns="{XML_NAMESPACE}"><Error><Type>{kind}</Type>'
        f"<Code>{escape(err.code)}</Code><Message>{escape(err.message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()

"""The normalised request table: one row per request, whatever the source (docs/traffic.md).

Columns (``REQUEST_COLUMNS``, Arrow types in ``REQUEST_SCHEMA``):

- ``timestamp``: when the request arrived, UTC, timezone-aware, millisecond precision;
- ``model_id``: the model or inference-profile id (ARNs of system inference profiles and
  foundation models are cut to their id; application-profile ARNs are kept whole);
- ``input_tokens``, ``cache_read_tokens``, ``cache_write_tokens``, ``output_tokens``: int64
  (the cache columns are 0 when the source has none; ``input_tokens`` excludes cached tokens,
  as Bedrock's ``inputTokenCount`` does);
- ``max_tokens``: the request's output limit when the source carries it, else null;
- ``latency_s``: the request's end-to-end latency when the source carries it, else null;
- ``status``: ``ok``, ``throttled`` or ``error``; ``error_code``: the error's code (null if ok);
- ``service_tier``, ``operation``: null when the source lacks them.

Arrival seconds are derived from ``timestamp`` (``request_arrays``), never stored twice. A
``RequestTable`` is the Arrow table plus the ``LoadReport`` of what was read and skipped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from capacity.errors import CapacityError
from capacity.serving import SERVICE_TIERS, RequestArrays

if TYPE_CHECKING:
    import pandas as pd

REQUEST_COLUMNS: Final = (
    "timestamp",
    "model_id",
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "max_tokens",
    "latency_s",
    "status",
    "error_code",
    "service_tier",
    "operation",
)
TOKEN_COLUMNS: Final = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
STATUSES: Final = ("ok", "throttled", "error")
REQUEST_SCHEMA: Final = pa.schema(
    [
        pa.field("timestamp", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("model_id", pa.string(), nullable=False),
        *(pa.field(c, pa.int64(), nullable=False) for c in TOKEN_COLUMNS),
        pa.field("max_tokens", pa.int64()),
        pa.field("latency_s", pa.float64()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("error_code", pa.string()),
        pa.field("service_tier", pa.string()),
        pa.field("operation", pa.string()),
    ]
)
LONG_PROMPT_TOKENS: Final = 25_000
"""AWS asks for the share of requests above this many input tokens in a quota request."""


class TrafficSourceError(CapacityError, ValueError):
    """A traffic source that cannot be read (missing, empty, unreadable, naive timestamps); the
    message is one line naming the source and the fix."""


@dataclass(frozen=True)
class LoadReport:
    """What reading a source found: ``files`` read, ``lines`` (non-blank lines or rows),
    ``requests`` kept, and what was skipped — ``malformed`` lines (not JSON, not a record, an
    unparseable timestamp or number; ``first_malformed`` is ``file:line``), ``missing_tokens``
    (records of served requests without token counts), ``other_records`` (JSON objects of
    another kind, e.g. another ``schemaType``), ``unreadable_files`` (``first_unreadable``),
    ``filtered_out`` (other models than the one asked for). ``timestamp_resolution_s`` is 1.0
    when every timestamp is a whole second (Bedrock's logs), else 0.001. ``regions`` are the
    Regions named by the records (empty for traces)."""

    source: str
    fmt: str
    files: int = 0
    lines: int = 0
    requests: int = 0
    malformed: int = 0
    first_malformed: str | None = None
    missing_tokens: int = 0
    other_records: int = 0
    unreadable_files: int = 0
    first_unreadable: str | None = None
    filtered_out: int = 0
    timestamp_resolution_s: float = 0.001
    regions: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        d = asdict(self)
        d["regions"], d["notes"] = list(self.regions), list(self.notes)
        return d

    def lines_for_humans(self) -> list[str]:
        """One line per thing skipped, each naming where to look."""
        out = []
        if self.malformed:
            out.append(
                f"{self.malformed:,} malformed lines skipped (first at {self.first_malformed})"
            )
        if self.missing_tokens:
            out.append(f"{self.missing_tokens:,} records without token counts skipped")
        if self.other_records:
            out.append(f"{self.other_records:,} records of another kind skipped")
        if self.unreadable_files:
            out.append(
                f"{self.unreadable_files:,} unreadable files skipped "
                f"(first: {self.first_unreadable})"
            )
        if self.filtered_out:
            out.append(f"{self.filtered_out:,} requests of other models left out")
        return out + list(self.notes)


@dataclass(frozen=True)
class RequestTable:
    """Normalised requests (``REQUEST_SCHEMA``, sorted by time) and how they were read."""

    arrow: pa.Table
    report: LoadReport

    def __len__(self) -> int:
        return int(self.arrow.num_rows)

    @property
    def models(self) -> tuple[str, ...]:
        """Model ids present, sorted."""
        return tuple(sorted(pc.unique(self.arrow["model_id"]).to_pylist()))

    def start(self, model_id: str) -> datetime:
        """The clock time of ``model_id``'s first request (``arrival_s`` 0 of its arrays)."""
        t = self.for_model(model_id).arrow
        if t.num_rows == 0:
            raise TrafficSourceError(
                f"{self.report.source}: no requests of model {model_id!r}; "
                f"choose one of {', '.join(self.models) or '(none)'}"
            )
        stamp: datetime = t["timestamp"][0].as_py()
        return stamp

    def for_model(self, model_id: str) -> RequestTable:
        """Only the rows of ``model_id``."""
        return RequestTable(
            self.arrow.filter(pc.equal(self.arrow["model_id"], model_id)), self.report
        )

    def to_pandas(self) -> pd.DataFrame:
        """The rows as a DataFrame (nullable integer and string dtypes)."""
        frame: pd.DataFrame = self.arrow.to_pandas(types_mapper=_pandas_type)
        return frame


def _pandas_type(t: pa.DataType) -> Any:
    import pandas as pd

    if pa.types.is_int64(t):
        return pd.Int64Dtype()
    if pa.types.is_string(t):
        return pd.StringDtype()
    return None


def finish_table(table: pa.Table, report: LoadReport, *, presorted: bool = False) -> RequestTable:
    """``table`` cast to ``REQUEST_SCHEMA`` and sorted by time, then by every other column (so
    the order does not depend on the order the source was read in) unless ``presorted``."""
    table = table.select(list(REQUEST_COLUMNS)).cast(REQUEST_SCHEMA)
    if not presorted:
        idx = pc.sort_indices(table, sort_keys=[(c, "ascending") for c in REQUEST_COLUMNS])
        table = table.take(idx)
    return RequestTable(table, report)


def request_arrays(table: RequestTable, model_id: str) -> RequestArrays:
    """The requests of ``model_id`` in ``table`` as the replay's ``RequestArrays``
    (``capacity.serving``), in arrival order; ``RequestTable.start(model_id)`` is the clock
    time of ``arrival_s`` 0.

    ``arrival_s`` is float64 seconds from the model's first request; when the source stamps
    whole seconds (``LoadReport.timestamp_resolution_s`` 1.0, as Bedrock's logs do), the n
    requests of one second are spread evenly over it (k/n s after it, k = 0…n−1, in table
    order) instead of arriving at one instant. ``max_tokens`` is −1 where unknown,
    ``latency_s`` NaN where unknown, ``ok`` True for served requests (throttled and failed ones
    are kept: they arrived too); ``service_tier`` where the log names tiers (unnamed or unknown
    ones are Standard, ``default``), so Reserved capacity and the tiers replay as logged."""
    t = table.for_model(model_id).arrow
    if t.num_rows == 0:
        raise TrafficSourceError(
            f"{table.report.source}: no requests of model {model_id!r}; "
            f"choose one of {', '.join(table.models) or '(none)'}"
        )
    ms = t["timestamp"].cast(pa.int64()).to_numpy()
    first = int(ms[0])
    arrival = (ms - first).astype(np.float64) / 1000.0
    if table.report.timestamp_resolution_s >= 1.0:
        arrival = _spread_within_second(ms - first)

    def ints(name: str, null: int) -> npt.NDArray[np.int64]:
        return np.asarray(t[name].fill_null(null).to_numpy(), dtype=np.int64)

    latency = t["latency_s"].fill_null(np.nan).to_numpy()
    tiers = None
    if t["service_tier"].null_count < t.num_rows:  # the log names tiers: Priority, Flex, …
        named = t["service_tier"].fill_null("default").to_pylist()
        tiers = np.array([x if x in SERVICE_TIERS else "default" for x in named])
    return RequestArrays(
        service_tier=tiers,
        arrival_s=arrival,
        input_tokens=ints("input_tokens", 0),
        cache_read_tokens=ints("cache_read_tokens", 0),
        cache_write_tokens=ints("cache_write_tokens", 0),
        output_tokens=ints("output_tokens", 0),
        max_tokens=ints("max_tokens", -1),
        latency_s=np.asarray(latency, dtype=np.float64),
        ok=np.asarray(pc.equal(t["status"], "ok").to_numpy(zero_copy_only=False), dtype=bool),
    )


def _spread_within_second(rel_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Seconds from the first request with the n requests of each whole second at k/n s."""
    second = rel_ms // 1000
    _, start, counts = np.unique(second, return_index=True, return_counts=True)
    rank = np.arange(second.size) - np.repeat(start, counts)
    return second.astype(np.float64) + rank / np.repeat(counts, counts)

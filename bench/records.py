"""Request records: the seam between ``bench`` (which writes them) and ``capacity`` (which reads).

One row per sent request (DESIGN §3.2). ``records.jsonl`` is appended and flushed as each request
ends, so a crash or Ctrl-C loses nothing that finished; ``records.parquet`` is compacted from it
when a level or the run completes.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import pandas as pd

# Column → pandas dtype. The order is the file's column order.
RECORD_COLUMNS: dict[str, str] = {
    "run_id": "string",
    "request_id": "string",
    "provider": "string",
    "model_id": "string",
    "prompt_label": "string",
    "mode": "string",
    "level": "float64",
    "batch": "int64",
    "max_tokens": "int64",
    "temperature": "float64",
    "scheduled_s": "float64",
    "lateness_s": "float64",
    "start_s": "float64",
    "first_token_s": "float64",
    "last_token_s": "float64",
    "end_s": "float64",
    "input_tokens": "float64",
    "output_tokens": "float64",
    "tokens_estimated": "bool",
    "ttft_s": "float64",
    "ttlt_s": "float64",
    "e2e_s": "float64",
    "tpot_s": "float64",
    "tps": "float64",
    "active_at_start": "int64",
    "status": "string",
    "error_code": "string",
    "error_message": "string",
    "server_request_id": "string",
    "server_latency_ms": "float64",
    "retries": "int64",
    "worker": "int64",
}
STATUSES = ("ok", "throttled", "error", "timeout", "cancelled")


@dataclass
class RawResult:
    """What a provider observed for one request: raw ``time.perf_counter()`` stamps, usage and
    the outcome. No derived metrics (those are computed once, in ``derive``)."""

    start_pc: float
    first_token_pc: float = math.nan
    last_token_pc: float = math.nan
    end_pc: float = math.nan
    input_tokens: int | None = None
    output_tokens: int | None = None
    tokens_estimated: bool = False
    status: str = "ok"
    error_code: str | None = None
    error_message: str | None = None
    server_request_id: str | None = None
    server_latency_ms: float | None = None
    retries: int = 0
    active_at_start: int = 0
    text_chunks: int = 0  # chunks that carried output text (not a record column)

    def text_at(self, now_pc: float) -> None:
        """A chunk carrying output text arrived at ``now_pc``."""
        if self.text_chunks == 0:
            self.first_token_pc = now_pc
        self.last_token_pc = now_pc
        self.text_chunks += 1

    def fail(self, status: str, exc: BaseException | None = None) -> None:
        """Record a failure: ``status`` and the exception's class name and message."""
        self.status = status
        if status == "cancelled":
            self.error_code, self.error_message = "Cancelled", "cancelled by the user"
        elif exc is not None:
            self.error_code, self.error_message = type(exc).__name__, str(exc)

    def settle_usage(self) -> None:
        """Without server usage, count text chunks instead and say so (DESIGN §3.2)."""
        if self.output_tokens is None and self.text_chunks:
            self.output_tokens, self.tokens_estimated = self.text_chunks, True


def derive(
    start: float, first: float, last: float, end: float, n: float | None
) -> dict[str, float]:
    """DESIGN §4 metrics from offsets (same clock): ttft, ttlt, e2e, tpot (NaN below 2 tokens,
    never inf), tps = 1 / tpot."""
    ttft = first - start
    ttlt = last - start
    e2e = end - start
    tpot = math.nan
    if n is not None and n >= 2 and not math.isnan(ttlt - ttft):
        tpot = (ttlt - ttft) / (n - 1)
    tps = 1.0 / tpot if tpot > 0 else math.nan
    return {"ttft_s": ttft, "ttlt_s": ttlt, "e2e_s": e2e, "tpot_s": tpot, "tps": tps}


def make_record(raw: RawResult, run_start_pc: float, **context: Any) -> dict[str, Any]:
    """One record row from a provider result; ``context`` carries run_id, request_id, provider,
    model_id, prompt_label, mode, level, batch, max_tokens, temperature, scheduled_s (NaN when
    the request had no scheduled instant) and worker (the worker process or actor that sent it,
    0 in a single-process run)."""
    start = raw.start_pc - run_start_pc
    first = raw.first_token_pc - run_start_pc
    last = raw.last_token_pc - run_start_pc
    end = raw.end_pc - run_start_pc
    scheduled = context.pop("scheduled_s", math.nan)
    row: dict[str, Any] = {
        **context,
        "scheduled_s": scheduled,
        "lateness_s": start - scheduled,
        "start_s": start,
        "first_token_s": first,
        "last_token_s": last,
        "end_s": end,
        "input_tokens": raw.input_tokens,
        "output_tokens": raw.output_tokens,
        "tokens_estimated": raw.tokens_estimated,
        **derive(start, first, last, end, raw.output_tokens),
        "active_at_start": raw.active_at_start,
        "status": raw.status,
        "error_code": raw.error_code,
        "error_message": raw.error_message,
        "server_request_id": raw.server_request_id,
        "server_latency_ms": raw.server_latency_ms,
        "retries": raw.retries,
        "worker": context.get("worker", 0),
    }
    return {name: row.get(name) for name in RECORD_COLUMNS}


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN: null means "did not happen"
    return value


class RecordWriter:
    """Appends records to ``records.jsonl`` (flushed per row) and compacts them to Parquet."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.jsonl = run_dir / "records.jsonl"
        self.parquet = run_dir / "records.parquet"
        self._fh: IO[str] = self.jsonl.open("a", encoding="utf-8")
        self.rows_written = 0

    def write(self, record: dict[str, Any]) -> None:
        """Append one row and flush it to the OS, so a killed process keeps it."""
        line = json.dumps({k: _clean(v) for k, v in record.items()})
        self._fh.write(line + "\n")
        self._fh.flush()
        self.rows_written += 1

    def compact(self) -> Path:
        """Write ``records.parquet`` from the JSONL (atomically: temp file, then rename)."""
        self._fh.flush()
        frame = read_jsonl(self.jsonl)
        tmp = self.parquet.with_suffix(".parquet.tmp")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, self.parquet)
        return self.parquet

    def close(self) -> None:
        """Flush and close the JSONL file."""
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()


def read_jsonl(path: Path) -> pd.DataFrame:
    """Records from a JSONL file as a typed DataFrame (bench's own reader, for compaction and
    resume; ``capacity.load_records`` is the validating reader for analysis)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    frame = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
    for name, dtype in RECORD_COLUMNS.items():
        if dtype == "float64":
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        elif dtype in ("int64", "bool"):
            frame[name] = frame[name].fillna(0).astype(cast(Any, dtype))
        else:
            frame[name] = frame[name].astype("string")
    return frame

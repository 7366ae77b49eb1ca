"""Request records: the seam between ``bench`` (which writes them) and ``capacity`` (which reads).

One row per sent request, with the raw columns of ``contracts.records`` (docs/architecture.md).
``records.jsonl`` is appended and flushed as each request ends, so a crash or Ctrl-C loses
nothing that finished; ``records.parquet`` is compacted from it when a level or the run
completes.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import pandas as pd

from contracts.records import RAW_COLUMNS

RECORD_COLUMNS = RAW_COLUMNS
"""The columns ``RecordWriter`` writes (the one schema: ``contracts.records``)."""


@dataclass
class RawResult:
    """What a provider observed for one request: raw ``time.perf_counter()`` stamps, usage and
    the outcome. No derived metrics: ``capacity.records`` computes them, once."""

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
    max_gap_s: float = 0.0  # longest interval between consecutive text chunks (≥ 2 chunks)

    def text_at(self, now_pc: float) -> None:
        """A chunk carrying output text arrived at ``now_pc``."""
        if self.text_chunks == 0:
            self.first_token_pc = now_pc
        elif now_pc - self.last_token_pc > self.max_gap_s:
            self.max_gap_s = now_pc - self.last_token_pc
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
        """Without server usage, count text chunks instead and say so (``tokens_estimated``)."""
        if self.output_tokens is None and self.text_chunks:
            self.output_tokens, self.tokens_estimated = self.text_chunks, True


def make_record(raw: RawResult, run_start_pc: float, **context: Any) -> dict[str, Any]:
    """One record row from a provider result; ``context`` carries run_id, request_id, provider,
    model_id, prompt_label, mode, level, batch, max_tokens, temperature, scheduled_s (NaN when
    the request had no scheduled instant), worker (the worker process or actor that sent it,
    0 in a single-process run) and the client's own measure of itself while the request was in
    flight, ``loop_lag_s`` and ``client_cpu_share`` (``bench.monitor``; NaN when not measured)."""
    start = raw.start_pc - run_start_pc
    first = raw.first_token_pc - run_start_pc
    last = raw.last_token_pc - run_start_pc
    end = raw.end_pc - run_start_pc
    row: dict[str, Any] = {
        **context,
        "start_s": start,
        "first_token_s": first,
        "last_token_s": last,
        "end_s": end,
        "max_gap_s": raw.max_gap_s if raw.text_chunks >= 2 else math.nan,
        "input_tokens": raw.input_tokens,
        "output_tokens": raw.output_tokens,
        "tokens_estimated": raw.tokens_estimated,
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


def clean(value: Any) -> Any:
    """A JSON-ready value: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN: null means "did not happen"
    return value


# The row of a request whose client was killed before it could write one (see RecordWriter).
CLIENT_STOPPED = (
    "ClientStopped",
    "the client stopped while this request was in flight (no response recorded)",
)
SENT_JOURNAL = "records.sent.jsonl"
SENT_JOURNALS = "records.sent*.jsonl"  # the sweep's journal and its worker processes' own


def worker_journal(worker: int) -> str:
    """The file name of worker process ``worker``'s send journal (in the run directory)."""
    return f"records.sent.w{worker}.jsonl"


@dataclass(frozen=True)
class SentBatch:
    """Requests about to leave together (a batch of an interval schedule, or one request):
    what their journal lines share, and each one's request id and ``max_tokens``. ``start_s``
    is the instant the batch began to leave; each request's own send stamp is in its row."""

    prompt_label: str
    level: float
    batch: int
    scheduled_s: float
    start_s: float
    worker: int
    requests: tuple[tuple[str, int], ...]  # (request_id, max_tokens)

    def _shared(self) -> dict[str, Any]:
        return {
            "prompt_label": self.prompt_label, "level": self.level, "batch": self.batch,
            "scheduled_s": self.scheduled_s, "start_s": self.start_s, "worker": self.worker,
        }  # fmt: skip

    def entries(self) -> list[dict[str, Any]]:
        """One journal entry (a dict) per request."""
        shared = self._shared()
        return [{"request_id": rid, "max_tokens": mt, **shared} for rid, mt in self.requests]

    def lines(self) -> list[str]:
        """The JSON lines of ``entries()``, made without one ``json.dumps`` per request (a
        500-request batch is journalled in well under a millisecond, before it leaves)."""
        tail = json.dumps({k: clean(v) for k, v in self._shared().items()})[1:]
        # request ids are hex strings, max_tokens ints: nothing in them needs JSON escaping
        return [f'{{"request_id": "{rid}", "max_tokens": {n:d}, {tail}' for rid, n in self.requests]


class SentJournal:
    """Journals each request as it is sent: its id, prompt label, level, batch, max_tokens,
    scheduled_s, start_s and worker, one JSON line each, so a resumed run can give every sent
    request a row (``CLIENT_STOPPED``) even if the process was killed before writing it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] = path.open("a", encoding="utf-8")
        self._lines: list[str] = []

    def note(self, entry: dict[str, Any]) -> None:
        """Journal a request about to be sent; ``flush`` writes it before it goes out."""
        self._lines.append(json.dumps({k: clean(v) for k, v in entry.items()}))

    def note_batch(self, sent: SentBatch) -> None:
        """Journal a batch about to be sent; ``flush`` writes it before it goes out."""
        self._lines.extend(sent.lines())

    def flush(self) -> None:
        """Write the journalled lines to the OS (so a killed process keeps them)."""
        if self._lines and not self._fh.closed:
            self._fh.write("\n".join(self._lines) + "\n")
            self._lines.clear()
            self._fh.flush()

    def close(self, *, delete: bool) -> None:
        """Close the file; ``delete`` it when every journalled request has its row."""
        if not self._fh.closed:
            self.flush()
            self._fh.close()
        if delete:
            self.path.unlink(missing_ok=True)


class RecordWriter:
    """Appends records to ``records.jsonl`` (flushed per row) and compacts them to Parquet.

    ``note_sent`` journals each request as it is sent (``records.sent.jsonl``, a
    ``SentJournal``), so a resumed run can give every sent request a row (``CLIENT_STOPPED``)
    even if the process was killed before writing it.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.jsonl = run_dir / "records.jsonl"
        self.parquet = run_dir / "records.parquet"
        self._fh: IO[str] = self.jsonl.open("a", encoding="utf-8")
        self._sent = SentJournal(run_dir / SENT_JOURNAL)
        self.rows_written = 0

    def note_sent(self, entry: dict[str, Any]) -> None:
        """Journal a request about to be sent; ``flush_sent`` writes it before it goes out."""
        self._sent.note(entry)

    def note_sent_batch(self, sent: SentBatch) -> None:
        """Journal a batch about to be sent; ``flush_sent`` writes it before it goes out."""
        self._sent.note_batch(sent)

    def flush_sent(self) -> None:
        """Write the journalled lines to the OS (so a killed process keeps them)."""
        self._sent.flush()

    def write(self, record: dict[str, Any]) -> None:
        """Append one row and flush it to the OS, so a killed process keeps it."""
        line = json.dumps({k: clean(v) for k, v in record.items()})
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
        self._sent.close(delete=True)  # every journalled request has its row now


def read_jsonl(path: Path) -> pd.DataFrame:
    """Records from a JSONL file as a typed DataFrame (bench's own reader, for compaction and
    resume; ``capacity.load_records`` is the validating reader for analysis)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    # Runs written before the one schema also carry derived columns: they are not bench's.
    frame = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
    for name, dtype in RECORD_COLUMNS.items():
        if dtype == "float64":
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        elif dtype in ("int64", "bool"):
            frame[name] = frame[name].fillna(0).astype(cast(Any, dtype))
        else:
            frame[name] = frame[name].astype("string")
    return frame

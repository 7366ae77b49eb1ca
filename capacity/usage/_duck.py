"""The embedded engine of the traffic sources: an in-memory DuckDB connection that persists
nothing, and the two ways lines reach it.

- Local files (``FileLines``): each file is read whole, gunzipped by ISA-L (``isal``, about
  twice zlib's speed) and cut at its newlines by numpy into an Arrow string array over the
  decompressed buffer (no copy, no Python object per line), a few files at a time in threads
  (the decompressor releases the GIL); DuckDB projects each batch. Decompression is most of
  the cost of reading logs, so this path is where the time of ``load_requests`` goes.
- Streams (S3 objects handed over by ``account``, or one file re-read to locate a bad line):
  Arrow's CSV reader splits a binary stream into lines in C++ and numbers them; DuckDB scans
  the Arrow batches as they come.

Either way the text of a line lives only in the engines' buffers; Python receives the projected
fields. The connection has no database file, no spill directory (``temp_directory`` is empty:
a query that does not fit in memory fails instead of writing to disk) and never downloads or
autoloads an extension (json, parquet and icu are built in).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, Final, cast

import duckdb
import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.csv as pa_csv  # type: ignore[import-untyped]
from isal import igzip, igzip_lib

_gunzip = cast(Callable[[bytes], bytes], igzip.decompress)
_GZIP_ERRORS: Final[tuple[type[BaseException], ...]] = (
    OSError, EOFError, ValueError, cast(type[BaseException], igzip_lib.IsalError),
)  # fmt: skip
"""What reading or gunzipping a corrupt or truncated file raises."""

MAX_LINE_BYTES: Final = 16 << 20
"""Longest line read (Bedrock puts bodies above 100 KB in separate objects, so log lines stay
far below this)."""

LINE_SCHEMA: Final = pa.schema(
    [("filename", pa.string()), ("line_no", pa.int64()), ("line", pa.string())]
)


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory connection that writes nothing anywhere, in UTC."""
    con = duckdb.connect(
        ":memory:",
        config={
            "threads": threads or os.cpu_count() or 1,
            "temp_directory": "",
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        },
    )
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    return con


def sql_text(value: str) -> str:
    """``value`` as a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def sql_list(values: Iterable[str]) -> str:
    """A SQL list of string literals."""
    return "[" + ", ".join(sql_text(v) for v in values) + "]"


_OFFSET = r"[T ][0-9]{2}:[0-9]{2}.*([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)$"


def timestamp_sql(tz: str | None, col: str = "ts_text") -> tuple[str, str]:
    """SQL (TIMESTAMPTZ, is-naive) of the text column ``col``: epoch seconds, or ISO 8601 with a
    UTC offset or ``Z``; ISO without one is read in ``tz`` when given, else NULL and naive."""
    epoch = f"TRY_CAST({col} AS DOUBLE)"
    naive = f"({epoch} IS NULL AND NOT regexp_matches({col}, '{_OFFSET}'))"
    local = "NULL" if tz is None else f"timezone({sql_text(tz)}, TRY_CAST({col} AS TIMESTAMP))"
    ts = (
        f"CASE WHEN isfinite({epoch}) THEN to_timestamp({epoch}) WHEN {naive} THEN {local} "
        f"ELSE TRY_CAST({col} AS TIMESTAMPTZ) END"
    )
    return ts, naive


def file_lines_sql(files: Iterable[Path]) -> str:
    """A relation of the lines of ``files`` (``filename``, ``line_no`` NULL: DuckDB's reader
    does not number lines, ``line``: NULL when blank)."""
    return (
        "(SELECT filename, NULL::BIGINT AS line_no, line FROM "
        f"read_csv({sql_list(str(f) for f in files)}, columns={{'line': 'VARCHAR'}}, "
        "delim=chr(1), quote='', escape='', header=false, auto_detect=false, "
        f"strict_mode=false, filename=true, max_line_size={MAX_LINE_BYTES}, "
        f"buffer_size={2 * MAX_LINE_BYTES}))"
    )


def _lines_of(path: Path) -> pa.Table:
    """One file's lines (``LINE_SCHEMA``, numbered from 1): each value is a line with its
    newline (JSON ignores it; a blank line stays blank), over the file's decompressed bytes."""
    raw = path.read_bytes()
    data = _gunzip(raw) if path.name.lower().endswith(".gz") else raw
    del raw
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 10) + 1
    if len(data) and not data.endswith(b"\n"):
        ends = np.append(ends, len(data))
    n = len(ends)
    big = len(data) >= 2**31  # beyond 32-bit offsets: a large string array, cast down by chunk
    offsets = np.concatenate(([0], ends)).astype(np.int64 if big else np.int32)
    kind = pa.LargeStringArray if big else pa.StringArray
    lines = kind.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    return pa.table(
        [pa.repeat(pa.scalar(str(path), pa.string()), n), pa.array(np.arange(1, n + 1)),
         pa.chunked_array([lines]).cast(pa.string()) if big else lines],
        schema=LINE_SCHEMA,
    )  # fmt: skip


class FileLines:
    """The lines of local ``files`` as Arrow tables (``LINE_SCHEMA``, line numbers from 1), one
    per file, in file order, ``threads`` files decompressed at a time (at most twice that many
    held in memory). Files that cannot be read or decompressed (a corrupt or truncated gzip)
    are listed in ``unreadable`` and skipped."""

    def __init__(self, files: Iterable[Path], threads: int | None = None) -> None:
        self.files = list(files)
        self.threads = max(1, threads or os.cpu_count() or 1)
        self.unreadable: list[str] = []

    def tables(self) -> Iterator[pa.Table]:
        """The files' tables as they are ready (the next ones decompress meanwhile)."""
        window: deque[tuple[Path, Future[pa.Table]]] = deque()
        todo = iter(self.files)
        with ThreadPoolExecutor(self.threads, thread_name_prefix="llmcap-lines") as pool:
            for path in todo:
                window.append((path, pool.submit(_lines_of, path)))
                if len(window) >= 2 * self.threads:
                    break
            while window:
                path, future = window.popleft()
                nxt = next(todo, None)
                if nxt is not None:
                    window.append((nxt, pool.submit(_lines_of, nxt)))
                try:
                    yield future.result()
                except _GZIP_ERRORS:
                    self.unreadable.append(str(path))


class StreamLines:
    """The lines of each (name, binary stream) as Arrow batches (``LINE_SCHEMA``), numbered from
    1 per stream; names ending in ``.gz`` are decompressed. ``split`` collects (name, line) of
    lines holding a raw U+0001 byte (never in valid JSON: JSON escapes control characters),
    which the line splitter cannot return whole; they count as malformed. ``unreadable`` names
    the streams that failed part-way (a corrupt gzip member); their earlier lines are kept."""

    def __init__(self, streams: Iterable[tuple[str, IO[bytes]]]) -> None:
        self.streams = streams
        self.split: list[tuple[str, int]] = []
        self.unreadable: list[str] = []

    def reader(self) -> pa.RecordBatchReader:
        """The batches, read as DuckDB pulls them."""
        return pa.RecordBatchReader.from_batches(LINE_SCHEMA, self._batches())

    def _batches(self) -> Iterator[pa.RecordBatch]:
        read = pa_csv.ReadOptions(column_names=["line"], block_size=MAX_LINE_BYTES)
        convert = pa_csv.ConvertOptions(column_types={"line": pa.string()})
        for name, raw in self.streams:
            stream: Any = pa.PythonFile(raw, mode="r")
            if name.lower().endswith(".gz"):
                stream = pa.CompressedInputStream(stream, "gzip")
            try:
                yield from numbered_csv(name, stream, read, convert, 1, self.split, lines=True)
            except (OSError, pa.ArrowException):
                self.unreadable.append(name)


def numbered_csv(
    name: str,
    stream: Any,
    read: pa_csv.ReadOptions,
    convert: pa_csv.ConvertOptions,
    first_line: int,
    invalid: list[tuple[str, int]],
    *,
    lines: bool = False,
) -> Iterator[pa.RecordBatch]:
    """Batches of the CSV ``stream`` with ``filename`` and ``line_no`` in front (row k is line
    ``first_line`` + k − 1); rows with the wrong number of fields are skipped and their lines
    appended to ``invalid`` (their text is never kept). ``lines``: one column, no quoting, the
    U+0001 byte as the separator — a line splitter."""
    skipped: list[int] = []

    def on_invalid(row: Any) -> str:
        skipped.append(int(row.number))
        return "skip"

    parse = pa_csv.ParseOptions(
        invalid_row_handler=on_invalid,
        **(
            {
                "delimiter": "\x01",
                "quote_char": False,
                "escape_char": False,
                "ignore_empty_lines": False,
            }
            if lines
            else {}
        ),
    )
    # Row numbers come only from a single-threaded parse (decompression is one thread anyway).
    read = pa_csv.ReadOptions(
        column_names=read.column_names,
        block_size=read.block_size,
        use_threads=False,
        skip_rows=read.skip_rows,
        autogenerate_column_names=read.autogenerate_column_names,
    )
    offset = first_line - 1  # row number (from 1 over the data rows) → line number
    reader = None
    try:
        reader = pa_csv.open_csv(stream, read, parse, convert)
        yield from _numbered(reader, name, offset, skipped, invalid)
    finally:
        # Close now: a reader left to the garbage collector after a failed read (a corrupt gzip
        # member) may be destroyed at interpreter exit with its read-ahead thread running.
        if reader is not None:
            reader.close()
        stream.close()


def _numbered(
    reader: Any, name: str, offset: int, skipped: list[int], invalid: list[tuple[str, int]]
) -> Iterator[pa.RecordBatch]:
    nxt = 1
    for batch in reader:
        n = batch.num_rows
        rows = np.arange(nxt, nxt + n + len(skipped), dtype=np.int64)
        if skipped:
            rows = np.setdiff1d(rows, np.asarray(skipped, dtype=np.int64))[:n]
            invalid.extend((name, k + offset) for k in skipped)
            skipped.clear()
        nxt = int(rows[-1]) + 1 if n else nxt
        yield pa.RecordBatch.from_arrays(
            [pa.repeat(pa.scalar(name, pa.string()), n), pa.array(rows + offset), *batch.columns],
            names=["filename", "line_no", *batch.schema.names],
        )
    invalid.extend((name, k + offset) for k in skipped)

"""``load_requests``: the one entry point from any traffic source to a ``RequestTable``.

Each source is projected inside DuckDB to one relation: ``filename``, ``line_no`` (NULL where
the reader does not number lines), ``region``, ``kind`` (``row`` kept; ``blank``,
``malformed``, ``other``, ``missing``, ``naive`` skipped and counted) and the request columns.
The kept rows come out as Arrow (timestamps to the millisecond, ordered by time and then by every
other column, so the table does not depend on the order files were read in).
"""

from __future__ import annotations

import contextlib
import zoneinfo
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, Protocol

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]

from capacity.usage import _logs, _traces
from capacity.usage._duck import (
    FileLines,
    StreamLines,
    connect,
    file_lines_sql,
    sql_text,
    timestamp_sql,
)
from capacity.usage._requests import (
    REQUEST_COLUMNS,
    LoadReport,
    RequestTable,
    TrafficSourceError,
    finish_table,
)
from capacity.usage._runs import is_run_source, load_run_records

SOURCE_FORMATS = (*_logs.LOG_FORMATS, "trace", "llmcap-records")
_TRACE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")


class ObjectSource(Protocol):
    """Log objects handed over as binary streams (``account.invocation_logs`` lists S3 with
    boto3): ``name`` (e.g. ``s3://bucket/prefix``) and ``objects()``, which yields (key,
    stream) pairs afresh on each call. Nothing read from them is written anywhere."""

    @property
    def name(self) -> str:
        """The source's name in messages and reports."""
        ...

    def objects(self) -> Iterable[tuple[str, IO[bytes]]]:
        """(key, binary stream) of each object, in key order."""
        ...


def load_requests(
    source: str | Path | ObjectSource,
    *,
    fmt: str | None = None,
    tz: str | None = None,
    model_id: str | None = None,
    default_model_id: str | None = None,
    threads: int | None = None,
) -> RequestTable:
    """Normalised requests from ``source``: a folder or file of invocation logs (local, or an
    ``ObjectSource`` such as S3), a trace (CSV, Parquet, JSON lines), or an llmcap run.

    ``fmt`` forces one of ``SOURCE_FORMATS`` (detected otherwise). ``tz`` is the IANA zone of
    timestamps written without an offset (an error without it). ``model_id`` keeps only that
    model's requests; ``default_model_id`` names trace rows without a ``model_id`` column.
    Raises ``TrafficSourceError`` for a missing, empty or unreadable source."""
    if fmt is not None and fmt not in SOURCE_FORMATS:
        raise TrafficSourceError(f"unknown format {fmt!r}; use one of {', '.join(SOURCE_FORMATS)}")
    if tz is not None:
        _check_zone(tz)
    if not isinstance(source, str | Path):
        return _load_objects(source, fmt, tz, model_id, threads)
    path = Path(source)
    if fmt == "llmcap-records" or (fmt is None and path.exists() and is_run_source(path)):
        return load_run_records(path, model_id)
    if not path.exists():
        raise TrafficSourceError(f"{path}: no such file or folder — check the path")
    if fmt == "trace" or (fmt is None and path.is_file() and _is_trace_file(path)):
        return _load_trace(path, tz, model_id, default_model_id, threads)
    return _load_log_files(path, fmt, tz, model_id, threads)


def _check_zone(tz: str) -> None:
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise TrafficSourceError(
            f"unknown time zone {tz!r} — use an IANA name such as UTC or Europe/Paris"
        ) from exc


def _is_trace_file(path: Path) -> bool:
    name = path.name.lower()
    if name.endswith(_TRACE_SUFFIXES):
        return True
    if not name.endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")):
        return False
    con = connect(1)
    with path.open("rb") as fh:
        con.register("sniff_lines", StreamLines([(str(path), fh)]).reader())
        # A trace line has a timestamp but no schemaType/message: decided inside DuckDB.
        row = _one(
            con,
            "SELECT json_exists(line, '$.schemaType') OR json_exists(line, '$.message') FROM "
            "sniff_lines WHERE regexp_matches(line, '\\S') AND json_valid(line) LIMIT 1",
        )
    return row is not None and not row[0]


# -- invocation logs ------------------------------------------------------------------------
def _load_log_files(
    root: Path, fmt: str | None, tz: str | None, model_id: str | None, threads: int | None
) -> RequestTable:
    files = _logs.list_log_files(root)
    con = connect(threads)
    fmt = fmt or _sniff(con, [file_lines_sql([f]) for f in files], str(root))
    lines = FileLines(files, threads)
    sql = _logs.project_sql("file_lines", fmt, timestamp_sql(tz))
    created = False
    for table in lines.tables():
        con.register("file_lines", table)
        _create(con, sql, append=created)
        con.unregister("file_lines")
        created = True
    bad = lines.unreadable
    good = [f for f in files if str(f) not in set(bad)]
    if not created:
        raise TrafficSourceError(
            f"{root}: no readable log file (first: {bad[0]}) — check that the files are "
            "the gzip'd JSON lines Bedrock writes"
        )

    def locate(filename: str, kind: str) -> int | None:
        """Every line is numbered on this path: nothing to look up again."""
        return None

    base = LoadReport(
        source=str(root),
        fmt=fmt,
        files=len(good),
        unreadable_files=len(bad),
        first_unreadable=bad[0] if bad else None,
    )
    return _collect(con, base, model_id, locate, split=[])


def _load_objects(
    source: ObjectSource,
    fmt: str | None,
    tz: str | None,
    model_id: str | None,
    threads: int | None,
) -> RequestTable:
    con = connect(threads)
    if fmt is None:
        objects = iter(source.objects())
        first = next(objects, None)  # the generator stays alive while its stream is read
        if first is None:
            raise TrafficSourceError(
                f"{source.name}: no log objects — check the bucket and prefix (the folder "
                "holding AWSLogs/<account>/BedrockModelInvocationLogs/)"
            )
        con.register("first_object", StreamLines([first]).reader())
        fmt = _sniff(con, ["first_object"], source.name)
        con.unregister("first_object")
        del first, objects
    names: list[str] = []

    def counted() -> Iterable[tuple[str, IO[bytes]]]:
        for name, stream in source.objects():
            names.append(name)
            yield name, stream

    streams = StreamLines(counted())
    con.register("object_lines", streams.reader())
    _create(con, _logs.project_sql("object_lines", fmt, timestamp_sql(tz)))
    if not names:
        raise TrafficSourceError(f"{source.name}: no log objects — check the bucket and prefix")
    base = LoadReport(
        source=source.name,
        fmt=fmt,
        files=len(names) - len(streams.unreadable),
        unreadable_files=len(streams.unreadable),
        first_unreadable=streams.unreadable[0] if streams.unreadable else None,
    )
    return _collect(con, base, model_id, lambda _f, _k: None, split=streams.split)


def _sniff(con: duckdb.DuckDBPyConnection, relations: list[str], source: str) -> str:
    """The log format of the first relation with a record (decided in DuckDB)."""
    unreadable = []
    for rel in relations:
        try:
            row = _one(con, _logs.sniff_sql(rel))
        except duckdb.Error:  # a corrupt file: the next one decides
            unreadable.append(rel)
            continue
        if row is not None:
            return str(row[0])
    if unreadable and len(unreadable) == len(relations):
        raise TrafficSourceError(
            f"{source}: no readable log file — check that the files are the gzip'd JSON lines "
            "Bedrock writes"
        )
    raise TrafficSourceError(
        f"{source}: the log files hold no JSON records — check that they are Bedrock "
        "invocation logs (or a CloudWatch Logs export of them)"
    )


# -- traces -----------------------------------------------------------------------------------
def _load_trace(
    path: Path,
    tz: str | None,
    model_id: str | None,
    default_model: str | None,
    threads: int | None,
) -> RequestTable:
    con = connect(threads)
    invalid: list[tuple[str, int]] = []
    files = contextlib.ExitStack()
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        reader, columns = _traces.parquet_batches(path)
        text = _traces.columns_sql("trace_rows", columns)
    elif name.endswith((".csv", ".csv.gz")):
        reader, columns = _traces.csv_batches(path, invalid)
        text = _traces.columns_sql("trace_rows", columns)
    else:
        handle = files.enter_context(path.open("rb"))
        streams = StreamLines([(str(path), handle)])
        reader, invalid = streams.reader(), streams.split
        text = _traces.json_columns_sql("trace_rows")
    con.register("trace_rows", reader)
    try:
        with files:
            _create(con, _traces.project_sql(f"({text})", timestamp_sql(tz), default_model))
    except (duckdb.Error, pa.ArrowException) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise TrafficSourceError(
            f"{path}: cannot read the trace ({first}) — check that it is CSV with a header, "
            "Parquet or JSON lines"
        ) from exc
    base = LoadReport(source=str(path), fmt="trace", files=1)
    table = _collect(con, base, model_id, lambda _f, _k: None, split=invalid)
    if default_model is None and _traces.UNNAMED_MODEL in table.models:
        notes = (
            *table.report.notes,
            "rows without a model_id are labelled "
            f"{_traces.UNNAMED_MODEL!r}; pass a model id to name them",
        )
        return RequestTable(table.arrow, _replace(table.report, notes=notes))
    return table


def _replace(report: LoadReport, **changes: Any) -> LoadReport:
    from dataclasses import replace

    return replace(report, **changes)


# -- shared -----------------------------------------------------------------------------------
def _create(con: duckdb.DuckDBPyConnection, projected: str, *, append: bool = False) -> None:
    """The table ``projected`` (or, with ``append``, more rows of it) from the SELECT
    ``projected``. Kept rows need no file name: keeping it only on skipped rows saves memory
    per request."""
    head = "INSERT INTO projected" if append else "CREATE OR REPLACE TABLE projected AS"
    con.execute(
        f"{head} SELECT * REPLACE (CASE WHEN kind = 'row' THEN NULL ELSE filename END AS "
        f"filename) FROM ({projected})"
    )


def _collect(
    con: duckdb.DuckDBPyConnection,
    base: LoadReport,
    model_id: str | None,
    locate: Any,
    split: list[tuple[str, int]],
) -> RequestTable:
    """Counts, checks and the kept rows of the table ``projected``."""
    counts = dict(con.execute("SELECT kind, count(*) FROM projected GROUP BY kind").fetchall())
    first: dict[str, str | None] = {}
    for kind in ("malformed", "naive"):
        where = _first(con, kind, locate) if counts.get(kind) else None
        if kind == "malformed" and split:
            earliest = min(split)
            if where is None or earliest < where:
                where = earliest
        first[kind] = None if where is None else f"{where[0]}:{where[1] or '?'}"
    if counts.get("naive"):
        raise TrafficSourceError(
            f"{first['naive']}: timestamp without a time zone ({counts['naive']:,} such rows) "
            "— pass the zone they were written in (--tz UTC, --tz Europe/Paris, …) or write "
            "them with an offset"
        )
    kept = counts.get("row", 0)
    model_filter = "" if model_id is None else f" AND model_id = {sql_text(model_id)}"
    report = _replace(
        base,
        lines=sum(n for k, n in counts.items() if k != "blank") + len(split),
        malformed=counts.get("malformed", 0) + len(split),
        first_malformed=first["malformed"],
        missing_tokens=counts.get("missing", 0),
        other_records=counts.get("other", 0),
    )
    if kept == 0:
        skipped = "; ".join(report.lines_for_humans()) or "no lines"
        raise TrafficSourceError(
            f"{base.source}: no requests read ({skipped}) — check the source and its format"
        )
    if model_id is not None:
        n = _one(con, f"SELECT count(*) FROM projected WHERE kind = 'row'{model_filter}")
        n_model = int(n[0]) if n else 0
        if n_model == 0:
            models = [
                r[0]
                for r in con.execute(
                    "SELECT DISTINCT model_id FROM projected WHERE kind = 'row' ORDER BY 1 LIMIT 20"
                ).fetchall()
            ]
            raise TrafficSourceError(
                f"{base.source}: no requests of model {model_id!r} — models found: "
                f"{', '.join(models)}"
            )
        report = _replace(report, filtered_out=kept - n_model)
    whole = _one(
        con,
        "SELECT bool_and(epoch_ms(timestamp) % 1000 = 0) FROM projected WHERE kind = 'row'"
        f"{model_filter}",
    )
    regions = con.execute(
        "SELECT DISTINCT region FROM projected WHERE kind = 'row' AND region IS NOT NULL "
        f"{model_filter} ORDER BY 1 LIMIT 50"
    ).fetchall()
    columns = ", ".join(
        "date_trunc('millisecond', timestamp) AS timestamp" if c == "timestamp" else c
        for c in REQUEST_COLUMNS
    )
    order = ", ".join(REQUEST_COLUMNS)
    table: pa.Table = con.sql(
        f"SELECT {columns} FROM projected WHERE kind = 'row'{model_filter} ORDER BY {order}"
    ).to_arrow_table()
    report = _replace(
        report,
        requests=table.num_rows,
        timestamp_resolution_s=1.0 if whole and whole[0] else 0.001,
        regions=tuple(str(r[0]) for r in regions),
    )
    con.execute("DROP TABLE projected")
    return finish_table(table, report, presorted=True)


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...] | None:
    """The first row of ``sql`` (fetching all: DuckDB keeps a result open until it is read)."""
    rows = con.execute(sql).fetchall()
    return rows[0] if rows else None


def _first(con: duckdb.DuckDBPyConnection, kind: str, locate: Any) -> tuple[str, int | None] | None:
    row = _one(
        con,
        f"SELECT filename, line_no FROM projected WHERE kind = {sql_text(kind)} "
        "ORDER BY filename, line_no NULLS FIRST LIMIT 1",
    )
    if row is None:
        return None
    filename, line_no = str(row[0]), row[1]
    if line_no is None:
        line_no = locate(filename, kind)
    return filename, line_no

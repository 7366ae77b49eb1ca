"""Request traces (CSV, Parquet, JSON lines) and llmcap's own run records as requests.

Trace columns (names matched case-insensitively; docs/traffic.md, "Traces"): ``timestamp``
(ISO 8601 with an offset or ``Z``, naive ISO with a time zone given, or epoch seconds),
``input_tokens`` and ``output_tokens`` (required), and optionally ``model_id``, ``max_tokens``,
``cache_read_tokens``, ``cache_write_tokens``, ``latency_s`` (or ``latency_ms``), ``status``
(``ok``, ``throttled``, ``error``), ``error_code``, ``service_tier``, ``operation``. The Azure
LLM inference traces' ``TIMESTAMP``, ``ContextTokens`` and ``GeneratedTokens`` are read as
they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.csv as pa_csv  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from capacity.usage._duck import MAX_LINE_BYTES, numbered_csv, sql_list, sql_text
from capacity.usage._requests import TrafficSourceError

TRACE_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "ts_text": ("timestamp",),
    "in_text": ("input_tokens", "contexttokens"),
    "out_text": ("output_tokens", "generatedtokens"),
    "model_text": ("model_id",),
    "max_text": ("max_tokens",),
    "cr_text": ("cache_read_tokens",),
    "cw_text": ("cache_write_tokens",),
    "lat_s_text": ("latency_s",),
    "lat_ms_text": ("latency_ms",),
    "status_text": ("status",),
    "code_text": ("error_code",),
    "tier_text": ("service_tier",),
    "op_text": ("operation",),
}
REQUIRED: Final = ("ts_text", "in_text", "out_text")
_JSON_KEYS: Final = {
    "timestamp": ("timestamp", "TIMESTAMP"),
    "contexttokens": ("ContextTokens",),
    "generatedtokens": ("GeneratedTokens",),
}


def resolve_columns(names: list[str], source: str) -> dict[str, str]:
    """Canonical field → the source's column name; raises if a required one is missing."""
    lower = {n.lower(): n for n in names}
    found = {}
    for field, aliases in TRACE_FIELDS.items():
        hit = next((lower[a] for a in aliases if a in lower), None)
        if hit is not None:
            found[field] = hit
    missing = [TRACE_FIELDS[f][0] for f in REQUIRED if f not in found]
    if missing:
        raise TrafficSourceError(
            f"{source}: no column {', '.join(missing)} (columns: {', '.join(names)}) — a trace "
            "needs timestamp, input_tokens and output_tokens (or the Azure trace's TIMESTAMP, "
            "ContextTokens, GeneratedTokens)"
        )
    return found


def csv_batches(
    path: Path, invalid: list[tuple[str, int]]
) -> tuple[pa.RecordBatchReader, dict[str, str]]:
    """Batches of the CSV ``path`` (``.gz`` too), every column as text, with ``filename`` and
    ``line_no`` (data row 1 is line 2, after the header); rows with the wrong number of fields
    go to ``invalid``."""
    skip = pa_csv.ParseOptions(invalid_row_handler=lambda _row: "skip")
    try:
        names = pa_csv.open_csv(_open(path), parse_options=skip).schema.names
    except (OSError, pa.ArrowException) as exc:
        raise TrafficSourceError(
            f"{path}: not a readable CSV file ({type(exc).__name__}) — check that it is CSV "
            "with a header row"
        ) from exc
    columns = resolve_columns(names, str(path))
    convert = pa_csv.ConvertOptions(
        column_types={n: pa.string() for n in names}, include_columns=list(columns.values())
    )
    read = pa_csv.ReadOptions(block_size=MAX_LINE_BYTES)
    schema = pa.schema(
        [
            ("filename", pa.string()),
            ("line_no", pa.int64()),
            *((c, pa.string()) for c in columns.values()),
        ]
    )
    batches = numbered_csv(str(path), _open(path), read, convert, 2, invalid)
    return pa.RecordBatchReader.from_batches(schema, batches), columns


def parquet_batches(path: Path) -> tuple[pa.RecordBatchReader, dict[str, str]]:
    """Batches of the Parquet ``path`` with ``filename`` and ``line_no`` (the row, from 1)."""
    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise TrafficSourceError(
            f"{path}: not a readable Parquet file ({exc}) — check the file or export it as CSV"
        ) from exc
    columns = resolve_columns(pf.schema_arrow.names, str(path))
    fields = [pf.schema_arrow.field(c) for c in columns.values()]
    schema = pa.schema([("filename", pa.string()), ("line_no", pa.int64()), *fields])

    def gen() -> Iterator[pa.RecordBatch]:
        row = 1
        for batch in pf.iter_batches(batch_size=1 << 16, columns=list(columns.values())):
            n = batch.num_rows
            yield pa.RecordBatch.from_arrays(
                [
                    pa.repeat(pa.scalar(str(path), pa.string()), n),
                    pa.array(np.arange(row, row + n, dtype=np.int64)),
                    *batch.columns,
                ],
                schema=schema,
            )
            row += n

    return pa.RecordBatchReader.from_batches(schema, gen()), columns


def _open(path: Path) -> Any:
    try:
        return pa.input_stream(str(path), compression="detect")
    except (OSError, pa.ArrowException) as exc:
        raise TrafficSourceError(f"{path}: cannot open ({exc}) — check the path") from exc


def columns_sql(rel: str, columns: dict[str, str]) -> str:
    """SELECT the canonical text columns of a CSV or Parquet relation ``rel``."""
    items = [
        f"nullif(trim(CAST({_quote(columns[f])} AS VARCHAR)), '') AS {f}"
        if f in columns
        else f"NULL::VARCHAR AS {f}"
        for f in TRACE_FIELDS
    ]
    return f"SELECT filename, line_no, false AS bad, false AS blank, {', '.join(items)} FROM {rel}"


def json_columns_sql(rel: str) -> str:
    """SELECT the canonical text columns of JSON lines (``filename``, ``line_no``, ``line``)."""
    paths: list[str] = []
    where: dict[str, list[int]] = {}
    for field, aliases in TRACE_FIELDS.items():
        for alias in aliases:
            for key in _JSON_KEYS.get(alias, (alias,)):
                paths.append(f"$.{key}")
                where.setdefault(field, []).append(len(paths))
    items = []
    for field in TRACE_FIELDS:
        refs = [f"v[{i}]" for i in where[field]]
        items.append(
            f"{refs[0] if len(refs) == 1 else 'coalesce(' + ', '.join(refs) + ')'} AS {field}"
        )
    return f"""
    SELECT filename, line_no, blank, v IS NULL OR NOT is_object AS bad, {", ".join(items)}
    FROM (SELECT filename, line_no, (line IS NULL OR NOT regexp_matches(line, '\\S')) AS blank,
                 TRY(json_extract_string(line, {sql_list(paths)})) AS v,
                 regexp_matches(line, '^\\s*\\{{') AS is_object FROM {rel})
    """


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _count(col: str) -> str:
    d = f"TRY_CAST({col} AS DOUBLE)"
    return f"CASE WHEN {d} >= 0 AND {d} = floor({d}) THEN {d}::BIGINT END"


UNNAMED_MODEL: Final = "unknown"
"""The model id of trace rows without one when no default is given."""


def project_sql(text_rel: str, timestamp: tuple[str, str], default_model: str | None) -> str:
    """SELECT the projected relation (see ``capacity.usage._load``) of canonical text columns;
    rows without a model id get ``default_model`` (``UNNAMED_MODEL`` when None)."""
    model = f"coalesce(model_text, {sql_text(default_model or UNNAMED_MODEL)})"

    def bad(col: str) -> str:
        return f"({col} IS NOT NULL AND {_count(col)} IS NULL)"

    latency = "coalesce(TRY_CAST(lat_s_text AS DOUBLE), TRY_CAST(lat_ms_text AS DOUBLE) / 1000.0)"
    return f"""
    WITH g AS (
        SELECT *, {timestamp[0]} AS ts, {timestamp[1]} AS naive, {model} AS model,
               coalesce(lower(status_text), 'ok') AS st FROM {text_rel}
    )
    SELECT filename, line_no, NULL::VARCHAR AS region,
        CASE WHEN blank THEN 'blank'
             WHEN bad OR {bad("in_text")} OR {bad("out_text")} OR {bad("max_text")}
                  OR {bad("cr_text")} OR {bad("cw_text")}
                  OR st NOT IN ('ok', 'throttled', 'error') THEN 'malformed'
             WHEN ts_text IS NULL THEN 'malformed'
             WHEN ts IS NULL AND naive THEN 'naive'
             WHEN ts IS NULL THEN 'malformed'
             WHEN st = 'ok' AND (in_text IS NULL OR out_text IS NULL) THEN 'missing'
             ELSE 'row' END AS kind,
        ts AS timestamp, model AS model_id,
        coalesce({_count("in_text")}, 0) AS input_tokens,
        coalesce({_count("cr_text")}, 0) AS cache_read_tokens,
        coalesce({_count("cw_text")}, 0) AS cache_write_tokens,
        coalesce({_count("out_text")}, 0) AS output_tokens,
        {_count("max_text")} AS max_tokens, {latency} AS latency_s, st AS status,
        nullif(code_text, '') AS error_code, tier_text AS service_tier, op_text AS operation
    FROM g
    """

"""Reading request records: run directories, ``records.jsonl``, ``records.parquet`` and CSV.

CSV may use our column names (an export of records) or the seed framework's per-request names
(``time_to_first_token``, ``time_per_output_token``, ``tokens_per_second``,
``num_concurrent_calls``, ``request_start``, …), which are mapped to ours. Every source is
validated by ``validate_records``; messages name the file and the line (JSONL, CSV) or row
(Parquet).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.json as pa_json  # type: ignore[import-untyped]

from capacity.errors import RecordsError
from capacity.records._coerce import Locate
from capacity.records._schema import RECORD_COLUMNS, SEED_COLUMNS, SEED_REQUIRED
from capacity.records._validate import VALIDATED, validate_records

PathLike = str | os.PathLike[str]

_ARROW_TYPES = {
    "float64": pa.float64(),
    "int64": pa.float64(),
    "string": pa.string(),
    "bool": pa.bool_(),
}


def _json_schema(path: Path) -> pa.Schema:
    """Arrow types for the schema columns named on the first line (numbers read as float64, so
    that 3 and 3.0 parse alike; the validator checks whole numbers)."""
    with path.open(encoding="utf-8") as fh:
        first = next((line for line in fh if line.strip()), "{}")
    keys = json.loads(first)
    if not isinstance(keys, dict):
        raise ValueError("not an object")
    return pa.schema([(k, _ARROW_TYPES[v]) for k, v in RECORD_COLUMNS.items() if k in keys])


def load_records(paths: PathLike | Sequence[PathLike]) -> pd.DataFrame:
    """Validated records from one or more run directories or records files, concatenated.

    A run directory holds ``records.jsonl`` (the source of truth, appended per request) and
    ``records.parquet`` (compacted when a level or the run completes): the Parquet file is read
    when it is at least as new as the JSONL, else the JSONL. ``attrs["notes"]`` lists every rule
    applied (see ``capacity.records._validate``). Raises ``RecordsError``.
    """
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not items:
        raise RecordsError(
            "no records given; pass a run directory, records.jsonl, records.parquet or a CSV"
        )
    frames = [_load_one(Path(p)) for p in items]
    notes = tuple(n for f in frames for n in f.attrs.get("notes", ()))
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    out.attrs = {"notes": notes, VALIDATED: True}
    return out


def _load_one(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise RecordsError(
            f"{path}: no such file or directory; pass a run directory, a records.jsonl or "
            "records.parquet file, or a CSV"
        )
    if path.is_dir():
        return _load_run_dir(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return _load_jsonl(path, run_id=path.stem)
    if suffix in (".parquet", ".pq"):
        return _load_parquet(path, run_id=path.stem)
    if suffix == ".csv":
        return _load_csv(path)
    raise RecordsError(
        f"{path}: unknown records format {suffix or '(no suffix)'!r}; use a run directory, "
        ".jsonl, .parquet or .csv"
    )


def _load_run_dir(path: Path) -> pd.DataFrame:
    jsonl, parquet = path / "records.jsonl", path / "records.parquet"
    if parquet.exists() and (not jsonl.exists() or _mtime(parquet) >= _mtime(jsonl)):
        return _load_parquet(parquet, run_id=path.name)
    if jsonl.exists():
        frame = _load_jsonl(jsonl, run_id=path.name)
        if parquet.exists():
            note = f"{jsonl}: records.parquet is older (an unfinished level?): read the JSONL"
            frame.attrs["notes"] = (*frame.attrs["notes"], note)
        return frame
    raise RecordsError(
        f"{path}: no records.jsonl or records.parquet; point at a run directory written by "
        "`llmcap bench`, or at a records file"
    )


def _mtime(path: Path) -> int:
    return path.stat().st_mtime_ns


def _load_parquet(path: Path, *, run_id: str) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except (OSError, pa.ArrowException) as exc:
        raise RecordsError(
            f"{path}: not a readable Parquet file ({exc}); use records.jsonl instead"
        ) from exc
    return validate_records(frame, source=str(path), run_id=run_id)


def _load_jsonl(path: Path, *, run_id: str) -> pd.DataFrame:
    notes: list[str] = []
    try:
        options = pa_json.ParseOptions(explicit_schema=_json_schema(path))
        frame = pa_json.read_json(path, parse_options=options).to_pandas()
        locate: Locate = _LineLocator(path)
    except (pa.ArrowException, ValueError):
        frame, lines = _read_jsonl_slowly(path, notes)
        locate = lambda i: f"line {lines[i]}"  # noqa: E731
    if frame.empty and len(frame.columns) == 0:
        raise RecordsError(f"{path}: no records (the file is empty); run a sweep first")
    out = validate_records(frame, source=str(path), locate=locate, run_id=run_id)
    out.attrs["notes"] = (*(f"{path}: {n}" for n in notes), *out.attrs["notes"])
    return out


class _LineLocator:
    """Row position → ``"line N"`` in a JSONL file (blank lines are skipped by the reader)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, row: int) -> str:
        seen = -1
        with self.path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                seen += bool(line.strip())
                if seen == row:
                    return f"line {number}"
        return f"row {row + 1}"


def _read_jsonl_slowly(path: Path, notes: list[str]) -> tuple[pd.DataFrame, list[int]]:
    """Line by line, to name the bad line; a torn last line (a crash mid-write) is dropped."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    rows: list[dict[str, Any]] = []
    numbers: list[int] = []
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            if i == last and not text.endswith("\n"):
                notes.append(f"line {i + 1} is incomplete (a crash mid-write?) and was skipped")
                continue
            raise RecordsError(
                f"{path}: line {i + 1}: not valid JSON ({exc.msg}); fix or delete the line"
            ) from exc
        if not isinstance(row, dict):
            raise RecordsError(
                f"{path}: line {i + 1}: a JSON {type(row).__name__}, not an object; each line "
                "must be one record object"
            )
        rows.append(row)
        numbers.append(i + 1)
    return pd.DataFrame.from_records(rows), numbers


def _load_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise RecordsError(f"{path}: not a readable CSV ({exc}); check the file") from exc

    def locate(i: int) -> str:
        return f"line {i + 2}"  # line 1 is the header

    if "start_s" not in frame.columns and "time_to_first_token" in frame.columns:
        frame, seed_notes = _from_seed(frame, str(path), locate)
    else:
        seed_notes = []
    out = validate_records(frame, source=str(path), locate=locate, run_id=path.stem)
    out.attrs["notes"] = (*(f"{path}: {n}" for n in seed_notes), *out.attrs["notes"])
    return out


def _from_seed(raw: pd.DataFrame, source: str, locate: Locate) -> tuple[pd.DataFrame, list[str]]:
    """The seed framework's per-request columns → raw offsets and our names."""
    missing = [c for c in SEED_REQUIRED if c not in raw.columns]
    if missing:
        raise RecordsError(
            f"{source}: seed-format CSV without column(s) {', '.join(missing)}; the offsets are "
            "rebuilt from request_start + time_to_first_token/time_to_last_token"
        )
    out = {ours: raw[theirs] for theirs, ours in SEED_COLUMNS.items() if theirs in raw.columns}
    start = _timestamps(raw["request_start"], "request_start", source, locate)
    t0 = start.min()
    start_s = (start - t0).dt.total_seconds().to_numpy(dtype=np.float64)
    ttft = pd.to_numeric(raw["time_to_first_token"], errors="coerce").to_numpy(np.float64)
    ttlt = pd.to_numeric(raw["time_to_last_token"], errors="coerce").to_numpy(np.float64)
    first, last = start_s + ttft, start_s + ttlt
    notes = []
    if "request_end" in raw.columns:
        end = _timestamps(raw["request_end"], "request_end", source, locate)
        end_s = (end - t0).dt.total_seconds().to_numpy(dtype=np.float64)
        # request_start/end come from datetime.now(), the token times from perf_counter:
        # two clocks, so the stream may seem to close a hair before its last token.
        early = end_s < last
        if early.any():
            notes.append(
                f"{int(early.sum())} request_end values before the last token "
                "(two clocks) raised to it"
            )
        end_s = np.where(early, last, end_s)
    else:
        end_s = last
        notes.append("no request_end column: end_s is the last token time")
    ok = np.isfinite(ttlt)
    out.update(
        start_s=pd.Series(start_s),
        first_token_s=pd.Series(first),
        last_token_s=pd.Series(last),
        end_s=pd.Series(end_s),
        status=pd.Series(np.where(ok, "ok", "error")),
    )
    unused = [
        str(c)
        for c in raw.columns
        if c not in SEED_COLUMNS and c not in ("request_start", "request_end")
    ]
    if unused:
        notes.append(f"seed columns not used: {', '.join(unused)}")
    notes.append(
        "seed-format CSV: offsets rebuilt from request_start and the seed's TTFT/TTLT; "
        "rows without time_to_last_token are status error"
    )
    return pd.DataFrame(out), notes


def _timestamps(values: pd.Series[Any], name: str, source: str, locate: Locate) -> pd.Series[Any]:
    parsed = pd.to_datetime(values, format="ISO8601", errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        raise RecordsError(
            f"{source}: {locate(int(bad[0]))}: {name} = {values.iloc[bad[0]]!r} is not an ISO "
            f"timestamp; write {name} as e.g. 2025-01-31T12:00:00.123456"
        )
    return parsed

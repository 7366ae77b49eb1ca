"""llmcap's own run records (``llmcap bench``) as normalised requests.

A record's arrival is the run's ``started_at`` (``run.json``) plus its ``start_s``; its latency
is ``e2e_s``; ``timeout`` and ``cancelled`` count as ``error``. Records are read and validated by
``capacity.records.load_records``, the one reader of that schema.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]

from capacity.errors import RecordsError
from capacity.records import load_records
from capacity.usage._requests import (
    REQUEST_COLUMNS,
    LoadReport,
    RequestTable,
    TrafficSourceError,
    finish_table,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def is_run_source(path: Path) -> bool:
    """Whether ``path`` is a run directory or a records file written by ``llmcap bench``."""
    if path.is_dir():
        return (path / "records.jsonl").exists() or (path / "records.parquet").exists()
    return path.name in ("records.jsonl", "records.parquet")


def load_run_records(path: Path, model_id: str | None = None) -> RequestTable:
    """The run's requests (only ``model_id``'s when given)."""
    try:
        frame = load_records(path)
    except RecordsError as exc:
        raise TrafficSourceError(str(exc)) from exc
    run_json = (path if path.is_dir() else path.parent) / "run.json"
    notes: list[str] = []
    origin = _EPOCH
    if run_json.exists():
        started = json.loads(run_json.read_text(encoding="utf-8")).get("started_at")
        origin = datetime.fromisoformat(started) if started else _EPOCH
    if origin == _EPOCH:
        notes.append(f"no run.json start time beside {path}: times count from 1970-01-01 UTC")
    sent = frame["start_s"].notna()
    total = len(frame)
    frame = frame.loc[sent]
    status = frame["status"].where(frame["status"].isin(["ok", "throttled"]), "error")
    served = status == "ok"
    missing = served & (frame["input_tokens"].isna() | frame["output_tokens"].isna())
    keep = ~missing
    if model_id is not None:
        keep &= frame["model_id"] == model_id
    f, st = frame.loc[keep], status.loc[keep]
    ts = pd.Timestamp(origin) + pd.to_timedelta(f["start_s"].to_numpy(), unit="s")

    def tokens(col: str) -> np.ndarray:
        return f[col].fillna(0).to_numpy(dtype=np.int64)

    zeros = np.zeros(len(f), dtype=np.int64)
    data = {
        "timestamp": pa.array(ts.floor("ms"), pa.timestamp("ms", tz="UTC")),
        "model_id": pa.array(f["model_id"].astype(str).to_numpy(), pa.string()),
        "input_tokens": tokens("input_tokens"),
        "cache_read_tokens": zeros,
        "cache_write_tokens": zeros,
        "output_tokens": tokens("output_tokens"),
        "max_tokens": pa.array(f["max_tokens"].to_numpy(dtype=float), from_pandas=True).cast(
            pa.int64()
        ),
        "latency_s": pa.array(f["e2e_s"].to_numpy(dtype=float), from_pandas=True),
        "status": pa.array(st.to_numpy(dtype=str), pa.string()),
        "error_code": pa.array(
            f["error_code"].to_numpy(dtype=object), pa.string(), from_pandas=True
        ),
        "service_tier": pa.nulls(len(f), pa.string()),
        "operation": pa.nulls(len(f), pa.string()),
    }
    report = LoadReport(
        source=str(path),
        fmt="llmcap-records",
        files=1,
        lines=total,
        requests=int(keep.sum()),
        missing_tokens=int(missing.sum()),
        filtered_out=int((~missing).sum() - keep.sum()),
        notes=tuple(
            [*notes, f"{total - len(frame):,} records never sent"] if total > len(frame) else notes
        ),
    )
    table = pa.table({c: data[c] for c in REQUEST_COLUMNS})
    return finish_table(table, report)

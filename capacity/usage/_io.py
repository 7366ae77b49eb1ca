"""``usage.parquet``: the usage frame with its ``UsageMeta`` in the Parquet schema metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from capacity.errors import CapacityError
from capacity.usage._frame import USAGE_COLUMNS, UsageMeta

META_KEY = b"llmcap.usage"


class UsageFileError(CapacityError, ValueError):
    """A usage file that cannot be read; the message names the file and the fix."""


def write_usage(path: str | Path, frame: pd.DataFrame, meta: UsageMeta) -> Path:
    """Write ``frame`` (``USAGE_COLUMNS``) and ``meta`` to ``path``; returns the path."""
    path = Path(path)
    table = pa.Table.from_pandas(frame[list(USAGE_COLUMNS)], preserve_index=False)
    existing = table.schema.metadata or {}
    table = table.replace_schema_metadata(
        {**existing, META_KEY: json.dumps(meta.to_dict()).encode()}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def read_usage(path: str | Path) -> tuple[pd.DataFrame, UsageMeta]:
    """The frame and meta written by ``write_usage`` (``llmcap usage``)."""
    path = Path(path)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise UsageFileError(
            f"{path}: not a readable Parquet file ({exc}) — write one with `llmcap usage`"
        ) from exc
    raw = (table.schema.metadata or {}).get(META_KEY)
    missing = [c for c in USAGE_COLUMNS if c not in table.column_names]
    if raw is None or missing:
        raise UsageFileError(
            f"{path}: not a usage file (missing {'metadata' if raw is None else missing}); "
            "write one with `llmcap usage`"
        )
    return table.to_pandas(), UsageMeta.from_dict(json.loads(raw))

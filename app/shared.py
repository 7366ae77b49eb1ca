"""What the pages share: loading records (a run directory or uploads), fitting them once, and
the session keys that carry the evidence from page to page.

Loading never raises into Streamlit: every failure comes back as a message to show next to the
field that caused it.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from capacity.errors import CapacityError

LLAMA = "us.meta.llama3-3-70b-instruct-v1:0"
RECORD_SUFFIXES = ("jsonl", "parquet", "csv")

RECORDS = "evidence_records"
"""Session key: the loaded request records (a DataFrame)."""
MODEL = "evidence_model"
"""Session key: the model fitted on them (a CapacityModel)."""
SOURCE = "evidence_source"
"""Session key: where they came from (text)."""

LOAD_ERRORS: tuple[type[BaseException], ...] = (
    CapacityError,
    ValueError,
    KeyError,
    OSError,
    UnicodeDecodeError,
)
"""What a bad file or path may raise while loading or fitting."""


@dataclass(frozen=True)
class Upload:
    """An uploaded file: its name and bytes (Streamlit's UploadedFile, or a test's)."""

    name: str
    data: bytes


def as_upload(file: Any) -> Upload:
    """An ``Upload`` of a Streamlit ``UploadedFile``."""
    return Upload(str(file.name), bytes(file.getvalue()))


def load_uploads(files: Sequence[Upload]) -> pd.DataFrame:
    """Records of uploaded jsonl/parquet/csv files (``capacity.load_records`` on a temporary
    copy of each, named as uploaded so the suffix picks the reader)."""
    from capacity.records import load_records

    if not files:
        raise ValueError("no file uploaded")
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, f in enumerate(files):
            suffix = Path(f.name).suffix.lower()
            if suffix.lstrip(".") not in RECORD_SUFFIXES:
                kind = suffix or "a file without a suffix"
                raise ValueError(f"{f.name}: records must be .jsonl, .parquet or .csv, not {kind}")
            path = Path(tmp) / f"{i}_{Path(f.name).stem}{suffix}"
            path.write_bytes(f.data)
            paths.append(path)
        return load_records(paths)


def load_run_dir(path: str) -> pd.DataFrame:
    """Records of a run directory (or record file) on this machine."""
    from capacity.records import load_records

    text = path.strip()
    if not text:
        raise ValueError("enter the path of a run directory")
    target = Path(text).expanduser()
    if not target.exists():
        raise ValueError(f"{text}: no such file or directory")
    return load_records(target)


def fingerprint(records: pd.DataFrame) -> str:
    """A content hash of the records (to fit each set once)."""
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(records, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def fit(records: pd.DataFrame) -> Any:
    """``capacity.fit_capacity`` of the records (a ``CapacityModel``)."""
    from capacity.fitting import fit_capacity

    return fit_capacity(records)


def load_model_upload(file: Upload) -> Any:
    """A ``CapacityModel`` from an uploaded model.json."""
    from capacity.fitting import CapacityModel

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.json"
        path.write_bytes(file.data)
        return CapacityModel.load(path)


def png(fig: Any) -> bytes:
    """A figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def parse_growth(text: str) -> list[tuple[str, float]]:
    """Growth lines ``WHEN=USERS`` (one per line; blank lines ignored)."""
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        label, sep, users = line.rpartition("=")
        try:
            value = float(users.replace(",", ""))
        except ValueError:
            value = -1.0
        if not sep or not label.strip() or not value > 0:
            raise ValueError(f"line {n}: write WHEN=USERS, e.g. '+6 months=3000'")
        out.append((label.strip(), value))
    return out

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
"""Session key: the model fitted on them (a CapacityModel; uploaded models stay on their page)."""
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
    """The ``CapacityModel`` (model.json) or ``Twin`` (twin.json) of an upload, read by
    ``capacity.load_predictor``; a bad file raises ``ModelFileError`` naming the upload."""
    from capacity.errors import ModelFileError
    from capacity.predictors import load_predictor

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload.json"
        path.write_bytes(file.data)
        try:
            return load_predictor(path)
        except ModelFileError as exc:
            raise ModelFileError(str(exc).replace(str(path), file.name)) from exc


MODEL_UPLOAD_LABEL = (
    "Performance model: model.json (`llmcap fit`) or a calibrated twin.json (`llmcap twin fit`)"
)
"""The label of every model uploader."""


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("_", "\\_").replace("*", "\\*")


def show_predictor(info: Any) -> None:
    """Say where the latency curve comes from (a ``capacity.PredictorInfo``): for a twin, its
    probe, replicas, coefficients and what the probe could not pin down, and its
    extrapolation notes at the operating point as warnings."""
    import streamlit as st

    if not info.is_twin:
        st.caption(info.source)
        return
    st.info(f"**This plan uses a calibrated digital twin.** {_escaped(info.source)}")
    with st.expander("The twin: probe, replicas, coefficients, what the probe could not pin down"):
        st.markdown("\n".join(f"- {_escaped(line)}" for line in info.details))
    for note in info.notes:
        st.warning(f"Twin: {note}")


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

"""What the pages share: loading records (a run directory or uploads) and models (uploads),
fitting records, and the session keys that carry the evidence from page to page.

Loading never raises into Streamlit for a bad file: the project's typed errors (``LOAD_ERRORS``)
come back as one-line messages naming the file as the user knows it (an upload by its name,
never the temporary copy's path) to show next to the field that caused them. Anything else is a
bug and shows as one.
"""

from __future__ import annotations

import hashlib
import io
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from capacity.errors import CapacityError
from capacity.prediction import Predictor

LLAMA = "us.meta.llama3-3-70b-instruct-v1:0"
RECORD_SUFFIXES = ("jsonl", "parquet", "csv")

RECORDS = "evidence_records"
"""Session key: the loaded request records (a DataFrame)."""
MODEL = "evidence_model"
"""Session key: the model fitted on them (a CapacityModel; uploaded models stay on their page)."""
SOURCE = "evidence_source"
"""Session key: where they came from (text)."""
CONTEXT = "evidence_context"
"""Session key: what they were measured against, from the runs' run.json (text or None)."""


class InputError(CapacityError):
    """A value typed or uploaded in the app that cannot be used; the message (one line) names
    the field or file and the fix."""


LOAD_ERRORS: tuple[type[BaseException], ...] = (CapacityError, OSError, UnicodeDecodeError)
"""What a bad file or path may raise while loading or fitting: the project's typed errors and
an unreadable file. Nothing broader, so a bug is not shown as "bad file"."""


@dataclass(frozen=True)
class Upload:
    """An uploaded file: its name and bytes (Streamlit's UploadedFile, or a test's)."""

    name: str
    data: bytes


def as_upload(file: Any) -> Upload:
    """An ``Upload`` of a Streamlit ``UploadedFile``."""
    return Upload(str(file.name), bytes(file.getvalue()))


def _copies(files: Sequence[Upload], tmp: Path) -> tuple[list[Path], dict[str, str]]:
    """Each upload written under ``tmp`` (keeping its suffix, which picks the reader), and the
    map from each copy's path to the upload's name."""
    paths, names = [], {}
    for i, f in enumerate(files):
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(f.name).name) or "upload"
        path = tmp / f"{i}_{safe}"
        path.write_bytes(f.data)
        paths.append(path)
        names[str(path)] = f.name
    return paths, names


def _named(exc: BaseException, names: dict[str, str], tmp: Path) -> InputError:
    """``exc``'s message with every temporary path replaced by the upload's name."""
    text = str(exc)
    for path, name in sorted(names.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(path, name)
    return InputError(text.replace(str(tmp), "(upload)"))


def load_uploads(files: Sequence[Upload]) -> pd.DataFrame:
    """Records of uploaded jsonl/parquet/csv files (``capacity.load_records`` on a temporary
    copy of each); a bad file raises ``InputError`` naming it as uploaded."""
    from capacity.records import load_records

    if not files:
        raise InputError("no file uploaded")
    for f in files:
        suffix = Path(f.name).suffix.lower()
        if suffix.lstrip(".") not in RECORD_SUFFIXES:
            kind = suffix or "a file without a suffix"
            raise InputError(f"{f.name}: records must be .jsonl, .parquet or .csv, not {kind}")
    with tempfile.TemporaryDirectory() as tmp:
        paths, names = _copies(files, Path(tmp))
        try:
            return load_records(paths)
        except LOAD_ERRORS as exc:
            raise _named(exc, names, Path(tmp)) from exc


def load_run_dir(path: str) -> pd.DataFrame:
    """Records of a run directory (or record file) on this machine."""
    from capacity.records import load_records

    text = path.strip()
    if not text:
        raise InputError("enter the path of a run directory")
    target = Path(text).expanduser()
    if not target.exists():
        raise InputError(f"{text}: no such file or directory")
    return load_records(target)


def run_context(path: str) -> str | None:
    """What the run at ``path`` was measured against (the endpoint and its quota, from its
    run.json), as ``llmcap report`` says it; None for a record file or a run without one."""
    from llmcap.commands.report import evidence_context

    return evidence_context([Path(path.strip()).expanduser()])


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
    ``capacity.load_predictor``; a bad file raises ``InputError`` naming the upload."""
    from capacity.predictors import load_predictor

    with tempfile.TemporaryDirectory() as tmp:
        (path,), names = _copies([file], Path(tmp))
        try:
            return load_predictor(path)
        except LOAD_ERRORS as exc:
            raise _named(exc, names, Path(tmp)) from exc


MODEL_UPLOAD_LABEL = (
    "Performance model: model.json (`llmcap fit`) or a calibrated twin.json (`llmcap twin fit`)"
)
"""The label of every model uploader."""


def escaped(text: str) -> str:
    """``text`` with Markdown's emphasis characters escaped (model ids carry underscores)."""
    return text.replace("\\", "\\\\").replace("_", "\\_").replace("*", "\\*")


def show_predictor(info: Any) -> None:
    """Say where the latency curve comes from (a ``capacity.PredictorInfo``): for a twin, its
    probe, replicas, coefficients and what the probe could not pin down, and its
    extrapolation notes at the operating point as warnings."""
    if not info.is_twin:
        st.caption(info.source)
        return
    st.info(f"**This plan uses a calibrated digital twin.** {escaped(info.source)}")
    with st.expander("The twin: probe, replicas, coefficients, what the probe could not pin down"):
        st.markdown("\n".join(f"- {escaped(line)}" for line in info.details))
    for note in info.notes:
        st.warning(f"Twin: {note}")


def png(fig: Any) -> bytes:
    """A figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def model_upload(box: Any, label: str, key: str) -> tuple[Predictor | None, str | None, bool]:
    """An uploaded model.json or twin.json (kept in the session by content, so a twin's
    simulations are not redone on every rerun), its content hash, and whether it failed (the
    error, naming the upload, shown under the uploader)."""
    upload = box.file_uploader(label, type="json", key=key)
    kept_key = f"{key}_loaded"
    if upload is None:
        st.session_state.pop(kept_key, None)
        return None, None, False
    file = as_upload(upload)
    digest = hashlib.sha256(file.data).hexdigest()
    kept = st.session_state.get(kept_key)
    if kept is not None and kept[0] == digest:
        return kept[1], digest, False
    try:
        model: Predictor = load_model_upload(file)
    except LOAD_ERRORS as exc:
        box.error(f"Could not read the model: {exc}")
        st.session_state.pop(kept_key, None)
        return None, digest, True
    st.session_state[kept_key] = (digest, model)
    return model, digest, False

"""Traffic templates (shipped traces) and scaling a trace to N users (docs/traffic.md,
"Templates").

``scale_trace`` keeps the trace's shape while changing how many users produced it, from
``trace_users`` to ``target_users`` (k = target / trace):

- k whole copies (k ≥ 1): copy 0 as it is; each other copy shifted by its own random offset
  (uniform in [0, ``max_shift_s``), whole milliseconds), wrapped modulo the trace's duration so
  every request stays inside the original window;
- the fractional part f of k: a further copy thinned by keeping each request with probability f
  (shifted likewise when k ≥ 1; for k < 1 thinning is all there is, at the original times).

The mean rate scales by k exactly for whole copies and in expectation for the thinned part.
With the default ``max_shift_s`` of 60 s the copies keep the minute-scale shape (the bursts
that the quota's minute sees: the per-minute peak-to-mean stays close to the trace's) while
their seconds decorrelate; ``max_shift_s=None`` shifts over the whole duration — independent
groups of users, whose sum is smoother (the peak-to-mean falls roughly like 1/√k).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]

from capacity.usage._load import load_requests
from capacity.usage._requests import RequestTable, TrafficSourceError, finish_table

TRACES_DIR: Final = Path(__file__).resolve().parents[2] / "data" / "traces"


@dataclass(frozen=True)
class TrafficTemplate:
    """A shipped trace: ``name``, its ``file`` under ``data/traces/`` and what it is."""

    name: str
    file: str
    description: str

    @property
    def path(self) -> Path:
        """Where the file is."""
        return TRACES_DIR / self.file


TEMPLATES: Final = (
    TrafficTemplate(
        "azure-code-2023",
        "AzureLLMInferenceTrace_code.csv.gz",
        "Azure LLM inference, code completion, 2023-11-16, 57 min, 8,819 requests (CC BY 4.0)",
    ),
    TrafficTemplate(
        "azure-conv-2023",
        "AzureLLMInferenceTrace_conv.csv.gz",
        "Azure LLM inference, conversation, 2023-11-16, 58 min, 19,366 requests (CC BY 4.0)",
    ),
)


def traffic_template(name: str, *, model_id: str | None = None) -> RequestTable:
    """The shipped trace ``name`` (``TEMPLATES``) as requests of ``model_id`` (the template's
    name when None); its naive timestamps are read as UTC."""
    found = next((t for t in TEMPLATES if t.name == name), None)
    if found is None:
        names = ", ".join(t.name for t in TEMPLATES)
        raise TrafficSourceError(f"unknown traffic template {name!r}; use one of {names}")
    return load_requests(found.path, tz="UTC", default_model_id=model_id or name)


def scale_trace(
    table: RequestTable,
    *,
    trace_users: float,
    target_users: float,
    max_shift_s: float | None = 60.0,
    seed: int = 0,
) -> RequestTable:
    """``table`` as ``target_users`` would have produced it, if ``trace_users`` produced it
    (see the module docstring for the method)."""
    if not (trace_users > 0 and target_users > 0):
        raise TrafficSourceError(
            f"trace users {trace_users} and target users {target_users}: both must be above 0"
        )
    if max_shift_s is not None and max_shift_s < 0:
        raise TrafficSourceError(f"max_shift_s {max_shift_s}: use 0 or more (or None)")
    k = target_users / trace_users
    arrow = table.arrow
    ms = arrow["timestamp"].cast(pa.int64()).to_numpy()
    t0 = int(ms.min())
    duration = int(ms.max()) - t0 + 1
    span = duration if max_shift_s is None else max(1, min(duration, int(max_shift_s * 1000)))
    rng = np.random.default_rng(seed)
    whole, frac = math.floor(k), k - math.floor(k)
    pieces = []
    for i in range(whole):
        offset = 0 if i == 0 else int(rng.integers(0, span))
        pieces.append(_shifted(arrow, ms, t0, duration, offset))
    if frac > 0:
        keep = rng.random(ms.size) < frac
        offset = 0 if whole == 0 else int(rng.integers(0, span))
        pieces.append(_shifted(arrow.filter(pa.array(keep)), ms[keep], t0, duration, offset))
    out = pa.concat_tables(pieces)
    note = (
        f"scaled from {trace_users:g} to {target_users:g} users ({k:.3g}×: {whole} whole "
        f"copies, {frac:.3g} thinned; offsets up to "
        f"{'the whole duration' if max_shift_s is None else f'{max_shift_s:g} s'}, seed {seed})"
    )
    report = replace(table.report, requests=out.num_rows, notes=(*table.report.notes, note))
    return finish_table(out, report)


def _shifted(arrow: pa.Table, ms: np.ndarray, t0: int, duration: int, offset: int) -> pa.Table:
    if offset == 0:
        return arrow
    moved = t0 + (ms - t0 + offset) % duration
    i = arrow.schema.get_field_index("timestamp")
    field = arrow.schema.field(i)
    return arrow.set_column(i, field, pa.array(moved, pa.int64()).cast(field.type))

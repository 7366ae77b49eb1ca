"""Schema validation of request records: types, the metric rules (docs/architecture.md), and
the derived columns.

``validate_records`` returns a frame with exactly ``RECORD_COLUMNS`` (order and dtypes), the
derived columns recomputed from the raw offsets, and ``attrs["notes"]``: every rule that changed
or excluded something, counted (nothing is handled silently). Broken input raises
``RecordsError`` naming the source, the line or row, the column, and the fix.

The rules:
- every row needs a finite ``start_s`` ≥ 0 and a ``level``; ``status`` is one of ``STATUSES``;
- inf is never a time (null is: the event did not happen); offsets never run backwards;
- ``max_gap_s`` (longest interval between text chunks) is ≥ 0 or null; so are the client's
  measures of itself, ``loop_lag_s`` and ``client_cpu_share``;
- an ``ok`` row has ``end_s`` and, unless it produced 0 tokens, first and last token times;
- token counts are whole and ≥ 0; missing usage (null ``output_tokens``) leaves tpot/tps NaN;
- ``tpot_s``/``tps`` are NaN for fewer than 2 output tokens or a single-chunk response;
- given derived columns must match the offsets (within 1 µs), except where the rule above makes
  them NaN (the seed divides by max(n − 1, 1)): then the rule wins and a note says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from capacity.errors import RecordsError
from capacity.records._coerce import Checker, Locate, at, coerce, show, text, to_float
from capacity.records._derive import active_at_start, derive_metrics, interval_end_s
from capacity.records._schema import (
    DEFAULTS,
    DERIVED_COLUMNS,
    DERIVED_TOLERANCE_S,
    ORDER_TOLERANCE_S,
    RECORD_COLUMNS,
    REQUIRED_COLUMNS,
    STATUSES,
)

VALIDATED = "llmcap_records"
"""``attrs`` key marking a frame that ``validate_records`` produced."""


def _label_from_tokens(input_tokens: npt.NDArray[np.float64]) -> pd.Series[Any]:
    labels = np.full(input_tokens.size, "unlabelled", dtype=object)
    known = np.isfinite(input_tokens)
    distinct, inverse = np.unique(input_tokens[known], return_inverse=True)
    labels[known] = np.array([f"{int(x)}" for x in distinct], dtype=object)[inverse]
    return text(labels)


def _defaults(columns: dict[str, Any], n: int, run_id: str, notes: list[str]) -> None:
    absent = [c for c in RECORD_COLUMNS if c not in columns]
    filled = []
    for name in absent:
        dtype = RECORD_COLUMNS[name]
        if name == "run_id":
            columns[name] = text(np.full(n, run_id, dtype=object))
        elif name == "request_id":
            columns[name] = text(np.arange(n).astype(str).astype(object))
        elif name == "active_at_start" or name in DERIVED_COLUMNS:
            continue  # computed below
        elif name in DEFAULTS:
            columns[name] = np.full(n, DEFAULTS[name], dtype=np.dtype(dtype))
            filled.append(f"{name}={DEFAULTS[name]}")
        elif dtype == "float64":
            columns[name] = np.full(n, np.nan)
        else:
            columns[name] = text(np.full(n, None, dtype=object))
    if filled:
        notes.append(f"absent columns filled with defaults: {', '.join(filled)}")
    if "prompt_label" in absent:
        columns["prompt_label"] = _label_from_tokens(columns["input_tokens"])
        notes.append("no prompt_label column: prompts are labelled by their input token count")


def _check_times(c: dict[str, Any], ok: npt.NDArray[np.bool_], check: Checker) -> None:
    start, first, last, end = (c[k] for k in ("start_s", "first_token_s", "last_token_s", "end_s"))
    n_out = c["output_tokens"]
    check.fail(
        ~np.isfinite(start),
        lambda i: "start_s is missing" if np.isnan(start[i]) else f"start_s is {show(start[i])}",
        "every sent request needs its send time (seconds from the run start)",
    )
    check.fail(
        start < -ORDER_TOLERANCE_S,
        lambda i: f"start_s is negative ({show(start[i])})",
        "offsets are seconds from the run start, never negative",
    )
    for name in ("first_token_s", "last_token_s", "end_s"):
        values = c[name]
        check.fail(
            np.isinf(values),
            at(f"{name} is {{v}}", v=values),
            "write null for a time that never happened, never inf",
        )
    previous = start
    prev_name = "start_s"
    for name, values in (("first_token_s", first), ("last_token_s", last), ("end_s", end)):
        check.fail(
            values < previous - ORDER_TOLERANCE_S,
            at(f"{name} ({{v}}) is before {prev_name} ({{p}})", v=values, p=previous),
            "offsets must not run backwards (send ≤ first token ≤ last token ≤ stream closed)",
        )
        previous = np.where(np.isnan(values), previous, values)
        prev_name = name
    gap = c["max_gap_s"]
    check.fail(
        np.isinf(gap) | (gap < 0),
        at("max_gap_s is {v}", v=gap),
        "max_gap_s is the longest interval between text chunks: ≥ 0, or null (< 2 chunks)",
    )
    for name in ("loop_lag_s", "client_cpu_share"):
        v = c[name]
        check.fail(
            np.isinf(v) | (v < 0),
            at(f"{name} is {{v}}", v=v),
            f"{name} is the client's measure of itself: ≥ 0, or null (not measured)",
        )
    check.fail(
        ok & np.isnan(end),
        lambda i: "status is ok but end_s is null",
        "an ok request's stream closed at a known time: record end_s",
    )
    streamed = ok & ~(n_out == 0)
    for name, values in (("first_token_s", first), ("last_token_s", last)):
        check.fail(
            streamed & np.isnan(values),
            at(f"status is ok with output but {name} is null"),
            f"record {name}, or set status to error if the stream failed",
        )
    for name in ("input_tokens", "output_tokens"):
        v = c[name]
        check.fail(
            v < 0,
            at(f"{name} is negative ({{v}})", v=v),
            "token counts come from the server's usage and are ≥ 0",
        )
        check.fail(
            np.isfinite(v) & (v != np.round(v)),
            at(f"{name} = {{v}} is not a whole number", v=v),
            "token counts are whole numbers",
        )


def _check_derived(
    given: dict[str, npt.NDArray[np.float64]],
    derived: dict[str, npt.NDArray[np.float64]],
    check: Checker,
    notes: list[str],
) -> None:
    origin = {
        "ttft_s": "first_token_s − start_s",
        "ttlt_s": "last_token_s − start_s",
        "e2e_s": "end_s − start_s",
        "tpot_s": "(ttlt_s − ttft_s)/(n − 1)",
        "tps": "1/tpot_s",
        "lateness_s": "start_s − scheduled_s",
    }
    for name, values in given.items():
        d = derived[name]
        both = np.isfinite(d) & ~np.isnan(values)
        rel = 1e-6 if name in ("tpot_s", "tps") else 0.0
        tol = DERIVED_TOLERANCE_S + rel * np.abs(d)
        with np.errstate(invalid="ignore"):
            check.fail(
                both & ~(np.abs(values - d) <= tol),
                at(f"{name} is {{v}} but {origin[name]} gives {{d}}", v=values, d=d),
                "derived columns are recomputed from the offsets (docs/architecture.md, "
                "'Records'): fix the writer or drop the derived columns",
            )
        by_rule = np.isnan(d) & ~np.isnan(values)
        if name in ("tpot_s", "tps"):
            if by_rule.any():
                notes.append(
                    f"{int(by_rule.sum())} given {name} values replaced by NaN: fewer "
                    "than 2 output tokens or a single-chunk response (docs/architecture.md)"
                )
        else:
            check.fail(
                by_rule,
                at(f"{name} is given but its offsets are null"),
                f"record the offsets behind {name}, or null it",
            )


def _usage_notes(
    c: dict[str, Any], ok: npt.NDArray[np.bool_], derived: dict[str, Any], notes: list[str]
) -> None:
    n_out, tpot = c["output_tokens"], derived["tpot_s"]
    counts = {
        "ok requests without output-token usage (tpot_s and tps are NaN)": ok & np.isnan(n_out),
        "ok requests with fewer than 2 output tokens (tpot_s and tps are NaN)": ok & (n_out < 2),
        "ok requests delivered in a single chunk (tpot_s 0, tps NaN)": ok & (tpot == 0),
        "requests with estimated token counts (tokens_estimated)": c["tokens_estimated"],
        "failed requests without end_s (in flight until their last known time)": ~ok
        & np.isnan(c["end_s"]),
    }
    for what, mask in counts.items():
        count = int(np.count_nonzero(mask))
        if count:
            notes.append(f"{what}: {count}")


def validate_records(
    frame: pd.DataFrame,
    *,
    source: str = "records",
    locate: Locate | None = None,
    run_id: str | None = None,
) -> pd.DataFrame:
    """Check ``frame`` against the record schema and rules; return the canonical records frame.

    ``source`` names the input in messages (a file path); ``locate`` maps a row position to its
    place in the source (default ``"row N"``, 1-based); ``run_id`` fills an absent ``run_id``
    column (default: ``source``). Raises ``RecordsError``.
    """
    check = Checker(source, locate or (lambda i: f"row {i + 1}"))
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise RecordsError(
            f"{source}: missing column(s) {', '.join(missing)}; records need the raw offsets "
            "start_s, first_token_s, last_token_s, end_s, output_tokens, status and level "
            "(docs/architecture.md), or a seed-format CSV (time_to_first_token, "
            "time_to_last_token, "
            "num_concurrent_calls, request_start, ...)"
        )
    n = len(frame)
    notes: list[str] = []
    columns: dict[str, Any] = {}
    for name, dtype in RECORD_COLUMNS.items():
        if name in frame.columns and name not in DERIVED_COLUMNS:
            columns[name] = coerce(frame[name], name, dtype, check, notes)
    status = columns["status"]
    check.fail(
        ~status.isin(STATUSES).to_numpy(dtype=bool),
        lambda i: f"status is {show(status.iloc[i])}",
        f"status must be one of {', '.join(STATUSES)}",
    )
    ok = (status == "ok").to_numpy(dtype=bool, na_value=False)
    check.fail(
        ~np.isfinite(columns["level"]),
        lambda i: "level is missing",
        "every request belongs to an offered level (batch size, concurrency or rate)",
    )
    _defaults(columns, n, run_id or source, notes)
    _check_times(columns, ok, check)
    derived = derive_metrics(
        columns["start_s"],
        columns["first_token_s"],
        columns["last_token_s"],
        columns["end_s"],
        columns["output_tokens"],
        scheduled_s=columns["scheduled_s"],
    )
    given = {k: to_float(frame[k], k, check) for k in DERIVED_COLUMNS if k in frame.columns}
    _check_derived(given, derived, check, notes)
    columns.update(derived)
    if "active_at_start" not in columns:
        columns["active_at_start"] = _active_by_run(columns)
    _usage_notes(columns, ok, derived, notes)
    ignored = [str(c) for c in frame.columns if c not in RECORD_COLUMNS]
    if ignored:
        notes.append(f"columns not in the record schema ignored: {', '.join(ignored)}")
    out = pd.DataFrame({k: columns[k] for k in RECORD_COLUMNS})
    out.attrs["notes"] = tuple(f"{source}: {note}" for note in notes)
    out.attrs[VALIDATED] = True
    return out


def _active_by_run(columns: dict[str, Any]) -> npt.NDArray[np.int64]:
    frame = pd.DataFrame({"run": columns["run_id"]})
    start = columns["start_s"]
    end = interval_end_s(
        pd.DataFrame({k: columns[k] for k in ("start_s", "first_token_s", "last_token_s", "end_s")})
    )
    out = np.zeros(start.size, dtype=np.int64)
    for idx in frame.groupby("run", dropna=False).indices.values():
        out[idx] = active_at_start(start[idx], end[idx])
    return out


def is_validated(frame: pd.DataFrame) -> bool:
    """Whether ``frame`` came from ``validate_records`` with its columns and dtypes intact."""
    if not frame.attrs.get(VALIDATED) or list(frame.columns) != list(RECORD_COLUMNS):
        return False
    return all(str(frame[c].dtype) == dt for c, dt in RECORD_COLUMNS.items())


def ensure_records(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` if already validated, else ``validate_records(frame)``."""
    return frame if is_validated(frame) else validate_records(frame)

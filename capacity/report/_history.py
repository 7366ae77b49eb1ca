"""Section 7 of the report, historical usage: text or measures given by the user, or the
traffic as measured when the report is built from real traffic."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from capacity.planning import count

if TYPE_CHECKING:
    from capacity.report._traffic import MeasuredTraffic

__all__ = ["history_markdown", "usage_text"]


_USAGE_HEADING = re.compile(r"^#+\s*historical usage\s*\n+", re.IGNORECASE)


def usage_text(usage: str | Mapping[str, Any] | None) -> str | None:
    """Historical usage as Markdown: text as given (a leading "Historical usage" heading
    dropped: the report has its own); a mapping (e.g. ``capacity.usage``'s ``to_dict()``) as a
    table of its numbers and words, nested mappings one level deep (``tpm.p90``), lists left
    out; None when empty."""
    if usage is None:
        return None
    if isinstance(usage, str):
        return _USAGE_HEADING.sub("", usage.strip()).strip() or None
    rows = []
    for key, value in usage.items():
        items = value.items() if isinstance(value, Mapping) else [(None, value)]
        for sub, v in items:
            if v is None or isinstance(v, list | tuple | Mapping):
                continue
            name = key if sub is None else f"{key}.{sub}"
            shown = f"{v:,.6g}" if isinstance(v, float) else str(v)
            rows.append(f"| {name} | {shown} |")
    if not rows:
        return None
    return "\n".join(["| Measure | Value |", "|---|---|", *rows])


def history_markdown(traffic: MeasuredTraffic) -> str:
    """The traffic as measured (before any scaling): its usage summary (per-minute TPM and
    RPM percentiles, throttles, mean tokens) and its traffic analysis (per-second and
    per-minute peaks, burstiness, token distributions, the share above 25,000 prompt tokens),
    headings one level down."""
    m = traffic.measured
    noun = "logged requests" if traffic.kind == "invocation-logs" else "requests"
    users = "" if traffic.trace_users is None else f" ({count(traffic.trace_users)} users)"
    head = f"The traffic as measured: {traffic.requests_measured:,} {noun} from {traffic.label}"
    summary = usage_text(m.summary.markdown()) or ""
    detail = m.markdown().replace("## Traffic of", "### Traffic of", 1)
    return f"{head}{users}.\n\n{summary}\n\n{detail}".strip()

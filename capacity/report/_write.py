"""Write a report to a directory in the formats asked for."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from pathlib import Path

from capacity.errors import ReportError
from capacity.report._model import QuotaRequestReport
from capacity.report._pdf import to_pdf
from capacity.report._render import case_body, to_html, to_markdown

FORMATS = ("md", "html", "pdf", "json")
"""Formats ``write_report`` knows."""


def parse_formats(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"md,html"`` (or a sequence) as known formats, in order, without repeats; ``ValueError``
    naming the unknown ones."""
    items = text.split(",") if isinstance(text, str) else list(text)
    wanted = tuple(dict.fromkeys(f.strip().lower() for f in items if f.strip()))
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown or not wanted:
        raise ReportError(f"unknown report format(s) {unknown or [text]}; choose from {FORMATS}")
    return wanted


def write_report(
    report: QuotaRequestReport,
    out: str | os.PathLike[str],
    formats: str | Iterable[str] = FORMATS,
    *,
    stem: str = "quota_request",
) -> list[Path]:
    """Write ``report`` under ``out`` as ``<stem>.<format>`` for each format, plus the case body
    (``<stem>_case.txt``) and, with Markdown, its figures (``figures/<name>.png``, linked).
    Returns the paths written."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def put(name: str, data: str | bytes) -> None:
        path = folder / name
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")
        written.append(path)

    for fmt in parse_formats(formats):
        if fmt == "md":
            links = {}
            if report.figures:
                (folder / "figures").mkdir(exist_ok=True)
            for f in report.figures:
                put(f"figures/{f.name}.png", base64.b64decode(f.png_base64))
                links[f.name] = f"figures/{f.name}.png"
            put(f"{stem}.md", to_markdown(report, links))
        elif fmt == "html":
            put(f"{stem}.html", to_html(report))
        elif fmt == "pdf":
            put(f"{stem}.pdf", to_pdf(report))
        elif fmt == "json":
            put(f"{stem}.json", report.to_json())
    put(f"{stem}_case.txt", case_body(report))
    return written

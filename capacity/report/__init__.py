"""The quota-increase justification (``QuotaRequestReport``): what AWS asks for a Bedrock quota
increase, the evidence, the method and the ask per quota, rendered as Markdown, self-contained
HTML, PDF (fpdf2, pure Python) and JSON, plus the plain-text support-case body.

The report quotes the planner (``plan_capacity`` / ``required_quota``) and never recomputes its
numbers; with real traffic (``measure_traffic`` → ``build_report(traffic=...)``) the TPM asked
is the replay's and the traffic sections are measured; see docs/report.md.
"""

from capacity.report._build import build_report, check_region, default_monitoring
from capacity.report._growth import parse_growth
from capacity.report._model import (
    ABOVE_TOKENS,
    CASE_BODY_LIMIT,
    Ask,
    CurrentQuota,
    FigureImage,
    GrowthStep,
    QuotaRequestReport,
    Traffic,
)
from capacity.report._pdf import to_pdf
from capacity.report._render import case_body, to_html, to_markdown
from capacity.report._traffic import (
    Carried,
    MeasuredTraffic,
    measure_traffic,
    prompt_tokens_of,
)
from capacity.report._write import FORMATS, parse_formats, write_report

__all__ = [
    "ABOVE_TOKENS",
    "CASE_BODY_LIMIT",
    "FORMATS",
    "Ask",
    "Carried",
    "CurrentQuota",
    "FigureImage",
    "GrowthStep",
    "MeasuredTraffic",
    "QuotaRequestReport",
    "Traffic",
    "build_report",
    "case_body",
    "check_region",
    "default_monitoring",
    "measure_traffic",
    "parse_formats",
    "parse_growth",
    "prompt_tokens_of",
    "to_html",
    "to_markdown",
    "to_pdf",
    "write_report",
]

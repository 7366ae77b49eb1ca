"""Markdown, self-contained HTML and the plain-text support-case body of a report."""

from __future__ import annotations

import html
from collections.abc import Mapping

from capacity.report._blocks import (
    KIND_LABEL,
    blocks,
    headline,
    num,
    pct,
    replay_bullets,
    target_words,
    whole,
)
from capacity.report._elements import Bullets, Code, Heading, Image, PageBreak, Para, Raw, Table
from capacity.report._model import CASE_BODY_LIMIT, QuotaRequestReport
from capacity.report._option import option_case_text


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(
    report: QuotaRequestReport,
    figure_paths: Mapping[str, str] | None = None,
    *,
    figures: bool = True,
) -> str:
    """The report as Markdown. Figures link to ``figure_paths[name]`` when given (files written
    beside the report), else embed as data: URIs (one self-contained file); ``figures=False``
    leaves them out (for a viewer that shows them itself)."""
    lines: list[str] = []
    for b in blocks(report):
        if isinstance(b, Image) and not figures:
            continue
        if isinstance(b, Heading):
            lines += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Para):
            lines += [b.text, ""]
        elif isinstance(b, Bullets):
            lines += [f"- {item}" for item in b.items] + [""]
        elif isinstance(b, Table):
            lines.append("| " + " | ".join(_md_cell(h) for h in b.header) + " |")
            lines.append("|" + "|".join("---" for _ in b.header) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            lines.append("")
        elif isinstance(b, Code):
            lines += ["```", b.text, "```", ""]
        elif isinstance(b, Raw):
            lines += [b.markdown, ""]
        elif isinstance(b, Image):
            f = b.figure
            src = (figure_paths or {}).get(f.name) or f"data:image/png;base64,{f.png_base64}"
            lines += [f"![{f.caption}]({src})", "", f"*{f.caption}*", ""]
    lines += ["## Support case text", "", "```text", case_body(report), "```", ""]
    return "\n".join(lines)


CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1a1a1a;
  max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.6rem; border-bottom: 2px solid #2ca02c; padding-bottom: .3rem; }
h2 { font-size: 1.25rem; margin-top: 1.8rem; }
h3 { font-size: 1.05rem; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .85rem; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f2f5f2; }
pre { background: #f6f6f6; border: 1px solid #ddd; padding: .6rem; white-space: pre-wrap;
  word-break: break-all; font-size: .8rem; }
figure { margin: 1rem 0; } img { max-width: 100%; height: auto; }
figcaption { font-size: .85rem; color: #444; }
.break { break-before: page; }
@media print { body { max-width: none; margin: 0; } pre, table, figure { break-inside: avoid; }
  h2, h3 { break-after: avoid; } }
"""


def to_html(report: QuotaRequestReport) -> str:
    """The report as one self-contained HTML page: inline CSS, figures as base64 PNG, no
    external reference of any kind (scripts, fonts, style sheets, images)."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(report.title)}</title><style>{CSS}</style></head><body>",
    ]
    for b in blocks(report):
        if isinstance(b, Heading):
            parts.append(f"<h{b.level}>{e(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            parts.append(f"<p>{e(b.text)}</p>")
        elif isinstance(b, Bullets):
            parts.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{e(h)}</th>" for h in b.header)
            body = "".join(
                "<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in b.rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(b, Code):
            parts.append(f"<pre><code>{e(b.text)}</code></pre>")
        elif isinstance(b, Raw):
            parts.append(f"<pre>{e(b.markdown)}</pre>")
        elif isinstance(b, Image):
            f = b.figure
            parts.append(
                f'<figure><img alt="{e(f.caption)}" src="data:image/png;base64,{f.png_base64}">'
                f"<figcaption>{e(f.caption)}</figcaption></figure>"
            )
        elif isinstance(b, PageBreak):
            parts.append('<div class="break"></div>')
    parts += [
        "<h2>Support case text</h2>",
        f"<pre>{e(case_body(report))}</pre>",
        "</body></html>",
    ]
    return "\n".join(parts)


def _section(title: str, body: str) -> str:
    return f"{title}\n{body}\n"


def case_body(report: QuotaRequestReport, limit: int = CASE_BODY_LIMIT) -> str:
    """The paste-ready plain text for the support case, at most ``limit`` characters.

    Sections AWS asks for come first; the method and historical usage are shortened, then
    dropped, when the text would not fit (the attached report has them in full).
    """
    r, t = report, report.traffic
    chosen = option_case_text(r.option)
    asks = "\n".join(
        f"- {a.name or KIND_LABEL.get(a.kind, a.kind)} ({a.code or 'code unknown'}): "
        f"{num(a.current)} -> {num(a.desired)}"
        for a in r.asks
    )
    growth = (
        "\n".join(
            f"- {g.label}: {whole(g.users)} users, {num(g.tpm)} TPM"
            + ("" if g.rpm is None else f", {num(g.rpm)} RPM")
            for g in r.growth
        )
        or "- none given beyond the target"
    )
    core = [
        f"Subject: Bedrock quota increase for {r.model_id} in {r.region}\n",
        _section("Use case:", r.use_case),
        _section(
            "Account and model:",
            f"- Account: {r.account_id or '(this account)'}"
            + (f" ({r.organization})" if r.organization else "")
            + f"\n- Model id: {r.model_id}\n- Region: {r.region}\n"
            f"- Cross-Region inference profile: {r.inference_profile_id or 'none (on-demand)'}",
        ),
        _section("Requested quotas (current -> requested):", asks or "- none"),
        *([_section("Option chosen:", chosen)] if chosen else []),
        _section(
            "Expected traffic at the target:",
            f"- {target_words(r)}\n- Traffic at the target: {t.source}\n"
            f"- Latency objective: {r.objective}\n"
            f"- TPM: steady state (p50) {num(t.steady_tpm)}, peak (p90) {num(t.peak_tpm)}"
            + ("" if t.busiest_tpm is None else f", busiest minute {num(t.busiest_tpm)}")
            + f"\n- RPM: steady state (p50) {num(t.steady_rpm, 1)}, peak (p90) "
            f"{num(t.peak_rpm, 1)}"
            + ("" if t.busiest_rpm is None else f", busiest minute {num(t.busiest_rpm, 1)}")
            + f"\n- Average tokens per request: {num(t.input_tokens)} input, "
            f"{num(t.output_tokens)} output (max_tokens {num(t.max_tokens)})\n"
            f"- Share of requests above 25,000 input tokens: {pct(t.share_above_25k)}",
        ),
        *(
            [_section("How the TPM was sized:", "\n".join(f"- {b}" for b in replay_bullets(r)))]
            if r.replay is not None
            else []
        ),
        _section("Growth projections:", growth),
        _section("Monitoring and alarms:", r.monitoring),
        _section("Summary:", headline(r) + " " + r.measured_range),
    ]
    key = (
        "replay.tpm",
        "replay.users_today",
        "request.requests_per_min",
        "request.peak_requests_per_min",
        "request.inflight",
        "request.tpm",
        "request.rpm",
        "users_requested",
    )
    method = "\n".join(f"- {k}: {r.formulas[k]}" for k in key if k in r.formulas)
    if r.predictor:
        method += f"\n- latency model: {r.predictor['source']}"
    optional = [
        _section("How the values were computed (llmcap):", method),
        _section("Historical usage:", r.historical_usage or "none attached (new workload)"),
    ]
    tail = "The full report (PDF/HTML) with the measurements and every formula is attached."
    text = "\n".join(core)
    for extra in optional:
        if len(text) + len(extra) + len(tail) + 2 <= limit:
            text += "\n" + extra
        else:
            room = limit - len(text) - len(tail) - 20
            if room > 200:
                text += "\n" + extra[:room].rstrip() + " [...]\n"
    text = text.rstrip() + "\n\n" + tail
    if len(text) > limit:  # the core alone is too long: cut the use case, never the numbers
        over = len(text) - limit + len(" [...]")
        text = text.replace(r.use_case, r.use_case[: max(0, len(r.use_case) - over)] + " [...]")
    return text

"""The report as PDF, in pure Python (fpdf2; no system library).

Text is set in DejaVu Sans, the TrueType font that matplotlib ships (so →, ×, λ and ≥ print);
figures are the report's PNGs. Page 1 carries the ask, the chart and the headline.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

from capacity.report._blocks import blocks
from capacity.report._elements import Bullets, Code, Heading, Image, PageBreak, Para, Raw, Table
from capacity.report._model import QuotaRequestReport
from capacity.report._render import case_body

FONT = "DejaVu"
SIZES = {1: 16.0, 2: 13.0, 3: 11.0}


def _fonts() -> Path:
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


class _Pdf(FPDF):
    def __init__(self, report: QuotaRequestReport) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.report = report
        fonts = _fonts()
        self.add_font(FONT, "", str(fonts / "DejaVuSans.ttf"))
        self.add_font(FONT, "B", str(fonts / "DejaVuSans-Bold.ttf"))
        self.add_font("DejaVuMono", "", str(fonts / "DejaVuSansMono.ttf"))
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(True, margin=15)
        self.set_title(report.title)
        self.set_creator("llmcap")

    def footer(self) -> None:
        self.set_y(-11)
        self.set_font(FONT, "", 7.5)
        self.set_text_color(110)
        self.cell(0, 5, f"{self.report.title} — page {self.page_no()}/{{nb}}", align="C")
        self.set_text_color(0)


def _text(pdf: FPDF, text: str, size: float = 9.5, style: str = "") -> None:
    pdf.set_font(FONT, style, size)
    pdf.multi_cell(0, size * 0.5, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1.5)


def _table(pdf: FPDF, t: Table) -> None:
    wide = len(t.header) > 6
    size = 6.2 if wide else 8.5
    pdf.set_font(FONT, "", size)
    widths: tuple[int, ...] | None = None
    if len(t.header) == 2:
        widths = (45, 135)
    elif t.header == ("Quota", "Code", "Current", "Requested"):
        widths = (90, 30, 30, 30)
    with pdf.table(
        col_widths=widths,
        line_height=size * 0.5,
        text_align="LEFT",
        first_row_as_headings=True,
        headings_style=FontFace(emphasis="BOLD", fill_color=(242, 245, 242)),
        padding=0.8,
    ) as table:
        for row in (t.header, *t.rows):
            r = table.row()
            for c in row:
                r.cell(c)
    pdf.ln(2)


def _image(pdf: FPDF, png_base64: str, caption: str) -> None:
    data = io.BytesIO(base64.b64decode(png_base64))
    width = pdf.epw
    pdf.image(data, w=width)
    _text(pdf, caption, size=7.5)


def to_pdf(report: QuotaRequestReport) -> bytes:
    """The report as PDF bytes (A4)."""
    pdf = _Pdf(report)
    pdf.add_page()
    for b in blocks(report):
        if isinstance(b, Heading):
            if b.level == 2 and pdf.get_y() > pdf.h - 45:
                pdf.add_page()
            pdf.ln(1.5)
            _text(pdf, b.text, SIZES.get(b.level, 10.0), "B")
        elif isinstance(b, Para):
            _text(pdf, b.text)
        elif isinstance(b, Bullets):
            for item in b.items:
                _text(pdf, f"•  {item}", 9.0)
        elif isinstance(b, Table):
            _table(pdf, b)
        elif isinstance(b, Code | Raw):
            pdf.set_font("DejaVuMono", "", 7.5)
            pdf.set_fill_color(244, 244, 244)
            pdf.multi_cell(
                0,
                3.8,
                b.text if isinstance(b, Code) else b.markdown,
                fill=True,
                align="L",
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )
            pdf.ln(1.5)
        elif isinstance(b, Image):
            _image(pdf, b.figure.png_base64, b.figure.caption)
        elif isinstance(b, PageBreak):
            pdf.add_page()
    pdf.add_page()
    _text(pdf, "Support case text", SIZES[2], "B")
    pdf.set_font("DejaVuMono", "", 7.5)
    pdf.multi_cell(0, 3.6, case_body(report), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())

"""The elements a report is drawn from (headings, paragraphs, bullets, tables, code, raw
Markdown, figures, page breaks): ``_blocks.py`` arranges them, the Markdown, HTML and PDF
renderers draw them."""

from __future__ import annotations

from dataclasses import dataclass

from capacity.report._model import FigureImage

__all__ = ["Block", "Bullets", "Code", "Heading", "Image", "PageBreak", "Para", "Raw", "Table"]


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Raw:
    """Markdown supplied by the user (kept as is in Markdown, preformatted elsewhere)."""

    markdown: str


@dataclass(frozen=True)
class Image:
    figure: FigureImage


@dataclass(frozen=True)
class PageBreak:
    pass


Block = Heading | Para | Bullets | Table | Code | Raw | Image | PageBreak

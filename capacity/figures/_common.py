"""Shared plumbing of the figures: figure creation, saving, histogram + KDE, formatting.

Figures are built with the object API (``matplotlib.figure.Figure``), never through pyplot: no
global state, nothing to close, safe in servers and tests (no display needed).
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from scipy import stats

from capacity.errors import CapacityError
from capacity.records import ensure_records

Floats = npt.NDArray[np.float64]

DPI = 130
"""Resolution of saved PNGs (dots per inch)."""

SUFFIXES = (".png", ".svg")
"""File types ``save_figure`` writes, chosen by the path's suffix."""

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")
"""Colours of successive prompt sizes / constraints."""

HIST_COLOR = "#4c72b0"


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure with constrained layout (titles, labels and legends never overlap)."""
    return Figure(figsize=(width_in, height_in), layout="constrained")


def png_bytes(fig: Figure) -> bytes:
    """``fig`` as PNG bytes (at ``DPI`` dots per inch), for documents that embed it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as PNG (at ``DPI`` dots per inch) or SVG, chosen by the suffix of ``path``.

    Creates missing parent directories; returns the path. Raises ``CapacityError`` for any
    other suffix.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in SUFFIXES:
        raise CapacityError(
            f"{target}: cannot save a figure as {suffix or '(no suffix)'!r}; "
            "name the file .png or .svg"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, format=suffix[1:], dpi=DPI)
    return target


def select(records: pd.DataFrame, prompt_label: str | None, level: float | None) -> pd.DataFrame:
    """Validated records of one prompt label and/or level (all when ``None``).

    Raises ``ValueError`` naming the values present when the selection is empty.
    """
    recs = ensure_records(records)
    mask = np.ones(len(recs), dtype=bool)
    if prompt_label is not None:
        mask &= (recs["prompt_label"] == prompt_label).to_numpy(dtype=bool, na_value=False)
    if level is not None:
        mask &= np.isclose(recs["level"].to_numpy(dtype=np.float64), float(level))
    out = recs[mask]
    if out.empty:
        labels = ", ".join(sorted(str(v) for v in recs["prompt_label"].dropna().unique()))
        levels = ", ".join(f"{v:g}" for v in sorted(recs["level"].dropna().unique()))
        raise ValueError(
            f"no records for prompt_label={prompt_label!r}, level={level!r}; "
            f"the records have prompt labels [{labels}] and levels [{levels}]"
        )
    return out


def ok_values(records: pd.DataFrame, column: str) -> Floats:
    """Finite values of ``column`` over the ``ok`` requests."""
    ok = (records["status"] == "ok").to_numpy(dtype=bool, na_value=False)
    values: Floats = records[column].to_numpy(dtype=np.float64, na_value=np.nan)[ok]
    return values[np.isfinite(values)]


def kde_curve(values: Floats, grid: Floats) -> Floats | None:
    """Gaussian KDE density of ``values`` on ``grid``; ``None`` when the data are degenerate
    (fewer than two distinct values: the bandwidth would be zero)."""
    if values.size < 2 or np.ptp(values) == 0:
        return None
    try:
        density = stats.gaussian_kde(values)(grid)
    except (np.linalg.LinAlgError, ValueError):
        return None
    out: Floats = np.asarray(density, dtype=np.float64)
    return out if np.all(np.isfinite(out)) else None


def hist_kde(ax: Axes, values: Floats, *, bins: int = 30, color: str = HIST_COLOR) -> float:
    """A count histogram of ``values`` with its KDE scaled to counts; returns the bin width.

    Empty data draw a centred "no data" note instead.
    """
    if values.size == 0:
        no_data(ax)
        return math.nan
    if np.ptp(values) == 0:  # one value: one bar, labelled, no KDE
        v = float(values[0])
        ax.bar([v], [values.size], width=1.0, color=color, alpha=0.55, edgecolor="white")
        ax.set_xticks([v], [number(v)])
        ax.set_xlim(v - 3, v + 3)
        ax.set_ylabel("requests")
        ax.grid(alpha=0.3)
        return 1.0
    edges_in: int | list[float] = bins
    if np.all(values == np.round(values)) and np.ptp(values) <= 2 * bins:
        edges_in = list(np.arange(values.min() - 0.5, values.max() + 1.5))  # a bar per count
    _, edges, _ = ax.hist(values, bins=edges_in, color=color, alpha=0.55, edgecolor="white")
    width = float(edges[1] - edges[0])
    grid = np.linspace(edges[0], edges[-1], 256)  # no density claimed beyond the data
    density = kde_curve(values, grid)
    if density is not None:
        ax.plot(grid, density * values.size * width, color=color, linewidth=1.6)
    ax.set_ylabel("requests")
    ax.grid(alpha=0.3)
    return width


def no_data(ax: Axes, text: str = "no data") -> None:
    """Mark an empty panel (no ticks: there is no scale to read)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def style_axes(ax: Axes) -> None:
    """The house look: light grid below the data."""
    ax.grid(alpha=0.3)
    ax.set_axisbelow(True)


def number(x: float) -> str:
    """A readable value: thousands separated above 1000, else 3 significant digits."""
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def si(x: float) -> str:
    """A compact number: 1234 → ``1.23k``, 2_500_000 → ``2.5M``."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


SI_FORMATTER = FuncFormatter(lambda x, _pos: si(x) if x else "0")
"""Tick formatter for large counts (tokens per minute)."""


def text_of(records: pd.DataFrame, column: str) -> str:
    """The distinct non-null values of ``column``, comma-joined (``?`` when none)."""
    values = sorted({str(v) for v in records[column].dropna().unique()})
    return ", ".join(values) if values else "?"


def number_of(records: pd.DataFrame, column: str, fmt: str = "g") -> str:
    """The distinct finite values of a numeric column, formatted and comma-joined."""
    values = records[column].to_numpy(dtype=np.float64, na_value=np.nan)
    distinct = np.unique(values[np.isfinite(values)])
    if distinct.size == 0:
        return "?"
    if distinct.size > 4:
        return f"{distinct[0]:{fmt}}–{distinct[-1]:{fmt}}"
    return ", ".join(f"{v:{fmt}}" for v in distinct)

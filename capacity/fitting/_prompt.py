"""One measured prompt size's fitted curves (``PromptModel``), the knees of a prompt size, and the
helpers predictions share: when a concurrency or prompt size leaves the measured range."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from capacity._jsonio import dec, dec_all, enc, enc_all, need
from capacity.fitting._quantile import QuantileCurve
from capacity.fitting._usl import EXTRAPOLATION_LIMIT, UslFit

Floats = npt.NDArray[np.float64]
Basis = Literal["measured", "offered"]
PROMPT_TOLERANCE = 0.05
"""Prompt sizes within 5 % of a measured size use that size's curves as they are."""


@dataclass(frozen=True)
class PromptModel:
    """The fitted curves of one measured prompt size (``input_tokens`` = mean of ok requests)."""

    prompt_label: str
    input_tokens: float
    output_tokens: float
    decode: UslFit
    throughput: UslFit
    ttft: tuple[QuantileCurve, ...]
    ttlt: tuple[QuantileCurve, ...]
    tps_low: QuantileCurve
    levels: tuple[float, ...]
    concurrency: tuple[float, ...]
    n_requests: int

    @property
    def n_max(self) -> float:
        """The largest fitted concurrency."""
        return max(self.concurrency)

    def curves_at(self, n: Floats) -> dict[str, Floats]:
        """Every predicted quantity at concurrencies ``n`` (vectorised, before interpolation).

        Per-request quantities are evaluated at ``max(n, 1)``: a request in flight always has
        itself for company. Beyond the largest measured concurrency the polynomial quantile
        curves are not extrapolated as polynomials: TTFT continues linearly (never falling),
        the decode part of TTLT and the tps tail follow the USL slowdown of the median.
        """
        m = np.maximum(n, 1.0)
        top = self.n_max
        beyond = m > top
        inside = np.minimum(m, top)
        p50 = self.decode.per_request(m)
        slowdown = self.decode.per_request(top) / p50  # > 1 beyond the measured range
        tail = min(max(self.tps_low.predict(top) / self.decode.per_request(top), 0.0), 1.0)
        out = {
            "tps_p50": p50,
            "tps_p5": np.where(beyond, p50 * tail, self.tps_low.predict(inside)),
            "system_output_tps": n * self.throughput.per_request(m),
        }
        ttft = {c.q: c for c in self.ttft}
        for q, c in ttft.items():
            grow = c.predict(top) + max(c.slope(top), 0.0) * (m - top)
            out[f"ttft_{q!r}"] = np.where(beyond, grow, c.predict(inside))
        for c in self.ttlt:
            first = ttft.get(c.q)
            if first is not None:
                decode = c.predict(top) - first.predict(top)
                grow = out[f"ttft_{c.q!r}"] + decode * slowdown
            else:
                grow = c.predict(top) + max(c.slope(top), 0.0) * (m - top)
            out[f"ttlt_{c.q!r}"] = np.where(beyond, grow, c.predict(inside))
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that ``from_dict`` reads back exactly."""
        return {
            "prompt_label": self.prompt_label,
            "input_tokens": enc(self.input_tokens),
            "output_tokens": enc(self.output_tokens),
            "decode": self.decode.to_dict(),
            "throughput": self.throughput.to_dict(),
            "ttft": [c.to_dict() for c in self.ttft],
            "ttlt": [c.to_dict() for c in self.ttlt],
            "tps_low": self.tps_low.to_dict(),
            "levels": enc_all(self.levels),
            "concurrency": enc_all(self.concurrency),
            "n_requests": self.n_requests,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: str) -> PromptModel:
        """The inverse of ``to_dict``."""
        return cls(
            prompt_label=str(need(doc, "prompt_label", where)),
            input_tokens=dec(need(doc, "input_tokens", where), f"{where}.input_tokens"),
            output_tokens=dec(need(doc, "output_tokens", where), f"{where}.output_tokens"),
            decode=UslFit.from_dict(need(doc, "decode", where), f"{where}.decode"),
            throughput=UslFit.from_dict(need(doc, "throughput", where), f"{where}.throughput"),
            ttft=tuple(
                QuantileCurve.from_dict(c, f"{where}.ttft") for c in need(doc, "ttft", where)
            ),
            ttlt=tuple(
                QuantileCurve.from_dict(c, f"{where}.ttlt") for c in need(doc, "ttlt", where)
            ),
            tps_low=QuantileCurve.from_dict(need(doc, "tps_low", where), f"{where}.tps_low"),
            levels=dec_all(need(doc, "levels", where), f"{where}.levels"),
            concurrency=dec_all(need(doc, "concurrency", where), f"{where}.concurrency"),
            n_requests=int(need(doc, "n_requests", where)),
        )


@dataclass(frozen=True)
class Knees:
    """Operating points of one prompt size, from the one capacity curve (docs/architecture.md).

    ``peak_concurrency``: N*, the in-flight count where requests/s N / R(N) peaks (``math.inf``
    when the curve still rises at the search limit); ``efficient_concurrency``: where the USL's
    token-throughput efficiency X/(λN) falls to ``efficiency``; ``slo_concurrency``: the largest N
    meeting the SLO described by ``slo`` (None without one; a lower bound when ``notes`` say the
    search stopped); ``recommended_concurrency``: the smaller of N* and the SLO limit.
    """

    input_tokens: float
    output_tokens: float
    peak_concurrency: float
    efficient_concurrency: float
    efficiency: float
    slo_concurrency: float | None
    recommended_concurrency: float
    slo: str = ""
    notes: tuple[str, ...] = field(default=())


def extrapolation_note(pm: PromptModel, n: float) -> str | None:
    """A note when ``n`` lies beyond the measured concurrency of ``pm``."""
    if n <= pm.n_max * (1 + 1e-9):
        return None
    severity = (
        "beyond the 1.5× extrapolation limit"
        if n > EXTRAPOLATION_LIMIT * pm.n_max
        else ("an extrapolation")
    )
    return (
        f"concurrency {n:g} exceeds the largest measured for {pm.prompt_label!r} "
        f"({pm.n_max:.3g}): {severity}"
    )


def is_close_size(a: float, b: float) -> bool:
    """Whether prompt sizes ``a`` and ``b`` are within ``PROMPT_TOLERANCE`` of each other."""
    return math.isclose(a, b, rel_tol=PROMPT_TOLERANCE, abs_tol=1.0)

"""``CapacityModel``: fitted throughput and latency curves per prompt size, and predictions.

Per measured prompt size a ``PromptModel`` holds two USL fits against in-flight concurrency —
``decode`` (median per-request tps) and ``throughput`` (system output tokens/s per in-flight
request, X/N) — and quantile curves of TTFT, TTLT and the slow tail of tps. ``predict``
interpolates linearly in input tokens between the measured sizes (extrapolating linearly, and
flagging it, outside them). Saved as versioned JSON that reads back bit for bit.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from capacity.errors import CapacityError, ModelFileError
from capacity.jsonio import dec, dec_all, enc, enc_all, need
from capacity.prediction import Prediction
from capacity.quantile import QuantileCurve
from capacity.usl import EXTRAPOLATION_LIMIT, UslFit

Floats = npt.NDArray[np.float64]
Basis = Literal["measured", "offered"]
FORMAT = "llmcap.capacity-model"
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
    """Operating points of one prompt size (DESIGN §8).

    ``peak_concurrency``: the USL peak of system throughput; ``efficient_concurrency``: where
    efficiency X/(λN) falls to ``efficiency``; ``slo_concurrency``: the largest N at which every
    SLO in ``slo`` holds (``None`` without SLOs); ``recommended_concurrency``: the smaller of the
    peak and the SLO limit.
    """

    input_tokens: float
    peak_concurrency: float
    efficient_concurrency: float
    efficiency: float
    slo_concurrency: float | None
    recommended_concurrency: float
    slo: tuple[tuple[str, float], ...] = ()
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class CapacityModel:
    """Fitted performance curves per prompt size; ``predict`` returns a ``Prediction``.

    ``concurrency`` says what N is: ``measured`` time-weighted in-flight requests (default) or
    the ``offered`` level. Build one with ``capacity.fit_capacity``.
    """

    prompts: tuple[PromptModel, ...]
    concurrency: Basis
    model_id: str
    notes: tuple[str, ...] = ()
    VERSION: ClassVar[int] = 1

    def prompt(self, label: str) -> PromptModel:
        """The prompt model labelled ``label``."""
        for pm in self.prompts:
            if pm.prompt_label == label:
                return pm
        known = ", ".join(p.prompt_label for p in self.prompts)
        raise KeyError(f"no prompt labelled {label!r}; the model has {known}")

    def curves(self, concurrency: Floats, input_tokens: float) -> dict[str, Floats]:
        """Every predicted quantity at an array of concurrencies (for plots and searches):
        ``tps_p50``, ``tps_p5``, ``system_output_tps``, ``ttft_<q>``, ``ttlt_<q>``."""
        from capacity.predict import blend, finish  # local: predict imports this module

        raw, notes, _ = blend(self.prompts, np.asarray(concurrency, np.float64), input_tokens)
        return finish(raw, notes)

    def predict(self, concurrency: float, input_tokens: float) -> Prediction:
        """Performance at ``concurrency`` requests in flight with ``input_tokens`` prompts."""
        from capacity.predict import predict_point

        return predict_point(self, concurrency, input_tokens)

    def knees(
        self,
        input_tokens: float,
        *,
        slo: Mapping[str, float] | None = None,
        efficiency: float = 0.8,
    ) -> Knees:
        """Knees for ``input_tokens`` prompts. ``slo`` maps Prediction-style keys to bounds:
        ``ttft_p95_s``, ``ttlt_p99_s``, … (upper bounds, seconds) and ``tps_p50``, ``tps_p5``
        (lower bounds, tokens/s)."""
        from capacity.predict import find_knees

        return find_knees(self, input_tokens, slo or {}, efficiency)

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON document."""
        return {
            "format": FORMAT,
            "version": self.VERSION,
            "concurrency": self.concurrency,
            "model_id": self.model_id,
            "notes": list(self.notes),
            "prompts": [p.to_dict() for p in self.prompts],
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> CapacityModel:
        """Read a document written by ``to_dict``; raises ``ModelFileError``."""
        if need(doc, "format", "model") != FORMAT:
            raise ModelFileError(f"not an llmcap capacity model (format {doc['format']!r})")
        version = need(doc, "version", "model")
        if not isinstance(version, int) or version > cls.VERSION:
            raise ModelFileError(
                f"model version {version!r} is newer than this llmcap reads ({cls.VERSION}); "
                "upgrade llmcap"
            )
        basis = need(doc, "concurrency", "model")
        if basis not in ("measured", "offered"):
            raise ModelFileError(f"concurrency must be measured or offered, got {basis!r}")
        prompts = need(doc, "prompts", "model")
        if not isinstance(prompts, list) or not prompts:
            raise ModelFileError("model.prompts must be a non-empty list")
        return cls(
            prompts=tuple(PromptModel.from_dict(p, f"prompts[{i}]") for i, p in enumerate(prompts)),
            concurrency=basis,
            model_id=str(need(doc, "model_id", "model")),
            notes=tuple(str(n) for n in need(doc, "notes", "model")),
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model as JSON (atomically); returns the path."""
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n", "utf-8")
        os.replace(tmp, target)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CapacityModel:
        """Read a model written by ``save``; raises ``ModelFileError`` naming the problem."""
        p = Path(path)
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ModelFileError(f"{p}: cannot read ({exc.strerror}); check the path") from exc
        except json.JSONDecodeError as exc:
            raise ModelFileError(
                f"{p}: not JSON ({exc.msg} at line {exc.lineno}); write it with `llmcap fit -o`"
            ) from exc
        try:
            return cls.from_dict(doc)
        except CapacityError as exc:
            raise ModelFileError(f"{p}: {exc}") from exc
        except (TypeError, ValueError, KeyError) as exc:
            raise ModelFileError(f"{p}: malformed model ({exc})") from exc


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

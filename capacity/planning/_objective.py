"""The latency objective a capacity is stated under: given, the default (p95 TTFT at most 2× the
unloaded p95 TTFT), or none — one decision for every interface (docs/architecture.md, "One
answer")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from capacity.planning._inputs import PlanInputError, Slo, as_number
from capacity.prediction import Predictor

__all__ = [
    "DEFAULT_SLO_FACTOR",
    "NO_MODEL",
    "TURNED_OFF",
    "Objective",
    "ObjectiveSource",
    "default_slo",
    "objective",
]

DEFAULT_SLO_FACTOR = 2.0
"""The default objective: p95 TTFT at most this multiple of the unloaded p95 TTFT."""


def _unloaded_ttft_p95(model: Predictor, prompt_tokens: float) -> float:
    unloaded = model.predict(1.0, prompt_tokens).ttft_s
    p95 = next((float(v) for q, v in unloaded.items() if abs(float(q) - 0.95) < 1e-6), None)
    if p95 is None or not p95 > 0:
        raise PlanInputError("the model predicts no p95 TTFT at one request in flight")
    return p95


def default_slo(model: Predictor, input_tokens: float, factor: float = DEFAULT_SLO_FACTOR) -> Slo:
    """p95 TTFT ≤ ``factor`` × the model's p95 TTFT with one request in flight at this prompt
    size (``objective`` applies it wherever a model is given and no objective is)."""
    return Slo(ttft_p95_s=round(factor * _unloaded_ttft_p95(model, input_tokens), 2))


ObjectiveSource = Literal["given", "default", "none"]


@dataclass(frozen=True)
class Objective:
    """The latency objective a capacity is stated under, and where it came from.

    ``source`` is ``"given"`` (the user's ``slo``), ``"default"`` (p95 TTFT ≤ ``factor`` × the
    unloaded p95 TTFT, ``unloaded_ttft_p95_s``) or ``"none"`` (no objective: turned off, or no
    performance model to predict latency with; ``why`` says which).
    """

    slo: Slo | None
    source: ObjectiveSource
    factor: float | None = None
    unloaded_ttft_p95_s: float | None = None
    why: str | None = None

    def describe(self) -> str:
        """The objective in words, naming where it came from (every capacity states it)."""
        if self.slo is None:
            return f"no latency objective ({self.why or 'none given'})"
        if self.source == "default":
            return (
                f"{self.slo.describe()} (the default: {self.factor:g}× the unloaded p95 TTFT "
                f"of {self.unloaded_ttft_p95_s:.2f} s)"
            )
        return f"{self.slo.describe()} (given)"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus ``describe()`` as ``text``."""
        slo = None
        if self.slo is not None:
            slo = {
                "ttft_p95_s": self.slo.ttft_p95_s,
                "ttlt_p95_s": self.slo.ttlt_p95_s,
                "min_tps_p5": self.slo.min_tps_p5,
            }
        return {
            "slo": slo,
            "source": self.source,
            "factor": self.factor,
            "unloaded_ttft_p95_s": self.unloaded_ttft_p95_s,
            "text": self.describe(),
        }


NO_MODEL = "no performance model: latency is not predicted"
TURNED_OFF = "turned off: users are limited by the quota and the endpoint's peak throughput"


def objective(
    model: Predictor | None,
    prompt_tokens: float,
    *,
    ttft_p95_s: float | None = None,
    ttlt_p95_s: float | None = None,
    min_tps_p5: float | None = None,
    use_default: bool = True,
    factor: float = DEFAULT_SLO_FACTOR,
) -> Objective:
    """The one decision on the latency objective, taken the same way by every interface.

    Targets given → that ``Slo`` (it needs a ``model``); none given with a model → the default,
    p95 TTFT ≤ ``factor`` × the model's unloaded p95 TTFT at ``prompt_tokens`` (unless
    ``use_default`` is False: no objective); no model → no objective.
    """
    given = (ttft_p95_s, ttlt_p95_s, min_tps_p5)
    if any(v is not None for v in given):
        if model is None:
            raise PlanInputError(
                "a latency objective needs a performance model: give model.json or twin.json "
                "(latency cannot be predicted without one)"
            )
        return Objective(Slo(*given), "given")
    if model is None:
        return Objective(None, "none", why=NO_MODEL)
    if not use_default:
        return Objective(None, "none", why=TURNED_OFF)
    if as_number("factor", factor) <= 0:
        raise PlanInputError(f"the default objective's factor must be > 0, got {factor!r}")
    unloaded = _unloaded_ttft_p95(model, prompt_tokens)
    slo = Slo(ttft_p95_s=round(factor * unloaded, 2))
    return Objective(slo, "default", factor=float(factor), unloaded_ttft_p95_s=unloaded)

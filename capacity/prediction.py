"""What a performance model predicts at one operating point: the seam between the models (the
fitted ``CapacityModel``, the calibrated twin) and the quota planner (``capacity.planning``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Prediction:
    """Predicted performance at ``concurrency`` requests in flight with ``input_tokens`` prompts.

    ``tps_*`` are per-request decode speeds (1 / TPOT, tokens/s); ``system_output_tps`` is the
    output tokens/s of the whole endpoint at that concurrency; latency quantiles are keyed by
    quantile (0.5, 0.95, 0.99), in seconds, for ``output_tokens``-token answers (the output
    length the model was fitted on; None when unknown). ``measured_concurrency_max`` is the
    largest in-flight count the model's evidence covered (None when unknown): beyond it the
    prediction is an extrapolation, and ``extrapolated`` says so. ``source`` names what
    predicted it, for plans and reports.
    """

    concurrency: float
    input_tokens: float
    tps_p50: float
    tps_p5: float
    system_output_tps: float
    ttft_s: Mapping[float, float]
    ttlt_s: Mapping[float, float]
    extrapolated: bool = False
    notes: tuple[str, ...] = field(default=())
    output_tokens: float | None = None
    measured_concurrency_max: float | None = None
    source: str = "the fitted model"  # what predicted it, in words ("the calibrated twin")


class Predictor(Protocol):
    """Anything that predicts performance at an operating point (``CapacityModel`` does)."""

    def predict(self, concurrency: float, input_tokens: float) -> Prediction:
        """Performance at ``concurrency`` in-flight requests with prompts of ``input_tokens``."""
        ...

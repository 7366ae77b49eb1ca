"""A stand-in ``Predictor`` for the planner's tests (a fake of the protocol, not of our code)."""

from __future__ import annotations

import math

from capacity.prediction import Prediction


class FakeModel:
    """USL-shaped curves: per-request tps = λ / (1 + σ(N−1) + κN(N−1)); median TTFT grows
    linearly with N and with prompt size; p95 TTFT = 1.5 × median; p5 tps = 0.8 × median.
    ``tps_drop_per_inflight`` subtracts a straight line, as an extrapolated linear fit would."""

    def __init__(
        self,
        lam: float = 136.0,
        sigma: float = 0.002,
        kappa: float = 3e-5,
        ttft0_s: float = 0.28,
        ttft_per_inflight_s: float = 0.002,
        ttft_per_input_token_s: float = 78e-6,
        tps_drop_per_inflight: float = 0.0,
    ) -> None:
        self.lam, self.sigma, self.kappa = lam, sigma, kappa
        self.ttft0_s = ttft0_s
        self.ttft_per_inflight_s = ttft_per_inflight_s
        self.ttft_per_input_token_s = ttft_per_input_token_s
        self.tps_drop_per_inflight = tps_drop_per_inflight

    def predict(self, concurrency: float, input_tokens: float) -> Prediction:
        """Performance at ``concurrency`` in flight with ``input_tokens`` prompts."""
        n = concurrency
        tps = self.lam / (1 + self.sigma * (n - 1) + self.kappa * n * (n - 1))
        tps -= self.tps_drop_per_inflight * n  # a straight-line fit goes negative eventually
        ttft = (
            self.ttft0_s + self.ttft_per_input_token_s * input_tokens + self.ttft_per_inflight_s * n
        )
        decode_s = 349 / tps if tps > 0 else math.inf
        return Prediction(
            concurrency=n,
            input_tokens=input_tokens,
            tps_p50=tps,
            tps_p5=0.8 * tps,
            system_output_tps=n * tps,
            ttft_s={0.5: ttft, 0.95: 1.5 * ttft, 0.99: 2.0 * ttft},
            ttlt_s={0.5: ttft + decode_s, 0.95: 1.5 * ttft + decode_s / 0.8},
        )

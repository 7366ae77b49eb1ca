"""What a sweep is asked to do: ``SweepConfig`` and its validation."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from bench.providers.base import Endpoint
from bench.strategies import MODES, LevelPlan

SEED_LEVELS = (1, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50)  # the seed blog's sweep
# One process reads ~500 streams with TTFT p99 error < 10 ms (docs/performance.md).
STREAMS_PER_WORKER = 500
EXPECTED_LATENCY_S = 4.0


class SweepError(ValueError):
    """A sweep configuration is invalid; the message names the option and the fix."""


@dataclass(frozen=True)
class SweepConfig:
    """Everything a sweep needs. The defaults reproduce the seed blog's configuration."""

    endpoint: Endpoint = field(default_factory=Endpoint)
    prompt: str = "small,large"
    mode: str = "interval"
    levels: tuple[float, ...] = SEED_LEVELS
    batches: int = 60
    interval_s: float = 1.0
    duration_s: float | None = None
    n_requests: int | None = None
    arrival: str = "poisson"
    max_inflight: int | None = None
    max_tokens: int = 350
    temperature: float = 0.5
    warmup: int = 0
    drain_s: float = 0.0
    stop_on_error_rate: float | None = None
    # Stop when every request of the first batch fails (`llmcap bench` sets it unless
    # --keep-going; off by default for library callers measuring failures on purpose).
    stop_on_first_batch_failure: bool = False
    out: Path = Path("runs")
    run_id: str | None = None
    seed: int = 0
    progress: bool = True
    emulator_profile: str | None = None  # set when the sweep ran against the built-in emulator
    workers: int | None = None  # load processes; None: chosen by ``default_workers``
    ray: str | None = None  # "auto" or a Ray address: one actor per worker across the cluster

    def validate(self) -> None:
        """Raise SweepError naming the first bad option."""
        if self.mode not in MODES:
            raise SweepError(f"--mode {self.mode!r}: choose one of {', '.join(MODES)}")
        if not self.levels or any(lv <= 0 for lv in self.levels):
            raise SweepError("--levels must list positive numbers, e.g. 1,5,10")
        if self.mode != "rate" and any(lv != int(lv) for lv in self.levels):
            raise SweepError(f"--levels must be whole numbers in {self.mode} mode")
        if self.batches < 1 or self.interval_s <= 0:
            raise SweepError("--batches must be ≥ 1 and --interval-s > 0")
        if self.mode == "concurrency" and self.duration_s is None and self.n_requests is None:
            raise SweepError("concurrency mode needs --duration-s or --requests")
        if self.max_tokens < 1:
            raise SweepError("--max-tokens must be ≥ 1")
        if not 0 <= self.temperature <= 2:
            raise SweepError("--temperature must be in [0, 2]")
        if self.stop_on_error_rate is not None and not 0 < self.stop_on_error_rate <= 1:
            raise SweepError("--stop-on-error-rate must be in (0, 1], e.g. 0.5")
        if self.arrival not in ("poisson", "constant"):
            raise SweepError("--arrival must be poisson or constant")
        if self.workers is not None and self.workers < 1:
            raise SweepError("--workers must be ≥ 1")
        if self.mode == "sequential" and (self.workers or 1) > 1:
            raise SweepError(
                "sequential mode waits for each whole batch, so it runs in one process: "
                "drop --workers (or use --mode interval)"
            )
        if self.mode == "concurrency" and self.workers and self.workers > min(self.levels):
            raise SweepError(
                f"--workers {self.workers} exceeds the smallest concurrency level "
                f"{min(self.levels):g}: each worker needs at least one slot"
            )

    def plan(self, level: float) -> LevelPlan:
        """The strategy plan of one level."""
        return LevelPlan(
            mode=self.mode, level=level, batches=self.batches, interval_s=self.interval_s,
            duration_s=self.duration_s, n_requests=self.n_requests, arrival=self.arrival,
            max_inflight=self.max_inflight, seed=self.seed,
        )  # fmt: skip

    def planned_streams(self) -> int:
        """Streams the sweep's top level keeps in flight (estimated with ~4 s per request for
        the modes that do not fix it)."""
        top = max(self.levels)
        if self.mode in ("concurrency", "sequential"):
            return int(top)
        if self.mode == "rate":
            return self.max_inflight or math.ceil(top * EXPECTED_LATENCY_S)
        return int(top) * max(1, math.ceil(EXPECTED_LATENCY_S / self.interval_s))

    def default_workers(self, *, endpoint_on_this_host: bool, cores: int | None) -> int:
        """Enough worker processes for ``planned_streams`` at ``STREAMS_PER_WORKER`` each, at
        most one per core — one less when the endpoint (the emulator) shares the machine."""
        if self.mode == "sequential":
            return 1
        cores = cores or 1
        cap = max(1, cores - 1 if endpoint_on_this_host else cores)
        wanted = math.ceil(self.planned_streams() / STREAMS_PER_WORKER)
        if self.mode == "concurrency":
            wanted = min(wanted, int(min(self.levels)))
        return max(1, min(wanted, cap))

    def pool_size(self) -> int:
        """Connections/threads to provision: above any concurrency the sweep can reach."""
        top = max(self.levels)
        if self.mode == "concurrency":
            return int(top) + 8
        if self.mode == "rate":
            return self.max_inflight + 8 if self.max_inflight else min(4096, int(top * 120) + 64)
        if self.mode == "sequential":
            return int(top) + 8
        return min(4096, int(top * 12) + 64)  # interval: level × latency / interval in flight

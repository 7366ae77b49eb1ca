"""Before a sweep spends money: what it will send (requests, tokens, peak TPM per level), what
that costs on demand, whether it fits a budget, and which levels the current quota will throttle.

Nothing is sent to the endpoint. Input tokens are counted with the emulator's tokenizer rule
(plus the emulator profile's chat-template overhead), an estimate of the real tokenizer; output
is bounded by max_tokens, so tokens, TPM and cost are upper bounds on output. Peak TPM is the
quota tokens reserved at admission per minute (input + max_tokens per request): what Bedrock
checks against the TPM quota. Levels whose request rate depends on latency (concurrency and
sequential modes) have no peak rate before the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from account import AccountError, connect, read_model_quotas
from bench.config import SweepConfig
from bench.prompts import load_prompt_sets
from capacity.serving import burndown_for, load_profile
from capacity.usage import PriceError, load_prices
from emulator.tokens import count_tokens


@dataclass(frozen=True)
class LevelEstimate:
    """One (prompt set, level) of the sweep."""

    prompt: str
    level: float
    requests: int | None
    input_tokens: float
    max_tokens: float
    duration_s: float | None
    peak_rpm: float | None
    peak_tpm: float | None
    cost_usd: float | None

    @property
    def tokens(self) -> float | None:
        """Input + output tokens of the level (output at max_tokens)."""
        return (
            None if self.requests is None else self.requests * (self.input_tokens + self.max_tokens)
        )


@dataclass(frozen=True)
class SweepEstimate:
    """The whole sweep: levels, totals, the price used and quota warnings."""

    levels: tuple[LevelEstimate, ...]
    price_line: str | None
    quota_tpm: float | None
    quota_source: str
    notes: tuple[str, ...] = field(default=())

    @property
    def total_requests(self) -> int | None:
        """All requests, None when a level's count depends on latency."""
        counts = [lv.requests for lv in self.levels]
        return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)

    @property
    def total_cost_usd(self) -> float | None:
        """Upper bound on the on-demand cost, None when unknown."""
        costs = [lv.cost_usd for lv in self.levels]
        return None if any(c is None for c in costs) else sum(c for c in costs if c is not None)

    def throttled_levels(self) -> list[LevelEstimate]:
        """Levels whose peak TPM exceeds the TPM quota."""
        q = self.quota_tpm
        return [lv for lv in self.levels if q and lv.peak_tpm is not None and lv.peak_tpm > q]


def _overhead(config: SweepConfig) -> int:
    if config.endpoint.endpoint_url is None and config.endpoint.region is None:
        return load_profile(
            config.emulator_profile or "llama3.3-70b-bedrock"
        ).prompt_overhead_tokens
    return 0


def _quota(config: SweepConfig, profile: str | None) -> tuple[float | None, str]:
    ep = config.endpoint
    if ep.endpoint_url is None and ep.region is None:
        tpm = load_profile(config.emulator_profile or "llama3.3-70b-bedrock").quotas.tpm
        return (None if tpm is None else float(tpm)), "the built-in emulator's profile"
    try:
        conn = connect(ep.region or "us-east-1", profile, ep.endpoint_url)
        mq = read_model_quotas(conn, ep.model_id, with_requests=False)
    except AccountError as exc:
        return None, f"not read ({exc})"
    except (ClientError, BotoCoreError) as exc:  # e.g. an OpenAI-compatible server at the URL
        return None, f"not read ({type(exc).__name__}: the endpoint serves no Service Quotas)"
    where = ep.endpoint_url or f"Service Quotas in {conn.region}"
    return mq.value("tpm"), f"read live from {where}"


def estimate_sweep(
    config: SweepConfig,
    *,
    prices: Path | None = None,
    price_region: str | None = None,
    aws_profile: str | None = None,
    read_quota: bool = True,
) -> SweepEstimate:
    """Requests, tokens, peak TPM and cost of every level of ``config``, without sending."""
    config.validate()
    notes = []
    region = price_region or config.endpoint.region or "us-east-1"
    if price_region is None and config.endpoint.region is None:
        notes.append(f"priced as {region} (pass --region or --price-region to change)")
    try:
        price = load_prices(prices).price(config.endpoint.model_id, region)
        price_line: str | None = price.describe()
    except PriceError as exc:
        price, price_line = None, None
        notes.append(f"no cost: {exc}")
    overhead = _overhead(config)
    levels = []
    for pset in load_prompt_sets(config.prompt):
        if pset.synthetic_tokens is not None:
            tokens_in = float(pset.synthetic_tokens)
            max_out = float(config.max_tokens)
        else:
            counts = [count_tokens(p.text) + overhead for p in pset.prompts]
            tokens_in = sum(counts) / len(counts)
            outs = [p.max_tokens or config.max_tokens for p in pset.prompts]
            max_out = sum(outs) / len(outs)
        for level in config.levels:
            plan = config.plan(level)
            n = plan.expected_requests()
            if config.mode == "interval":
                rpm: float | None = level * 60.0 / config.interval_s
                duration: float | None = config.batches * config.interval_s
            elif config.mode == "rate":
                rpm = level * 60.0
                duration = config.duration_s or (None if n is None else n / level)
            else:
                rpm, duration = None, None
            tpm = None if rpm is None else rpm * (tokens_in + max_out)
            cost = None
            if price is not None and n is not None:
                cost = n * price.request_cost(tokens_in, max_out)
            levels.append(
                LevelEstimate(pset.label, level, n, tokens_in, max_out, duration, rpm, tpm, cost)
            )
    if config.mode in ("concurrency", "sequential"):
        notes.append(f"{config.mode} mode: the request rate depends on latency; no peak TPM")
    quota, source = (None, "not checked") if not read_quota else _quota(config, aws_profile)
    burndown = burndown_for(config.endpoint.model_id).value
    if burndown != 1:
        notes.append(f"output burndown {burndown:g}: settled TPM is up to {burndown:g}× output")
    return SweepEstimate(tuple(levels), price_line, quota, source, tuple(notes))


def render(est: SweepEstimate) -> str:
    """The estimate as plain text: one line per level, totals, quota warnings."""

    def n(x: float | None, fmt: str = ",.0f") -> str:
        return "—" if x is None else format(x, fmt)

    lines = [
        f"{'prompt':<14} {'level':>6} {'requests':>9} {'in tok/req':>10} {'max out':>8} "
        f"{'peak RPM':>9} {'peak TPM':>11} {'cost USD':>9}"
    ]
    for lv in est.levels:
        lines.append(
            f"{lv.prompt:<14} {lv.level:>6g} {n(lv.requests):>9} {lv.input_tokens:>10,.0f} "
            f"{lv.max_tokens:>8,.0f} {n(lv.peak_rpm):>9} {n(lv.peak_tpm):>11} "
            f"{n(lv.cost_usd, ',.2f'):>9}"
        )
    lines.append(
        f"total: {n(est.total_requests)} requests, at most ${n(est.total_cost_usd, ',.2f')} "
        "on demand (output counted at max_tokens)"
    )
    if est.price_line:
        lines.append(f"price: {est.price_line}")
    quota = "unknown" if est.quota_tpm is None else f"{est.quota_tpm:,.0f}"
    lines.append(f"TPM quota: {quota} ({est.quota_source})")
    for lv in est.throttled_levels():
        lines.append(
            f"warning: {lv.prompt} level {lv.level:g} reserves {lv.peak_tpm:,.0f} tokens/min, "
            f"above the TPM quota {est.quota_tpm:,.0f}: expect throttling"
        )
    lines += [f"note: {x}" for x in est.notes]
    return "\n".join(lines)

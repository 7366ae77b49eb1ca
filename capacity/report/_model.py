"""The report's data: plain, JSON-ready values only, so ``to_dict`` / ``from_dict`` round-trip
exactly (``QuotaRequestReport.from_dict(r.to_dict()) == r``, also through ``json``)."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from capacity.errors import ReportError

FORMAT = "llmcap.quota-request-report"
VERSION = 4
READS = (2, 3, 4)
"""Versions ``from_dict`` reads: 2 lacks the traffic's source and busiest minute and the replay
(they default), 3 the option chosen (it defaults to none), 4 has them all."""

CASE_BODY_LIMIT = 8000
"""Characters a support-case communication body may hold (AWS Support API ``Communication.body``
and ``AddCommunicationToCase``'s ``communicationBody``: 1 to 8,000 characters)."""

ABOVE_TOKENS = 25_000
"""AWS asks for the share of requests above this many input tokens."""


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dicts with string keys, lists for sequences, None for a
    non-finite float (JSON has no NaN or infinity)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if hasattr(value, "item"):  # numpy scalars
        return plain(value.item())
    return str(value)


@dataclass(frozen=True)
class CurrentQuota:
    """One quota the account has today: ``kind`` (tpm, rpm, tpd), Service Quotas ``code`` and
    ``name`` where known, and the applied ``value``."""

    kind: str
    value: float
    code: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Ask:
    """One quota to raise: current → desired value, why that value, and how to ask."""

    kind: str
    name: str | None
    code: str | None
    current: float | None
    desired: int
    why: str
    cli: str | None
    boto3: str | None


@dataclass(frozen=True)
class Traffic:
    """What AWS asks about the traffic: TPM and RPM at steady state (p50) and at peak (p90),
    tokens per request and the share above 25k input.

    ``source`` says where the numbers come from: the planner's rate for the target (steady =
    the average minute λ, peak = λ × peak-to-average) or real traffic at the target (steady =
    the median minute, peak = the 90th-percentile minute, and ``busiest_tpm``/``busiest_rpm``
    the busiest minute; None from the planner, whose peak is its busiest minute)."""

    steady_tpm: float
    peak_tpm: float
    steady_rpm: float
    peak_rpm: float
    input_tokens: float
    output_tokens: float
    max_tokens: float
    share_above_25k: float
    share_source: str
    formulas: dict[str, str]
    source: str = "from the planner's rate for the target"
    busiest_tpm: float | None = None
    busiest_rpm: float | None = None

    @property
    def measured(self) -> bool:
        """Whether the numbers were measured from real traffic (it has a busiest minute)."""
        return self.busiest_tpm is not None


@dataclass(frozen=True)
class GrowthStep:
    """Projected users at a later date and the TPM/RPM they need (``required_quota``)."""

    label: str
    users: float
    tpm: int
    rpm: int | None


@dataclass(frozen=True)
class FigureImage:
    """A figure embedded in the report: ``name``, ``caption`` and the PNG as base64."""

    name: str
    caption: str
    png_base64: str


@dataclass(frozen=True)
class QuotaRequestReport:
    """The quota-increase justification for one model in one Region (``build_report`` makes it).

    Sections follow what AWS asks for a Bedrock quota increase; ``plan`` and ``request`` are the
    planner's own ``to_dict()`` output (every number the report quotes comes from them), and
    ``formulas`` their arithmetic. ``evidence`` holds summary rows per prompt size and level.
    """

    title: str
    generated_at: str
    use_case: str
    account_id: str | None
    organization: str | None
    contact: str | None
    model_id: str
    region: str
    inference_profile_id: str | None
    scope: str
    current_quotas: tuple[CurrentQuota, ...]
    target_users: float
    objective: str
    """The latency objective every capacity in the report is stated under, with its source
    (``capacity.Objective.describe``)."""
    headroom: float
    headroom_delivered: float
    """Users the requested quota serves over the target, minus one (``CapacityAnswer``)."""
    headroom_text: str
    """That headroom in words, and why it differs from ``headroom`` when it does."""
    workload: dict[str, Any]
    traffic: Traffic
    growth: tuple[GrowthStep, ...]
    monitoring: str
    historical_usage: str | None
    users_today: float
    binding_today: str
    users_requested: float
    binding_requested: str
    feasible: bool
    infeasible_reason: str | None
    latency: dict[str, Any] | None
    measured_range: str
    evidence_context: str
    """What the evidence was measured against and under which quota (e.g. the built-in
    emulator without a quota), so throughput above today's quota is explained."""
    evidence_columns: tuple[str, ...]
    evidence: tuple[dict[str, Any], ...]
    throttles: tuple[dict[str, Any], ...]
    figures: tuple[FigureImage, ...]
    formulas: dict[str, str]
    notes: tuple[str, ...]
    asks: tuple[Ask, ...]
    plan: dict[str, Any]
    request: dict[str, Any]
    predictor: dict[str, Any] | None = None
    """Where the latency curve came from (``capacity.PredictorInfo.to_dict``): a fitted model
    or a calibrated twin, its details and its extrapolation notes at the target; None without
    a model (and in reports written before it was recorded)."""
    replay: dict[str, Any] | None = None
    """With real traffic (``build_report(traffic=...)``): the replay sizing the TPM asked —
    the TPM, rule and throttle target, what today's quota and the requested one throttle, the
    users each carries, the other rule's TPM, the planner's closed-form TPM beside it and why
    they differ, the max_tokens policy's saving; None when the planner sized the request."""
    option: dict[str, Any] | None = None
    """The option chosen (``build_report(comparison=..., option=...)``, ``llmcap report
    --option``): what it buys, its cost, why against the others of the same comparison
    (``capacity.compare``) and their table; None when none was chosen."""

    def to_dict(self) -> dict[str, Any]:
        """The versioned, JSON-ready document."""
        out: dict[str, Any] = {"format": FORMAT, "version": VERSION}
        out.update(plain(dataclasses.asdict(self)))
        return out

    def to_json(self, *, indent: int | None = 2) -> str:
        """``to_dict`` as strict JSON text."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, ensure_ascii=False)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> QuotaRequestReport:
        """The report of a ``to_dict`` document (raises ``ValueError`` on another format)."""
        if doc.get("format") != FORMAT:
            raise ReportError(f"not a {FORMAT} document (format={doc.get('format')!r})")
        if doc.get("version") not in READS:
            raise ReportError(f"unsupported report version {doc.get('version')!r}")
        d = {k: v for k, v in doc.items() if k not in ("format", "version")}
        d.setdefault("predictor", None)  # reports written before it was recorded
        d.setdefault("replay", None)  # version 2
        d.setdefault("option", None)  # versions 2 and 3
        names = {f.name for f in dataclasses.fields(cls)}
        if set(d) != names:
            missing, extra = sorted(names - set(d)), sorted(set(d) - names)
            raise ReportError(f"report fields differ: missing {missing}, unexpected {extra}")
        d["current_quotas"] = tuple(CurrentQuota(**q) for q in d["current_quotas"])
        d["traffic"] = Traffic(**d["traffic"])
        d["growth"] = tuple(GrowthStep(**g) for g in d["growth"])
        d["figures"] = tuple(FigureImage(**f) for f in d["figures"])
        d["asks"] = tuple(Ask(**a) for a in d["asks"])
        d["evidence_columns"] = tuple(d["evidence_columns"])
        d["evidence"] = tuple(d["evidence"])
        d["throttles"] = tuple(d["throttles"])
        d["notes"] = tuple(d["notes"])
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> QuotaRequestReport:
        """The report of ``to_json`` text."""
        return cls.from_dict(json.loads(text))

    def ask(self, kind: str) -> Ask | None:
        """The ask for quota ``kind`` (tpm, rpm, tpd), if the report raises it."""
        return next((a for a in self.asks if a.kind == kind), None)

"""Applied Bedrock quotas of the account (Service Quotas), matched to a model id or profile.

``read_quotas`` pages through ``ListServiceQuotas`` and ``ListAWSDefaultServiceQuotas`` (for the
defaults). ``read_model_quotas`` keeps the tokens-per-minute, requests-per-minute and
tokens-per-day quotas of one model in the scope its id selects — on-demand for a base id
(``meta.llama3-3-70b-instruct-v1:0``), cross-Region for a geo profile (``us.``, ``eu.``,
``apac.``, …), global for ``global.`` — and lists the open increase requests of each
(``ListRequestedServiceQuotaChangeHistoryByQuota``). Quotas are matched by name, so codes come
from the account; a quota the shipped model table lists but the account does not return is shown
from the table, marked as such.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from account.aws import Connection
from account.errors import UnknownModel
from capacity.serving import ModelTable, base_model_id, is_profile_id, load_model_table

SERVICE_CODE = "bedrock"
OPEN_STATUSES = ("PENDING", "CASE_OPENED")
QuotaScope = Literal["on-demand", "cross-region", "global", "any", "other"]
QuotaKind = Literal["tpm", "rpm", "tpd", "other"]


@dataclass(frozen=True)
class OpenRequest:
    """An increase request that AWS has not decided yet."""

    request_id: str
    status: str
    desired_value: float
    created: str


@dataclass(frozen=True)
class AppliedQuota:
    """One quota: ``value`` applied to the account, the AWS ``default``, whether it is
    ``adjustable``; ``kind`` and ``scope`` read from its name; ``source`` ``"account"`` (read
    live) or ``"model table"`` (shipped facts, when the account does not list it)."""

    code: str
    name: str
    value: float | None
    default: float | None
    adjustable: bool | None
    kind: QuotaKind
    scope: QuotaScope
    source: str = "account"
    open_requests: tuple[OpenRequest, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "code": self.code, "name": self.name, "value": self.value, "default": self.default,
            "adjustable": self.adjustable, "kind": self.kind, "scope": self.scope,
            "source": self.source,
            "open_requests": [r.__dict__ for r in self.open_requests],
        }  # fmt: skip


@dataclass(frozen=True)
class ModelQuotas:
    """The quotas that govern one model id in one Region."""

    model_id: str
    region: str
    scope: QuotaScope
    display_name: str
    quotas: tuple[AppliedQuota, ...]
    notes: tuple[str, ...] = field(default=())

    def value(self, kind: QuotaKind) -> float | None:
        """The applied value of the ``kind`` quota (tpm, rpm, tpd), None when there is none."""
        for q in self.quotas:
            if q.kind == kind and q.value is not None:
                return q.value
        return None

    def code(self, kind: QuotaKind) -> str | None:
        """The quota code of ``kind``, as the account names it (table code as a fallback)."""
        for q in self.quotas:
            if q.kind == kind:
                return q.code
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "model_id": self.model_id, "region": self.region, "scope": self.scope,
            "display_name": self.display_name, "quotas": [q.to_dict() for q in self.quotas],
            "notes": list(self.notes),
        }  # fmt: skip


def classify(name: str) -> tuple[QuotaKind, QuotaScope]:
    """Kind and scope of a Bedrock quota from its name (``Cross-region model inference tokens
    per minute for …`` → tpm, cross-region)."""
    low = name.lower()
    kind: QuotaKind = "other"
    if "tokens per minute" in low:
        kind = "tpm"
    elif "requests per minute" in low:
        kind = "rpm"
    elif "tokens per day" in low:
        kind = "tpd"
    scope: QuotaScope = "other"
    if low.startswith("global cross-region"):
        scope = "global"
    elif low.startswith("cross-region"):
        scope = "cross-region"
    elif low.startswith("on-demand"):
        scope = "on-demand"
    elif low.startswith("model invocation max tokens per day"):
        scope = "any"
    return kind, scope


def model_part(name: str) -> str:
    """The model named in a quota name, normalised: ``… for Anthropic Claude 3.7 Sonnet V1
    (doubled for cross-region calls)`` → ``anthropic claude 3.7 sonnet``."""
    _, sep, tail = name.partition(" for ")
    if not sep:
        return ""
    tail = re.sub(r"\s*\(.*\)\s*$", "", tail)
    tail = re.sub(r"\s+v\d+$", "", tail.strip(), flags=re.IGNORECASE)
    return " ".join(tail.lower().split())


def _tokens(text: str) -> tuple[str, ...]:
    """Lower-case words and numbers of ``text``, split at letter/digit boundaries."""
    return tuple(re.findall(r"[a-z]+|\d+", text.lower()))


def id_tokens(model_id: str) -> tuple[str, ...]:
    """The model named by an id, as tokens: ``anthropic.claude-3-5-haiku-20241022-v1:0`` →
    ``('claude', '3', '5', 'haiku')`` (vendor, date and version dropped)."""
    base = base_model_id(model_id)
    _, _, rest = base.partition(".")
    rest = re.sub(r"(-\d{8})?(-v\d+(:\d+)?)?(:\d+)?$", "", rest or base)
    return _tokens(rest)


def name_matches_id(part: str, model_id: str) -> bool:
    """Whether a quota's model part (``anthropic claude 3.5 haiku``) names ``model_id``: the same
    tokens once the vendor word is dropped."""
    tokens = _tokens(part)
    want = id_tokens(model_id)
    return bool(want) and (tokens == want or tokens[1:] == want)


def scope_of(model_id: str) -> QuotaScope:
    """The quota scope an id is served under: global, cross-region (geo profile) or on-demand."""
    if model_id.startswith("global."):
        return "global"
    return "cross-region" if is_profile_id(model_id) else "on-demand"


def _paginate(conn: Connection, op: str, action: str, key: str, **kw: Any) -> list[dict[str, Any]]:
    def run(client: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for page in client.get_paginator(op).paginate(**kw):
            rows.extend(page.get(key, []))
        return rows

    rows: list[dict[str, Any]] = conn.call("service-quotas", action, run)
    return rows


def read_quotas(conn: Connection) -> list[AppliedQuota]:
    """Every Bedrock quota applied to the account in the connection's Region, with defaults."""
    applied = _paginate(
        conn, "list_service_quotas", "servicequotas:ListServiceQuotas", "Quotas",
        ServiceCode=SERVICE_CODE,
    )  # fmt: skip
    defaults = _paginate(
        conn, "list_aws_default_service_quotas", "servicequotas:ListAWSDefaultServiceQuotas",
        "Quotas", ServiceCode=SERVICE_CODE,
    )  # fmt: skip
    default_by_code = {d["QuotaCode"]: d.get("Value") for d in defaults}
    out = []
    seen = set()
    for q in applied + defaults:  # a quota listed only among the defaults has its default
        if q["QuotaCode"] in seen:
            continue
        seen.add(q["QuotaCode"])
        kind, scope = classify(q["QuotaName"])
        out.append(
            AppliedQuota(
                code=q["QuotaCode"],
                name=q["QuotaName"],
                value=q.get("Value"),
                default=default_by_code.get(q["QuotaCode"]),
                adjustable=q.get("Adjustable"),
                kind=kind,
                scope=scope,
            )
        )
    return sorted(out, key=lambda q: q.name)


def open_requests(conn: Connection, code: str) -> tuple[OpenRequest, ...]:
    """Increase requests for ``code`` that are still PENDING or CASE_OPENED."""
    rows = _paginate(
        conn, "list_requested_service_quota_change_history_by_quota",
        "servicequotas:ListRequestedServiceQuotaChangeHistoryByQuota", "RequestedQuotas",
        ServiceCode=SERVICE_CODE, QuotaCode=code,
    )  # fmt: skip
    return tuple(
        OpenRequest(r["Id"], r["Status"], float(r["DesiredValue"]), _iso(r.get("Created")))
        for r in rows
        if r.get("Status") in OPEN_STATUSES
    )


def _iso(value: object) -> str:
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else str(value or "")


def match_model(
    quotas: list[AppliedQuota], model_id: str, table: ModelTable | None = None
) -> tuple[str, QuotaScope, list[AppliedQuota]]:
    """The display name, scope and quotas (tpm, rpm, tpd of that scope) of ``model_id``: live
    quotas matched by the model named in their name, plus the table's quotas the account does
    not list. Raises ``UnknownModel`` when neither knows the model."""
    table = table or load_model_table()
    scope = scope_of(model_id)
    info = table.model(model_id)
    names = set()
    if info is not None:
        names.add(model_part(f"x for {info.name}"))
        names.update(model_part(q.name) for q in info.quotas)
    if not names:
        guess = [
            q for q in quotas
            if q.kind != "other" and q.scope in (scope, "any")
            and name_matches_id(model_part(q.name), model_id)
        ]  # fmt: skip
        if guess:
            order = {"tpm": 0, "rpm": 1, "tpd": 2, "other": 3}
            display = guess[0].name.partition(" for ")[2]
            return display, scope, sorted(guess, key=lambda q: (order[q.kind], q.name))
        raise UnknownModel(
            f"model id {model_id!r} is not in the shipped model table, so its quotas cannot be "
            "named — check the id (`aws bedrock list-foundation-models`) or use `llmcap quotas "
            "--region R` without --model-id to list every quota"
        )
    wanted = (scope, "any")
    hits = [
        q for q in quotas if q.kind != "other" and q.scope in wanted and model_part(q.name) in names
    ]
    assert info is not None
    table_scope = "cross-region" if scope == "global" else scope
    live_names = {q.name for q in hits}
    if scope != "global":
        for tq in info.quotas:
            if tq.scope == table_scope and tq.name not in live_names:
                kind, qscope = classify(tq.name)
                if not any(h.kind == kind for h in hits):
                    hits.append(
                        AppliedQuota(
                            tq.code,
                            tq.name,
                            None,
                            tq.default,
                            tq.adjustable,
                            kind,
                            qscope,
                            source="model table",
                        )
                    )
    order = {"tpm": 0, "rpm": 1, "tpd": 2, "other": 3}
    return info.name, scope, sorted(hits, key=lambda q: (order[q.kind], q.name))


def read_model_quotas(
    conn: Connection, model_id: str, *, with_requests: bool = True
) -> ModelQuotas:
    """The quotas governing ``model_id`` in the connection's Region, with open requests."""
    display, scope, hits = match_model(read_quotas(conn), model_id)
    notes = []
    if with_requests:
        hits = [
            q if q.source != "account" else _with_requests(q, open_requests(conn, q.code))
            for q in hits
        ]
    if not any(q.source == "account" for q in hits):
        notes.append(
            f"Service Quotas lists no {scope} quota for {display} in {conn.region}: the model may "
            "not be offered there in that scope; values shown are the shipped table's defaults"
        )
    if scope == "cross-region":
        notes.append("geo profile: cross-Region quotas apply, separate from on-demand ones")
    if scope == "global":
        notes.append("global profile: the global cross-Region quotas apply")
    if any(q.kind == "rpm" for q in hits):
        notes.append("Bedrock no longer enforces RPM on bedrock-runtime for many models (2026)")
    return ModelQuotas(model_id, conn.region, scope, display, tuple(hits), tuple(notes))


def _with_requests(q: AppliedQuota, reqs: tuple[OpenRequest, ...]) -> AppliedQuota:
    return AppliedQuota(
        q.code, q.name, q.value, q.default, q.adjustable, q.kind, q.scope, q.source, reqs
    )

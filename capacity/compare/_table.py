"""The comparison's data: each option (``BuyOption``) with what to request, its monthly cost,
expected latency, replayed throttle share and what is assumed; the table (``Comparison``) and
why one option against the others. Plain, JSON-ready values: ``to_dict``/``from_dict``
round-trip, also through ``json``."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from capacity.compare._given import CompareError

__all__ = ["FORMAT", "LINE_LABELS", "BuyLine", "BuyOption", "Comparison"]

FORMAT = "llmcap.buy-comparison"
VERSION = 1

LINE_LABELS = {
    "tpm": "TPM",
    "rpm": "RPM",
    "tpd": "TPD",
    "input_tpm": "input TPM",
    "output_tpm": "output TPM",
    "reserved_input_tpm": "Reserved input TPM",
    "reserved_output_tpm": "Reserved output TPM",
    "model_units": "model units",
    "batch_share": "batch share",
}
"""How each line's kind reads."""


@dataclass(frozen=True)
class BuyLine:
    """One thing to request: ``kind`` (a ``LINE_LABELS`` key), its ``value``, the Service
    Quotas ``code`` and ``name`` where known, and ``via`` (where it is requested)."""

    kind: str
    value: float
    code: str | None = None
    name: str | None = None
    via: str = "Service Quotas"

    def words(self) -> str:
        """``TPM 1,722,941 (L-0E7AA8B7)``, ``batch share 30%``."""
        value = f"{self.value:.0%}" if self.kind == "batch_share" else f"{self.value:,.0f}"
        return f"{LINE_LABELS[self.kind]} {value}" + (f" ({self.code})" if self.code else "")


@dataclass(frozen=True)
class BuyOption:
    """One way to buy the capacity: ``key`` (e.g. ``reserved-3m``) and ``name``; ``lines`` to
    request; ``monthly_usd`` (None where a price is not published and not given) with
    ``cost_words``; the expected ``latency_s`` (mean response time) and ``ttft_p95_s`` with
    ``latency_words``; ``throttled_share`` (and Reserved capacity's ``overflow_share``)
    replayed through the quota ledger, with ``replay_words`` (None where nothing is replayed,
    said why); ``assumptions``, every number not computed here with its source; ``listed``:
    whether the model table lists the model for it (None: it does not say); ``notes``; and
    ``needs``, what the user must give for it to be complete."""

    key: str
    name: str
    lines: tuple[BuyLine, ...]
    monthly_usd: float | None
    cost_words: str
    latency_s: float | None
    ttft_p95_s: float | None
    latency_words: str
    throttled_share: float | None
    overflow_share: float | None
    replay_words: str
    assumptions: tuple[str, ...]
    listed: bool | None = None
    notes: tuple[str, ...] = ()
    needs: str | None = None
    """What the user must give for the option to be sized or priced (None: nothing)."""

    def request_words(self) -> str:
        """The lines in one phrase."""
        text = "; ".join(line.words() for line in self.lines)
        return text or (f"n/a: needs {self.needs}" if self.needs else "nothing to request")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        out = dataclasses.asdict(self)
        out["lines"] = [dataclasses.asdict(line) for line in self.lines]
        out["assumptions"], out["notes"] = list(self.assumptions), list(self.notes)
        return out

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> BuyOption:
        """The option of a ``to_dict`` document."""
        d = dict(doc)
        d["lines"] = tuple(BuyLine(**line) for line in d["lines"])
        d["assumptions"], d["notes"] = tuple(d["assumptions"]), tuple(d["notes"])
        return cls(**d)


def _usd(x: float) -> str:
    return f"${x:,.0f}/month"


@dataclass(frozen=True)
class Comparison:
    """The options for one load (``source``: ``"workload"`` or ``"traffic"``) of ``model_id``
    in ``region`` at ``target_users`` (None: the traffic as given), under ``objective``; the
    ``demand`` replayed, the quota ``rule``, the on-demand ``price`` used, the figures the
    user ``given``, the ``baseline`` option (on-demand Standard on today's quota scope) and
    ``notes``."""

    source: str
    model_id: str
    region: str
    target_users: float | None
    objective: str
    demand: str
    rule: str
    price: str
    given: dict[str, Any]
    baseline: str
    options: tuple[BuyOption, ...]
    notes: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        """The options' keys, in table order."""
        return tuple(o.key for o in self.options)

    def option(self, key: str) -> BuyOption:
        """The option ``key`` (``CompareError`` naming the keys there are)."""
        for o in self.options:
            if o.key == key:
                return o
        raise CompareError(f"no option {key!r}: choose one of {', '.join(self.keys)}")

    def why(self, key: str) -> tuple[str, ...]:
        """Why ``key`` against the others of this comparison: its cost beside the priced ones
        and the baseline, its replayed throttle (and overflow) share, what could not be
        priced, and whether the model table lists the model for it."""
        o, base = self.option(key), self.option(self.baseline)
        out = [f"It buys: {o.request_words()}."]
        priced = sorted(
            (x for x in self.options if x.monthly_usd is not None),
            key=lambda x: x.monthly_usd or 0.0,
        )
        if o.monthly_usd is None:
            out.append(f"Its cost is unknown: {o.cost_words}.")
        elif priced:
            cheaper = [x for x in priced if (x.monthly_usd or 0.0) < o.monthly_usd - 0.5]
            tied = [x.name for x in priced if x.key != o.key and abs((x.monthly_usd or 0.0)
                    - o.monthly_usd) <= 0.5]  # fmt: skip
            text = f"Cost {_usd(o.monthly_usd)}, "
            if not cheaper:
                text += f"the cheapest of {len(priced)} priced options"
            else:
                best = cheaper[0]
                text += (
                    f"{len(cheaper) + 1} of {len(priced)} priced options "
                    f"({_usd(o.monthly_usd - (best.monthly_usd or 0.0))} more than the cheapest, "
                    f"{best.name})"
                )
            if tied:
                text += f", the same as {', '.join(tied)}"
            if base.key != o.key and base.monthly_usd is not None:
                diff = o.monthly_usd - base.monthly_usd
                text += f"; {'+' if diff >= 0 else '−'}{_usd(abs(diff))} against {base.name}"
            out.append(text + ".")
        if o.throttled_share is not None:
            text = f"Replayed: {100 * o.throttled_share:.2f} % of requests throttled"
            if o.overflow_share is not None:
                text += f", {100 * o.overflow_share:.2f} % overflowed to the on-demand quota"
            if base.key != o.key and base.throttled_share is not None:
                text += f" ({base.name}: {100 * base.throttled_share:.2f} % throttled)"
            out.append(text + ".")
        else:
            out.append(f"Not replayed: {o.replay_words}.")
        out.append(f"Latency: {o.latency_words}.")
        unpriced = [x.name for x in self.options if x.monthly_usd is None and x.key != o.key]
        if unpriced:
            out.append(
                "Not priced, for want of a published or given figure: " + ", ".join(unpriced) + "."
            )
        if o.listed is False:
            out.append(f"The model table does not list {self.model_id} for this option.")
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        """The versioned, JSON-ready document."""
        out: dict[str, Any] = {"format": FORMAT, "version": VERSION}
        for f in dataclasses.fields(self):
            out[f.name] = getattr(self, f.name)
        out["options"] = [o.to_dict() for o in self.options]
        out["notes"] = list(self.notes)
        return out

    def to_json(self, *, indent: int | None = 2) -> str:
        """``to_dict`` as strict JSON text."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, ensure_ascii=False)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Comparison:
        """The comparison of a ``to_dict`` document (``CompareError`` for another format)."""
        if doc.get("format") != FORMAT or doc.get("version") != VERSION:
            raise CompareError(
                f"not a {FORMAT} version {VERSION} document (format={doc.get('format')!r}, "
                f"version={doc.get('version')!r})"
            )
        d = {k: v for k, v in doc.items() if k not in ("format", "version")}
        d["options"] = tuple(BuyOption.from_dict(o) for o in d["options"])
        d["notes"] = tuple(d["notes"])
        return cls(**d)

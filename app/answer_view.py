"""What the What-if and Justification pages show of an answer, alike on both: users today,
the TPM to request, users at the requested quota (each with what limits it), the headroom
delivered, the objective, and where the inputs differ from the defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from app import shared
from app.controls import Inputs
from capacity.planning import CapacityAnswer, count


@dataclass(frozen=True)
class AnswerView:
    """What a page shows of an answer: users today, the TPM to request, users at the
    requested quota, the headroom delivered and the objective — from ``capacity.answer``
    (What-if) or from the report built on it (Justification), so both pages read alike."""

    users_today: float
    limited_today: str
    target_users: float
    tpm_today: float
    tpm: int
    users_at_request: float
    limited_at_request: str
    headroom_delivered: float
    headroom_text: str
    objective: str
    asks: tuple[tuple[str, float | None, int], ...]
    """(kind, today's value or None, the value to request) for each quota to raise."""
    reason: str | None = None
    """Why the objective cannot hold at the target (None when it can)."""
    sized_by: str | None = None
    """How the TPM was sized when not by the planner (a report from real traffic: replayed),
    with the planner's closed form beside it; None for the planner's answer."""

    @classmethod
    def of_answer(cls, a: CapacityAnswer) -> AnswerView:
        """The view of a ``CapacityAnswer`` with a target."""
        r, then = a.request, a.requested
        assert r is not None and then is not None and a.target_users is not None
        asks = []
        for line in a.asks:
            now = getattr(a.quota, line.kind)
            if now is None or line.value > float(now):
                asks.append((line.kind, None if now is None else float(now), int(line.value)))
        return cls(
            a.plan.users, a.limited_by_today, a.target_users, a.quota.runtime_tpm, r.runtime_tpm,
            then.users, then.binding_words, float(a.headroom_delivered or 0.0),
            a.headroom_words(), a.objective.describe(), tuple(asks),
            None if r.feasible else r.reason,
        )  # fmt: skip

    @classmethod
    def of_report(cls, rep: Any) -> AnswerView:
        """The view of a ``capacity.report.QuotaRequestReport``."""
        today = next(q.value for q in rep.current_quotas if q.kind == "tpm")
        d = rep.replay
        sized_by = (
            None
            if d is None
            else f"TPM sized by replaying the target's traffic ({d['source']}) through the quota "
            f"ledger (rule '{d['rule']}'): the smallest that throttles at most "
            f"{100 * d['throttle_target']:g} % of its requests. The planner's closed form for "
            f"the measured workload asks {d['closed_form_tpm']:,} TPM: {d['comparison']}."
        )
        return cls(
            rep.users_today, rep.binding_today, rep.target_users, float(today),
            int(rep.request["tpm"]), rep.users_requested, rep.binding_requested,
            rep.headroom_delivered, rep.headroom_text, rep.objective,
            tuple((a.kind, a.current, int(a.desired)) for a in rep.asks),
            None if rep.feasible else rep.infeasible_reason, sized_by,
        )  # fmt: skip


def show_answer(view: AnswerView) -> None:
    """The answer's figures, each with what limits it, and the objective they hold under."""
    c = st.columns(4)
    c[0].metric("Users today", count(view.users_today))
    c[0].caption(f"limited by {view.limited_today}")
    c[1].metric(f"TPM to request for {count(view.target_users)} users", f"{view.tpm:,}")
    c[1].caption(
        f"today {view.tpm_today:,.0f}"
        if view.tpm > view.tpm_today
        else f"today's {view.tpm_today:,.0f} already covers it"
    )
    c[2].metric("Users at the requested quota", count(view.users_at_request))
    c[2].caption(f"limited by {view.limited_at_request}")
    c[3].metric("Headroom delivered", f"{view.headroom_delivered:.0%}")
    c[3].caption(view.headroom_text)
    asks = " and ".join(
        f"{kind.upper()} {'none' if now is None else f'{now:,.0f}'} → {value:,}"
        for kind, now, value in view.asks
    )
    st.markdown(f"**Quotas to request:** {asks or 'none: today’s quota covers the target'}")
    st.markdown(f"**Latency objective:** {shared.escaped(view.objective)}")
    if view.sized_by:
        st.info(shared.escaped(view.sized_by))
    if view.reason:
        st.warning(f"The objective cannot hold at the target: {view.reason}")


def show_choices(inputs: Inputs) -> None:
    """Say in words where the inputs on screen differ from the defaults."""
    notes = inputs.choices_in_words()
    if notes:
        lines = "\n".join(f"- {shared.escaped(n)}" for n in notes)
        st.info(f"**Your choices, where they differ from the defaults:**\n{lines}")

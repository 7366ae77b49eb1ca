"""The inputs the What-if and Justification pages share, with one meaning on both (what they
show of the answer is ``app.answer_view``).

Defaults are the library's (``capacity.planning``), never the page's: the workload is the
largest measured prompt (``pick_prompt``) when records are loaded, else ``SEED_PROMPT``; an
empty RPM means not enforced; the latency objective is ``objective``'s default. Every input is
checked before anything is computed (``Checks``: the error shows under its field and nothing is
answered); where the user chose otherwise than the defaults, ``choices_in_words`` says so.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from app import shared
from capacity.errors import CapacityError
from capacity.planning import (
    DEFAULT_HEADROOM,
    DEFAULT_SLO_FACTOR,
    DEFAULT_THINK_TIME_S,
    MAX_TARGET_USERS,
    SEED_PROMPT,
    Objective,
    PromptSize,
    Quota,
    Workload,
    objective,
    pick_prompt,
)
from capacity.prediction import Predictor

T = TypeVar("T")

OBJECTIVES = {
    "default": f"The default: p95 TTFT <= {DEFAULT_SLO_FACTOR:g}× the unloaded value",
    "own": "My own target: the p95 TTFT below",
    "none": "None: users limited by the quota and the endpoint's peak throughput only",
}
"""The latency objective's choices (keys) and their labels, the same on every page."""


class Checks:
    """Runs each input's check; a failed one (a ``CapacityError``) shows its message under the
    field when ``show`` and is remembered, so nothing is computed from a bad input."""

    def __init__(self, show: bool = True) -> None:
        self.show = show
        self.errors: list[str] = []

    def __call__(self, box: Any, check: Callable[[], T]) -> T | None:
        """``check()``, or None after showing its error in ``box``."""
        try:
            return check()
        except CapacityError as exc:
            self.errors.append(str(exc))
            if self.show:
                box.error(str(exc))
            return None

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return not self.errors


def parse_count(
    text: str, what: str, *, required: bool = True, most: float | None = None
) -> float | None:
    """A positive count as people type it (``600,000``, ``600 000``, ``6e5``); empty is None
    unless ``required``. Raises ``InputError`` naming ``what``."""
    raw = (text or "").strip()
    if not raw:
        if required:
            raise shared.InputError(f"{what}: enter a number, e.g. 600,000")
        return None
    try:
        value = float(raw.replace(",", "").replace("_", "").replace(" ", ""))
    except ValueError:
        raise shared.InputError(f"{what} must be a number like 600,000, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise shared.InputError(f"{what} must be above 0, got {raw}")
    if most is not None and value > most:
        raise shared.InputError(f"{what} must be at most {most:,.0f}, got {raw}")
    return value


def check_number(
    value: float | None, what: str, *, least: float, above: bool = False, most: float | None = None
) -> float:
    """``value`` when it lies in [``least``, ``most``] (above ``least`` when ``above``)."""
    if value is None or not math.isfinite(value):
        raise shared.InputError(f"{what}: enter a number")
    if value < least or (above and value == least) or (most is not None and value > most):
        bound = f"above {least:g}" if above else f"at least {least:g}"
        upper = "" if most is None else f" and at most {most:g}"
        raise shared.InputError(f"{what} must be {bound}{upper}, got {value:g}")
    return float(value)


def check_region(text: str) -> str:
    """``text`` as a Region where Amazon Bedrock is offered (``account.check_region``, the one
    check ``llmcap`` makes), or an ``InputError`` with its message."""
    from account import WrongRegion, check_region as account_check

    region = (text or "").strip()
    if not region:
        raise shared.InputError("Region: enter the AWS Region of the quota, e.g. us-east-1")
    try:
        return account_check(region)
    except WrongRegion as exc:
        raise shared.InputError(str(exc)) from None


def size_words(size: PromptSize) -> str:
    """A prompt size in words: ``2,000 in / 350 out / max_tokens 350``."""
    w = size.workload()
    return f"{w.input_tokens:,.0f} in / {w.output_tokens:,.0f} out / max_tokens {w.max_tokens:,.0f}"


@dataclass(frozen=True)
class PromptChoice:
    """The prompt size the token fields start from, and the default one (the largest measured,
    or ``SEED_PROMPT`` without evidence)."""

    size: PromptSize
    default: PromptSize
    measured: bool


def prompt_choice(box: Any, records: pd.DataFrame | None, key: str) -> PromptChoice:
    """The measured prompt to plan for (a select box, the largest first) or, without records,
    the seed prompt. Outside any form: choosing another one refills the token fields."""
    from capacity.records import prompt_sizes

    sizes = prompt_sizes(records) if records is not None and len(records) else ()
    if not sizes:
        box.caption(
            f"No evidence loaded: the workload starts from the seed prompt "
            f"({size_words(SEED_PROMPT)})."
        )
        return PromptChoice(SEED_PROMPT, SEED_PROMPT, False)
    default = pick_prompt(sizes)
    ordered = sorted(sizes, key=lambda s: -s.input_tokens)  # the largest (the default) first
    label = box.selectbox(
        "Measured prompt size (the largest by default: it reserves and settles the most tokens)",
        [s.label for s in ordered],
        format_func=lambda x: f"{x}: {size_words(pick_prompt(sizes, x))}",
        key=f"{key}_prompt",
    )
    return PromptChoice(pick_prompt(sizes, label), default, True)


def token_fields(
    boxes: Sequence[Any], choice: PromptChoice, key: str
) -> tuple[float | None, float | None, float | None]:
    """Input tokens, output tokens and max_tokens per request, starting from ``choice.size``
    (the fields are keyed by it, so another prompt size refills them)."""
    start = choice.size.workload()
    tag = hashlib.sha256(repr(choice.size).encode()).hexdigest()[:10]
    fields = (
        ("Input tokens per request", start.input_tokens, "input"),
        ("Output tokens per request", start.output_tokens, "output"),
        ("max_tokens (reserved at admission)", start.max_tokens, "max"),
    )
    values = [
        box.number_input(label, value=float(v), step=1.0, format="%g", key=f"{key}_{n}_{tag}")
        for box, (label, v, n) in zip(boxes, fields, strict=True)
    ]
    return values[0], values[1], values[2]


def make_workload(
    tokens: tuple[float | None, float | None, float | None], think_s: float, peak: float
) -> Workload:
    """The workload of the token fields (``Workload`` checks that max_tokens covers the
    output)."""
    names = ("Input tokens per request", "Output tokens per request", "max_tokens")
    inp, out, top = (
        check_number(v, n, least=0, above=True) for v, n in zip(tokens, names, strict=True)
    )
    return Workload(inp, out, top, think_time_s=think_s, peak_to_average=peak)


def objective_field(
    box: Any, checks: Checks, model: Predictor | None, prompt_tokens: float | None, key: str
) -> tuple[Objective | None, str]:
    """The latency objective (``capacity.objective``) and the choice made: the default, the
    user's own p95 TTFT target, or none. None when the workload is not valid yet."""
    choice = box.radio(
        "Latency objective", list(OBJECTIVES), format_func=OBJECTIVES.__getitem__,
        key=f"{key}_objective",
    )  # fmt: skip
    own = box.number_input(
        "Your p95 TTFT target (s; used with 'My own target', needs a performance model)",
        value=None, step=0.1, placeholder="e.g. 1.5", key=f"{key}_own_ttft",
    )  # fmt: skip

    def decide() -> Objective:
        assert prompt_tokens is not None
        if choice == "own":
            target = check_number(own, "Your p95 TTFT target (s)", least=0, above=True)
            return objective(model, prompt_tokens, ttft_p95_s=target)
        if own is not None:
            raise shared.InputError(
                f"a p95 TTFT target of {own:g} s is typed but the objective chosen is "
                f"'{OBJECTIVES[choice]}': choose 'My own target' to use it, or clear it"
            )
        return objective(model, prompt_tokens, use_default=choice == "default")

    if prompt_tokens is None:
        return None, choice
    return checks(box, decide), choice


@dataclass(frozen=True)
class Inputs:
    """Everything a page asks ``capacity.answer`` with, checked."""

    quota: Quota
    workload: Workload
    target_users: float
    headroom: float
    goal: Objective
    objective_choice: str
    prompt: PromptChoice
    model: Predictor | None = field(default=None, compare=False)
    """The performance model (compared by the page's own key for it, not here)."""

    def choices_in_words(self) -> list[str]:
        """Where these inputs differ from the defaults, one sentence each."""
        notes = []
        p, w, start = self.prompt, self.workload, self.prompt.size.workload()
        if p.size != p.default:
            notes.append(
                f"Prompt size: '{p.size.label}' ({size_words(p.size)}), not the largest "
                f"measured, '{p.default.label}' ({size_words(p.default)}), which is the "
                "default (the cautious choice for a quota)."
            )
        mine = (w.input_tokens, w.output_tokens, w.max_tokens)
        if mine != (start.input_tokens, start.output_tokens, start.max_tokens):
            what = f"measured prompt '{p.size.label}'" if p.measured else "seed prompt"
            notes.append(
                f"Tokens per request: your own ({w.input_tokens:,g} in / {w.output_tokens:,g} "
                f"out / max_tokens {w.max_tokens:,g}), not the {what}'s ({size_words(p.size)})."
            )
        if self.objective_choice == "own":
            notes.append(
                f"Latency objective: your own target ({self.goal.describe()}), not the default "
                f"(p95 TTFT <= {DEFAULT_SLO_FACTOR:g}× the unloaded value)."
            )
        elif self.objective_choice == "none":
            notes.append(
                "Latency objective: none, as you chose; the default is p95 TTFT <= "
                f"{DEFAULT_SLO_FACTOR:g}× the unloaded value."
            )
        if self.quota.rpm is not None:
            notes.append(
                f"RPM quota: {self.quota.rpm:,.0f} given, so it is planned and asked as enforced "
                "(empty means not enforced, as Bedrock does for most models today)."
            )
        if not math.isclose(self.headroom, DEFAULT_HEADROOM):
            notes.append(
                f"Headroom: {self.headroom:.0%} asked, not the default {DEFAULT_HEADROOM:.0%}."
            )
        if w.think_time_s != DEFAULT_THINK_TIME_S:
            notes.append(
                f"Think time: {w.think_time_s:g} s, not the default {DEFAULT_THINK_TIME_S:g} s."
            )
        if w.peak_to_average != 1.0:
            notes.append(
                f"Peak-to-average: {w.peak_to_average:g}, not the default 1 (a flat minute)."
            )
        return notes


def model_choice(box: Any, key: str) -> tuple[Predictor | None, bool]:
    """The uploaded model (``model.json`` or ``twin.json``), else the Evidence page's fit when
    ticked; and whether the upload failed."""
    from capacity.fitting import CapacityModel

    uploaded, _, failed = shared.model_upload(box, shared.MODEL_UPLOAD_LABEL, f"{key}_model")
    fitted = st.session_state.get(shared.MODEL)
    use_evidence = box.checkbox(
        "Use the model fitted on the Evidence page (when nothing is uploaded)",
        value=True, disabled=fitted is None, key=f"{key}_use_evidence",
    )  # fmt: skip
    if uploaded is not None or failed:
        return uploaded, failed
    return (fitted if use_evidence and isinstance(fitted, CapacityModel) else None), False


def quota_fields(
    tpm_box: Any, rpm_box: Any, tpd_box: Any | None, checks: Checks, key: str
) -> tuple[float | None, float | None, float | None]:
    """Today's TPM quota (required), RPM and TPD (empty: not enforced / none); ``tpd_box``
    None leaves TPD out."""
    tpm_text = tpm_box.text_input("TPM quota (tokens per minute)", "600,000", key=f"{key}_tpm")
    tpm = checks(tpm_box, lambda: parse_count(tpm_text, "TPM quota"))
    rpm_text = rpm_box.text_input(
        "RPM quota (requests per minute; empty = not enforced)", "",
        placeholder="not enforced", key=f"{key}_rpm",
    )  # fmt: skip
    rpm = checks(rpm_box, lambda: parse_count(rpm_text, "RPM quota", required=False))
    tpd = None
    if tpd_box is not None:
        tpd_text = tpd_box.text_input(
            "TPD quota (tokens per day; empty = none)", "", placeholder="none", key=f"{key}_tpd"
        )
        tpd = checks(tpd_box, lambda: parse_count(tpd_text, "TPD quota", required=False))
    return tpm, rpm, tpd


def target_fields(
    target_box: Any, headroom_box: Any, checks: Checks, key: str
) -> tuple[float | None, float | None]:
    """The target users (at most ``MAX_TARGET_USERS``) and the headroom asked (a fraction)."""
    text = target_box.text_input("Target users", "2,000", key=f"{key}_target")
    target = checks(target_box, lambda: parse_count(text, "Target users", most=MAX_TARGET_USERS))
    pct = headroom_box.number_input(
        "Headroom asked (%)", value=round(100 * DEFAULT_HEADROOM), step=5, key=f"{key}_headroom"
    )
    headroom = checks(headroom_box, lambda: check_number(pct, "Headroom (%)", least=0, most=500))
    return target, None if headroom is None else headroom / 100


def workload_extras(
    think_box: Any, peak_box: Any, checks: Checks, key: str
) -> tuple[float | None, float | None]:
    """Think time between requests (s) and the peak-to-average ratio."""
    think = think_box.number_input(
        "Think time between requests (s)", value=DEFAULT_THINK_TIME_S, step=5.0, key=f"{key}_think"
    )
    peak = peak_box.number_input(
        "Peak-to-average (busiest minute / mean)", value=1.0, step=0.1, key=f"{key}_peak"
    )
    return (
        checks(think_box, lambda: check_number(think, "Think time (s)", least=0)),
        checks(peak_box, lambda: check_number(peak, "Peak-to-average", least=1)),
    )


@dataclass(frozen=True)
class Sidebar:
    """What `plan_sidebar` read: the checked inputs (None when any is wrong), the model id as
    typed and the Region (None unless asked for, or wrong)."""

    inputs: Inputs | None
    model_id: str
    region: str | None


def plan_sidebar(
    sb: Any, checks: Checks, key: str, *, quota_header: str = "Quota", region: bool = False
) -> Sidebar:
    """The What-if sidebar every planning page shares: the performance model, today's quota
    (and the Region when ``region``), the workload, the target and the latency objective."""
    sb.header("Performance model")
    model, failed = model_choice(sb, key)
    sb.header(quota_header)
    model_id = sb.text_input("Model id or inference profile id", shared.LLAMA, key=f"{key}_id")
    where = None
    if region:
        region_text = sb.text_input("Region (quota and prices)", "us-east-1", key=f"{key}_region")
        where = checks(sb, lambda: check_region(region_text))
    tpm, rpm, _ = quota_fields(sb, sb, None, checks, key)
    sb.header("Workload")
    choice = prompt_choice(sb, st.session_state.get(shared.RECORDS), key)
    tokens = token_fields((sb, sb, sb), choice, key)
    think, peak = workload_extras(sb, sb, checks, key)
    workload = None
    if think is not None and peak is not None:
        workload = checks(sb, lambda: make_workload(tokens, think, peak))
    sb.header("Target")
    target, headroom = target_fields(sb, sb, checks, key)
    sb.header("Latency objective")
    prompt_tokens = None if workload is None else workload.prompt_tokens
    goal, objective_choice = objective_field(sb, checks, model, prompt_tokens, key)
    if failed or not checks.ok or tpm is None or workload is None or goal is None:
        return Sidebar(None, model_id, where)
    assert target is not None and headroom is not None
    quota = checks(sb, lambda: Quota(tpm=tpm, rpm=rpm, model_id=model_id.strip() or None))
    if quota is None:
        return Sidebar(None, model_id, where)
    inputs = Inputs(quota, workload, target, headroom, goal, objective_choice, choice, model=model)
    return Sidebar(inputs, model_id, where)

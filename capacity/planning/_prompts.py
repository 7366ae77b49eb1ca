"""Which prompt size a plan is about, decided once: a measured size by label, else the largest.

The largest measured prompt is the cautious default for a quota: each request reserves and
settles the most tokens. Without any measurement, ``SEED_PROMPT`` (the seed blog's small prompt:
43 input tokens, 350 output, max_tokens 350) is what the pages start from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from capacity.planning._inputs import PlanInputError, Workload

__all__ = ["SEED_PROMPT", "PromptSize", "pick_prompt"]


@dataclass(frozen=True)
class PromptSize:
    """A measured request shape: mean ``input_tokens`` and ``output_tokens`` of the ok requests
    of ``label`` and the ``max_tokens`` they were sent with (the output when unknown)."""

    label: str
    input_tokens: float
    output_tokens: float
    max_tokens: float

    def workload(
        self, *, think_time_s: float | None = None, peak_to_average: float = 1.0
    ) -> Workload:
        """This shape as a ``Workload`` (``dataclasses.replace`` sets the other fields)."""
        top = max(self.max_tokens, self.output_tokens)
        return Workload(
            self.input_tokens, self.output_tokens, top,
            think_time_s=think_time_s, peak_to_average=peak_to_average,
        )  # fmt: skip


SEED_PROMPT = PromptSize("small", 43.0, 350.0, 350.0)


def pick_prompt(sizes: Sequence[PromptSize], label: str | None = None) -> PromptSize:
    """The size labelled ``label``, or the one with the most input tokens."""
    if not sizes:
        raise PlanInputError("no measured prompt size: the evidence has no successful request")
    if label is None:
        return max(sizes, key=lambda s: s.input_tokens)
    for size in sizes:
        if size.label == label:
            return size
    known = ", ".join(sorted(s.label for s in sizes))
    raise PlanInputError(f"prompt {label!r} was not measured: the evidence has {known}")

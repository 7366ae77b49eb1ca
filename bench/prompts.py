"""Prompt sets: the shipped ``small`` and ``large`` prompts, user files, and synthetic prompts.

A prompt spec is a comma-separated list of items, each one of:

- ``small`` / ``large``: the shipped prompts in ``data/prompts/`` (the seed blog's question, and
  an original ~6,000-token creative-writing brief);
- a path to a ``.txt`` file (the whole file is one prompt) or a ``.jsonl`` file (one prompt per
  line: ``{"prompt": "...", "max_tokens": 200}``; ``max_tokens`` is optional and overrides the
  sweep's value for that prompt; an optional ``"label"`` names the set);
- ``synthetic:N``: a prompt of N input tokens as the endpoint counts them (sized by probe
  requests, see ``size_synthetic``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "prompts"
SHIPPED = ("small", "large")
FILLER = (
    "The archive keeps every letter the old river town ever sent, sorted by season and by the "
    "hand that wrote it, so that a patient reader can follow a family across a hundred years. "
)


class PromptError(ValueError):
    """A prompt spec or file is invalid; the message names it (and the line) and the fix."""


@dataclass(frozen=True)
class Prompt:
    """One prompt text, with an optional per-prompt ``max_tokens``."""

    text: str
    max_tokens: int | None = None


@dataclass(frozen=True)
class PromptSet:
    """Prompts measured together under one label (a row group of the summary)."""

    label: str
    prompts: tuple[Prompt, ...]
    source: str
    synthetic_tokens: int | None = None


def load_prompt_sets(spec: str) -> list[PromptSet]:
    """Parse a prompt spec (see the module docstring) into prompt sets, in order."""
    items = [item.strip() for item in spec.split(",") if item.strip()]
    if not items:
        raise PromptError("--prompt is empty; use small, large, a file path or synthetic:N")
    sets = [_load_item(item) for item in items]
    labels = [s.label for s in sets]
    if len(set(labels)) != len(labels):
        raise PromptError(f"--prompt lists the same label twice ({', '.join(labels)})")
    return sets


def _load_item(item: str) -> PromptSet:
    if item in SHIPPED:
        path = DATA_DIR / f"{item}.txt"
        return PromptSet(item, (Prompt(path.read_text(encoding="utf-8").strip()),), str(path))
    if item.startswith("synthetic:"):
        raw = item.removeprefix("synthetic:")
        if not raw.isdigit() or int(raw) < 1:
            raise PromptError(f"{item!r}: write synthetic:N with N a positive token count")
        n = int(raw)
        return PromptSet(f"synthetic-{n}", (), "synthetic", synthetic_tokens=n)
    path = Path(item)
    if not path.is_file():
        raise PromptError(
            f"prompt {item!r} is neither small, large, synthetic:N nor an existing file"
        )
    if path.suffix == ".jsonl":
        return _load_jsonl(path)
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        raise PromptError(f"{path}: the prompt file is empty")
    return PromptSet(path.stem, (Prompt(text),), str(path))


def _load_jsonl(path: Path) -> PromptSet:
    prompts: list[Prompt] = []
    label = path.stem
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PromptError(f"{where}: invalid JSON ({exc.msg}); one object per line") from exc
        if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), str):
            raise PromptError(f'{where}: expected {{"prompt": "...", "max_tokens": N}}')
        if not obj["prompt"].strip():
            raise PromptError(f"{where}: the prompt is empty")
        max_tokens = obj.get("max_tokens")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise PromptError(f"{where}: max_tokens must be a positive integer")
        label = str(obj.get("label", label))
        prompts.append(Prompt(obj["prompt"], max_tokens))
    if not prompts:
        raise PromptError(f"{path}: no prompts in the file")
    return PromptSet(label, tuple(prompts), str(path))


def synthetic_text(words: int) -> str:
    """Deterministic filler prose of ``words`` words."""
    base = FILLER.split()
    return " ".join(base[i % len(base)] for i in range(words))


def size_synthetic(
    target_tokens: int, count_input_tokens: Callable[[str], int], max_rounds: int = 6
) -> Prompt:
    """A filler prompt that the endpoint counts as ``target_tokens`` input tokens.

    ``count_input_tokens`` asks the endpoint (a probe request's usage, or Bedrock CountTokens),
    so the template overhead and the real tokenizer are both accounted for. Two probes fix a
    linear model tokens = a + b·words; a few secant steps then land on the target.
    """
    lo_w, hi_w = 10, 400
    lo_t, hi_t = count_input_tokens(synthetic_text(lo_w)), count_input_tokens(synthetic_text(hi_w))
    if target_tokens <= lo_t:
        raise PromptError(
            f"synthetic:{target_tokens} is below the endpoint's minimum of about {lo_t} tokens "
            "for a prompt (its chat template); ask for more"
        )
    words = hi_w
    for _ in range(max_rounds):
        slope = (hi_t - lo_t) / (hi_w - lo_w)
        words = max(1, round(lo_w + (target_tokens - lo_t) / slope))
        got = count_input_tokens(synthetic_text(words))
        if got == target_tokens:
            break
        lo_w, lo_t, hi_w, hi_t = hi_w, hi_t, words, got
        if hi_w == lo_w:
            break
    return Prompt(synthetic_text(words))

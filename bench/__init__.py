"""bench: the I/O side of llmcap — providers, load strategies, sweeps and request records —
and the built-in emulator (``emulator``). ``bench`` never imports ``capacity``."""

from bench.config import SweepConfig, SweepError
from bench.prompts import Prompt, PromptError, PromptSet, load_prompt_sets
from bench.providers.base import Endpoint
from bench.records import RECORD_COLUMNS, RecordWriter, read_jsonl
from bench.sweep import SweepIncomplete, SweepInterrupted, run_sweep

__all__ = [
    "RECORD_COLUMNS",
    "Endpoint",
    "Prompt",
    "PromptError",
    "PromptSet",
    "RecordWriter",
    "SweepConfig",
    "SweepError",
    "SweepIncomplete",
    "SweepInterrupted",
    "load_prompt_sets",
    "read_jsonl",
    "run_sweep",
]

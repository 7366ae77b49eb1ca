"""Live view of a sweep: one table row per level with counts, in-flight and live medians."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from rich.console import Console
from rich.live import Live
from rich.table import Table


@dataclass
class LevelState:
    """Counters of the level being run (updated as each request finishes)."""

    label: str
    level: float
    total: int | None
    started_s: float = field(default_factory=time.monotonic)
    launched: int = 0
    finished: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_code: dict[str, int] = field(default_factory=dict)  # failures (not ok) by error code
    first_message: dict[str, str] = field(default_factory=dict)  # per code, the first message
    ttft_s: list[float] = field(default_factory=list)
    output_tokens: float = 0.0
    stop_reason: str | None = None

    def add(
        self,
        status: str,
        waited_s: float,
        output_tokens: float | None,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> None:
        """Count one finished request: its wait for the first token (shown live, not stored:
        the stored metrics are derived by ``capacity.records``), its output tokens, and when
        it failed, its error code and message."""
        self.finished += 1
        self.by_status[status] = self.by_status.get(status, 0) + 1
        if status != "ok":
            code = error_code or status
            self.by_code[code] = self.by_code.get(code, 0) + 1
            self.first_message.setdefault(code, error_message or "")
        if status == "ok":
            self.ttft_s.append(waited_s)
            self.output_tokens += output_tokens or 0.0

    def failure_rate(self) -> float:
        """Share of finished requests that were not ok (throttled, error, timeout)."""
        bad = sum(n for s, n in self.by_status.items() if s not in ("ok", "cancelled"))
        return bad / self.finished if self.finished else 0.0

    def failures_by_code(self, *, messages: bool = True, top: int = 3) -> str:
        """``ConnectError ×20: first message; ...``, most frequent first ('' when none)."""
        ranked = sorted(self.by_code.items(), key=lambda kv: -kv[1])
        parts = []
        for code, n in ranked[:top]:
            message = self.first_message.get(code, "") if messages else ""
            parts.append(f"{code} ×{n}" + (f": {message[:120]}" if message else ""))
        if len(ranked) > top:
            parts.append(f"{len(ranked) - top} more codes")
        return "; ".join(parts)


class SweepProgress:
    """A rich live table on stderr; plain lines when stderr is not a terminal."""

    def __init__(self, enabled: bool = True) -> None:
        console = Console(stderr=True)
        # Plain lines (not a terminal) should not wrap at the 80-column default.
        self.console = console if console.is_terminal else Console(stderr=True, width=200)
        self.enabled = enabled
        self.done: list[LevelState] = []
        self.current: LevelState | None = None
        self.inflight = 0
        self.stopping: str | None = None  # after a Ctrl-C: what is being finished
        self._live: Live | None = None

    def __enter__(self) -> SweepProgress:
        if self.enabled and self.console.is_terminal:
            self._live = Live(self._table(), console=self.console, refresh_per_second=4)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(None, None, None)
            self._live = None

    def start_level(self, state: LevelState) -> None:
        """A level begins."""
        self.current = state
        self.refresh()

    def end_level(self, state: LevelState) -> None:
        """A level ended; without a live display, print its line."""
        self.done.append(state)
        self.current = None
        if self.enabled and self._live is None:
            self.console.print(self._line(state), highlight=False)
        if state.stop_reason and self.enabled:
            self.console.print(f"[yellow]level {state.level:g} stopped early: {state.stop_reason}")
        self.refresh()

    def warn(self, message: str) -> None:
        """A warning about the level just measured (always shown, even with --quiet)."""
        self.console.print(
            f"warning: {message}", style="yellow", markup=False, highlight=False, soft_wrap=True
        )

    def finishing(self, n: int) -> None:
        """The countdown after the first Ctrl-C: ``n`` requests are still in flight."""
        self.stopping = f"finishing {n} requests in flight (Ctrl-C again cancels them now)"
        if self._live is None:  # always shown, even with --quiet: the user is waiting
            self.console.print(self.stopping, highlight=False)
        self.refresh()

    def refresh(self) -> None:
        """Redraw (the live display throttles itself to 4 frames/s)."""
        if self._live is not None:
            self._live.update(self._table())

    def _table(self) -> Table:
        table = Table(title="llmcap bench", title_justify="left", caption=self._caption())
        for name in ("prompt", "level", "done", "in flight", "ok", "throttled", "errors",
                     "p50 TTFT s", "out tok/s", "elapsed s", "failures by code"):  # fmt: skip
            table.add_column(name, justify="left" if name in ("prompt", "failures by code")
                             else "right")  # fmt: skip
        for state in [*self.done, *([self.current] if self.current else [])]:
            table.add_row(*self._cells(state, live=state is self.current))
        return table

    def _caption(self) -> str | None:
        """After a Ctrl-C, what is being finished; else the latest level's most frequent
        failure with its first message."""
        if self.stopping:
            return self.stopping
        for state in reversed([*self.done, *([self.current] if self.current else [])]):
            if state.by_code:
                return f"{state.label} level {state.level:g}: {state.failures_by_code(top=1)}"
        return None

    def _cells(self, s: LevelState, live: bool) -> list[str]:
        total = f"/{s.total}" if s.total else ""
        errors = sum(n for k, n in s.by_status.items() if k in ("error", "timeout"))
        elapsed = time.monotonic() - s.started_s
        return [
            s.label,
            f"{s.level:g}",
            f"{s.finished}{total}",
            str(self.inflight) if live else "-",
            str(s.by_status.get("ok", 0)),
            str(s.by_status.get("throttled", 0)),
            str(errors),
            f"{statistics.median(s.ttft_s):.3f}" if s.ttft_s else "-",
            f"{s.output_tokens / elapsed:.0f}" if s.output_tokens and elapsed > 0 else "-",
            f"{elapsed:.0f}",
            s.failures_by_code(messages=False) or "-",
        ]

    def _line(self, s: LevelState) -> str:
        c = self._cells(s, live=False)
        return (
            f"{c[0]} level {c[1]}: {c[2]} done, ok {c[4]}, throttled {c[5]}, errors {c[6]}, "
            f"p50 TTFT {c[7]} s, {c[8]} output tok/s ({c[9]} s)"
            + (f"; failures: {s.failures_by_code()}" if s.by_code else "")
        )

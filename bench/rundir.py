"""The run directory: ``run.json`` (metadata, never credentials), records, and resume state."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import platform
import shutil
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.config import SweepConfig
from bench.providers.base import Endpoint
from bench.records import CLIENT_STOPPED, SENT_JOURNALS, RawResult, clean, make_record, read_jsonl

TOOL_VERSION = "0.1.0"
RESUME_GAP_S = 1.0


def _level_key(label: str, level: float) -> str:
    return f"{label}@{level:g}"


class RunDir:
    """One run's directory and its bookkeeping."""

    def __init__(self, path: Path, meta: dict[str, Any], config: SweepConfig, start_pc: float):
        self.path = path
        self.meta = meta
        self.config = config
        self.start_pc = start_pc

    @property
    def run_id(self) -> str:
        """The run's id (also the directory name)."""
        return str(self.meta["run_id"])

    @classmethod
    def create(cls, config: SweepConfig) -> RunDir:
        """A new run directory under ``config.out``."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        run_id = config.run_id or f"{stamp}-{uuid.uuid4().hex[:6]}"
        path = config.out / run_id
        if path.exists():
            raise FileExistsError(f"run directory {path} exists; pass --resume {path} or a new id")
        path.mkdir(parents=True)
        meta = {
            "tool": "llmcap",
            "tool_version": TOOL_VERSION,
            "run_id": run_id,
            "started_at": dt.datetime.now(dt.UTC).isoformat(),
            "host": {
                "hostname": socket.gethostname(),
                "platform": platform.platform(),
                "python": sys.version.split()[0],
                "cpus": os.cpu_count(),
            },
            "config": config_to_dict(config),
            "completed_levels": [],
            "status": "running",
        }
        run = cls(path, meta, config, time.perf_counter())
        run.meta["perf_counter_origin_s"] = run.start_pc
        run.save()
        return run

    @classmethod
    def resume(cls, path: Path) -> RunDir:
        """Reopen an interrupted run: finished levels are kept, partial ones set aside."""
        config = read_config(path)
        meta = json.loads((path / "run.json").read_text(encoding="utf-8"))
        done = set(meta.get("completed_levels", []))
        records = path / "records.jsonl"
        _recover_unrecorded(path, config, str(meta["run_id"]))
        last_end = 0.0
        if records.is_file():
            frame = read_jsonl(records)
            keys = [
                _level_key(str(a), float(b))
                for a, b in zip(frame.prompt_label, frame.level, strict=True)
            ]
            keep = [k in done for k in keys]
            lines = [ln for ln in records.read_text(encoding="utf-8").splitlines() if ln]
            partial = [ln for ln, k in zip(lines, keep, strict=True) if not k]
            if partial:  # rows of unfinished levels: kept aside, never lost
                with (path / "records.partial.jsonl").open("a", encoding="utf-8") as fh:
                    fh.write("\n".join(partial) + "\n")
            kept = [ln for ln, k in zip(lines, keep, strict=True) if k]
            tmp = records.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(ln + "\n" for ln in kept), encoding="utf-8")
            os.replace(tmp, records)
            ends = frame.end_s.fillna(frame.start_s)
            last_end = float(ends.max()) if len(frame) else 0.0
        meta["status"] = "running"
        meta.setdefault("resumed_at", []).append(dt.datetime.now(dt.UTC).isoformat())
        # Offsets continue after the last recorded request, so times stay monotonic in the file.
        start_pc = time.perf_counter() - (last_end + RESUME_GAP_S)
        run = cls(path, meta, config, start_pc)
        # time.perf_counter() of offset 0 (CLOCK_MONOTONIC on Linux, so it lines up with a
        # local server's time.monotonic() truth log); changes when a run is resumed.
        run.meta["perf_counter_origin_s"] = start_pc
        run.save()
        return run

    def is_done(self, label: str, level: float) -> bool:
        """True when this (prompt set, level) finished in this or an earlier session."""
        return _level_key(label, level) in self.meta["completed_levels"]

    def mark_done(self, label: str, level: float, stop_reason: str | None) -> None:
        """Record a finished level (and why it stopped early, if it did)."""
        self.meta["completed_levels"].append(_level_key(label, level))
        if stop_reason:
            self.meta.setdefault("early_stops", {})[_level_key(label, level)] = stop_reason
        self.save()

    def finish(self, *, interrupted: bool, failed: str | None = None) -> None:
        """Mark the run complete, interrupted, or failed (``failed`` says why)."""
        self.meta["status"] = "failed" if failed else "interrupted" if interrupted else "complete"
        if failed:
            self.meta["failure"] = failed
        self.meta["ended_at"] = dt.datetime.now(dt.UTC).isoformat()
        self.save()

    def fail(self, reason: str, *, discard_if_empty: bool) -> None:
        """The sweep raised: remove this directory if it holds no records (and
        ``discard_if_empty``), else mark it failed with ``reason`` in run.json."""
        records = self.path / "records.jsonl"
        empty = not records.is_file() or records.stat().st_size == 0
        if discard_if_empty and empty:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        self.finish(interrupted=False, failed=reason)

    def save(self) -> None:
        """Write run.json atomically."""
        tmp = self.path / "run.json.tmp"
        tmp.write_text(json.dumps(self.meta, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.path / "run.json")


def _recover_unrecorded(path: Path, config: SweepConfig, run_id: str) -> int:
    """Give every request the killed process (or a dead worker process) sent but never
    recorded a row (status ``cancelled``, code ``ClientStopped``) from its journal line;
    returns how many."""
    journals = sorted(path.glob(SENT_JOURNALS))
    if not journals:
        return 0
    records = path / "records.jsonl"
    lines = records.read_text(encoding="utf-8").splitlines() if records.is_file() else []
    recorded = {row["request_id"] for row in _rows(lines)}
    code, message = CLIENT_STOPPED
    missing = []
    for journal in journals:
        for sent in _rows(journal.read_text(encoding="utf-8").splitlines()):
            if sent["request_id"] in recorded:
                continue
            recorded.add(sent["request_id"])
            raw = RawResult(
                sent["start_s"], status="cancelled", error_code=code, error_message=message
            )
            row = make_record(
                raw, 0.0, run_id=run_id, request_id=sent["request_id"],
                provider=config.endpoint.provider, model_id=config.endpoint.model_id,
                prompt_label=sent["prompt_label"], mode=config.mode, level=sent["level"],
                batch=sent["batch"], max_tokens=sent["max_tokens"],
                temperature=config.temperature, scheduled_s=_nan(sent["scheduled_s"]),
                worker=sent.get("worker", 0),
            )  # fmt: skip
            missing.append(json.dumps({k: clean(v) for k, v in row.items()}))
    if missing:
        with records.open("a", encoding="utf-8") as fh:
            fh.write("".join(f"{line}\n" for line in missing))
    for journal in journals:
        journal.unlink()
    return len(missing)


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _rows(lines: list[str]) -> list[dict[str, Any]]:
    """The JSON objects of ``lines``; a line cut by a kill (the last one) is skipped."""
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def read_config(path: Path) -> SweepConfig:
    """The configuration stored in a run directory's run.json."""
    meta_path = path / "run.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{path} is not a run directory (no run.json); check --resume")
    return config_from_dict(json.loads(meta_path.read_text(encoding="utf-8"))["config"])


def config_to_dict(config: SweepConfig) -> dict[str, Any]:
    """JSON form of a sweep configuration (no secrets live in it)."""
    raw = dataclasses.asdict(config)
    raw["out"] = str(config.out)
    raw["levels"] = list(config.levels)
    return raw


def config_from_dict(raw: dict[str, Any]) -> SweepConfig:
    """Inverse of ``config_to_dict``."""
    values = dict(raw)
    values["endpoint"] = Endpoint(**values["endpoint"])
    values["levels"] = tuple(values["levels"])
    values["out"] = Path(values["out"])
    return SweepConfig(**values)

"""The send journal: a batch's lines, written without one ``json.dumps`` per request, are the
JSON of its entries (what ``--resume`` reads back)."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import pytest

from bench.records import SentBatch, SentJournal, clean


@pytest.mark.parametrize("scheduled_s", [12.345678901, math.nan])
def test_batch_lines_are_the_entries_json(scheduled_s: float, tmp_path: Path) -> None:
    sent = SentBatch(
        prompt_label='large "quoted" \\ label', level=500.0, batch=3, scheduled_s=scheduled_s,
        start_s=12.3461234, worker=1,
        requests=tuple((uuid.uuid4().hex, n) for n in (20, 350, 1000)),
    )  # fmt: skip
    expected = [{k: clean(v) for k, v in e.items()} for e in sent.entries()]
    assert [json.loads(line) for line in sent.lines()] == expected
    journal = SentJournal(tmp_path / "records.sent.jsonl")
    journal.note_batch(sent)
    journal.flush()
    lines = (tmp_path / "records.sent.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == expected
    assert expected[0]["scheduled_s"] is None if math.isnan(scheduled_s) else True
    journal.close(delete=True)
    assert not (tmp_path / "records.sent.jsonl").exists()

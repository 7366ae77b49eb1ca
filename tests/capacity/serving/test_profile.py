"""Profiles: shipped ones load, bad ones are rejected with the field and the fix."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from capacity.serving import (
    DEFAULT_PROFILE,
    OutputLength,
    ProfileError,
    burndown_for,
    load_model_table,
    load_profile,
    profile_from_dict,
    shipped_profiles,
)


def test_shipped_profiles_load() -> None:
    assert {"fast", DEFAULT_PROFILE} <= set(shipped_profiles())
    for name in shipped_profiles():
        p = load_profile(name)
        assert p.name == name and p.models


def test_default_profile_serves_the_blog_model_with_burndown_one() -> None:
    p = load_profile(DEFAULT_PROFILE)
    spec = p.model("us.meta.llama3-3-70b-instruct-v1:0")
    assert spec is not None and spec.burndown == 1


def test_profile_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"name": "mine", "models": [{"model_id": "m"}]}))
    assert load_profile(path).default_model_id == "m"
    assert load_profile(str(path)).name == "mine"


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "name": "x",\n  "models": [,]\n}')
    with pytest.raises(ProfileError, match="line 3"):
        load_profile(path)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"models": [{"model_id": "m"}]}, "missing required key 'name'"),
        ({"name": "x"}, "'models' must list at least one"),
        ({"name": "x", "models": [{"model_id": "m"}], "serving": {"t_w_s": -1}}, "serving.t_w_s"),
        ({"name": "x", "models": [{"model_id": "m"}], "serving": {"bogus": 1}}, "bogus"),
        ({"name": "x", "models": [{"model_id": "m"}], "quotas": {"tpm": 0}}, "quotas.tpm"),
        ({"name": "x", "models": [{"model_id": "m"}], "faults": {"error_rate": {"404": 1}}}, "404"),
        ({"name": "x", "models": [{"model_id": "m"}], "faults": {"drop_rate": 2}}, "drop_rate"),
    ],
)
def test_invalid_fields_are_named(raw: dict[str, object], fragment: str) -> None:
    with pytest.raises(ProfileError, match=fragment):
        profile_from_dict(raw)


def test_missing_profile_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="does not exist"):
        load_profile(tmp_path / "nope.json")


def test_lognormal_output_length_has_the_asked_mean_and_respects_max_tokens() -> None:
    shape = OutputLength(kind="lognormal", mean_tokens=200, sigma=0.5)
    rng = random.Random(3)
    draws = [shape.draw(10_000, rng) for _ in range(20_000)]
    assert 190 < sum(draws) / len(draws) < 210
    assert max(shape.draw(50, rng) for _ in range(1000)) == 50
    assert OutputLength().draw(350, rng) == 350


def test_burndown_and_output_limits_come_from_the_one_model_table() -> None:
    # The emulator's settlement and the planner read the same file: Claude 3.7 burns 5.
    fast = load_profile("fast")
    claude = fast.model("us.anthropic.claude-3-7-sonnet-20250219-v1:0")
    assert claude is not None and claude.burndown == burndown_for(claude.model_id).value == 5
    info = load_model_table().model(claude.model_id)
    assert info is not None and claude.max_output_tokens == info.max_output_tokens


def test_a_profile_cannot_restate_burndown(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('{"name": "x", "models": [{"model_id": "m", "burndown": 3}]}')
    with pytest.raises(ProfileError, match="live in the model table"):
        load_profile(path)

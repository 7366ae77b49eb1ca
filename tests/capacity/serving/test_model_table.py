"""The one model table (capacity/data/bedrock_models.json): per model and endpoint the quotas,
their codes where published, the service tiers, and a source for each."""

from __future__ import annotations

import json
import re
from importlib import resources

from capacity.serving import load_model_table

CODE = re.compile(r"^L-[0-9A-F]{8}$")


def test_every_code_is_published_or_left_null_and_every_fact_has_a_source() -> None:
    raw = json.loads(
        resources.files("capacity").joinpath("data/bedrock_models.json").read_text("utf-8")
    )
    keys = set(raw["sources"])
    for m in raw["models"]:
        for q in m["quotas"] + m.get("mantle_quotas", []):
            assert q["code"] is None or CODE.match(q["code"]), q
            assert q["source"].split(" ")[0].split(";")[0] in keys, q
        assert set(m["endpoints"]) <= {"runtime", "mantle"} and "runtime" in m["endpoints"]
        assert "default" in m["service_tiers"]
        assert set(m["service_tiers"]) <= {"reserved", "priority", "default", "flex"}
        assert m["service_tiers_source"].split(" ")[0].split(";")[0] in keys
        if "mantle" in m["endpoints"]:
            assert {q["kind"] for q in m["mantle_quotas"]} == {"input_tpm", "output_tpm"}


def test_mantle_quotas_tiers_and_endpoints_by_model() -> None:
    table = load_model_table()
    gpt = table.mantle_quotas_for("us.openai.gpt-oss-120b-1:0")
    assert [q.kind for q in gpt] == ["input_tpm", "output_tpm"]
    assert gpt[0].name == "Bedrock Mantle input tokens per minute for gpt-oss-120b"
    assert all(q.code is None and q.default is None for q in gpt)  # not published: not invented
    assert "quotas-mantle.html" in gpt[0].source
    assert table.service_tiers_for("openai.gpt-oss-20b-1:0") == ("priority", "default", "flex")
    assert table.service_tiers_for("amazon.nova-pro-v1:0") == ("priority", "default", "flex")
    sonnet45 = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert table.service_tiers_for(sonnet45) == ("reserved", "default")
    assert table.burndown_for(sonnet45).value == 5  # the Claude 4 family's
    assert table.service_tiers_for("acme.unknown") == ("default",)
    assert table.mantle_quotas_for("meta.llama3-3-70b-instruct-v1:0") == ()
    info = table.model("anthropic.claude-sonnet-4-20250514-v1:0")
    assert info is not None and info.endpoints == ("runtime",)
    assert {q.kind for q in info.quotas} == {"tpm", "rpm", "tpd"}  # bedrock-runtime's, as before

"""Real traffic in the app (AppTest): the Evidence page loads a log folder, a trace file, an
uploaded trace or a shipped template and shows its analysis; a bad source is one error naming
it as the user named it, with the traffic loaded before dropped; the Justification page sizes
the TPM from it exactly as ``llmcap report --from-trace`` does."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from app import shared
from capacity.usage import SyntheticLogs, analyze_traffic, write_invocation_logs
from llmcap.cli import main
from tests.app.pages import LLAMA, USE_CASE, justify, page, shown

pytestmark = pytest.mark.timeout(300)
EVIDENCE = "views/evidence.py"


def loaded(at: object) -> bool:
    return shared.TRAFFIC in at.session_state  # type: ignore[attr-defined]


def test_evidence_loads_a_template_and_shows_its_analysis() -> None:
    at = page(EVIDENCE).run()
    at.radio(key="traffic_source").set_value("template").run()
    at.selectbox(key="traffic_template").set_value("azure-conv-2023").run()
    at.button(key="traffic_load_template").click().run()
    assert not at.exception and not at.error
    assert at.success[0].value == f"19,366 requests of {LLAMA} from azure-conv-2023"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Above 25,000 prompt tokens"] == "0.00%"
    assert metrics["Busiest minute / mean"] == "1.56×"  # docs/traffic.md's table
    assert len(at.get("image")) == 2  # request rates, token distributions
    assert any("Traffic of" in m.value for m in at.markdown)
    analysis = at.session_state[shared.TRAFFIC_ANALYSIS]
    assert analysis.models[0].requests == 19_366


def test_a_log_folder_loads_and_a_bad_path_drops_it(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write_invocation_logs(logs, SyntheticLogs(requests=300, models=(LLAMA,)))
    at = page(EVIDENCE).run()
    at.text_input(key="traffic_path").input(str(logs))
    at.button(key="traffic_load").click().run()
    assert not at.exception and not at.error and loaded(at)
    assert at.success[0].value == f"300 requests of {LLAMA} from {logs}"
    at.text_input(key="traffic_path").input(str(tmp_path / "nowhere"))
    at.button(key="traffic_load").click().run()
    assert not at.exception
    (error,) = at.error
    assert error.value == f"{tmp_path / 'nowhere'}: no such file or directory"
    assert not loaded(at) and not at.success  # nothing from the source before


def test_an_uploaded_trace_is_named_as_uploaded() -> None:
    trace = b"timestamp,input_tokens,output_tokens\n1767000000,1000,100\n1767000003,30000,80\n"
    at = page(EVIDENCE).run()
    at.radio(key="traffic_source").set_value("upload").run()
    at.file_uploader(key="traffic_upload").upload("my trace.csv", trace).run()
    assert not at.exception and not at.error
    assert at.success[0].value == f"2 requests of {LLAMA} from my trace.csv"
    report = at.session_state[shared.TRAFFIC].report
    assert report.source == "my trace.csv"
    at.file_uploader(key="traffic_upload").upload("bad.csv", b"when,what\nnow,x\n").run()
    assert not at.exception
    (error,) = at.error
    assert error.value.startswith("bad.csv") or error.value.startswith("Could not load bad.csv")
    assert tempfile.gettempdir() not in error.value and "0_bad" not in error.value
    assert not loaded(at)


def test_justification_sizes_the_tpm_from_the_traffic_as_the_cli_does(tmp_path: Path) -> None:
    table = shared.load_traffic_template("azure-conv-2023", None)
    state = {
        shared.TRAFFIC: table,
        shared.TRAFFIC_LABEL: "azure-conv-2023",
        shared.TRAFFIC_ANALYSIS: analyze_traffic(table),
    }
    at = page("views/justification.py", **state).run()
    assert not at.exception
    assert at.radio(key="justification_basis").value == "traffic"
    keys = {w.key for w in at.number_input}
    assert not any(k and k.startswith("justification_input") for k in keys)  # measured
    at.text_input(key="justification_target").input("30")
    at.text_input(key="justification_trace_users").input("100")
    at = justify(at)
    assert not at.exception and not at.error, [e.value for e in at.error]
    out = tmp_path / "cli"
    argv = ["report", "--from-trace", "azure-conv-2023", "--trace-users", "100",
            "--target-users", "30", "--tpm", "600000", "--region", "us-east-1",
            "--use-case", USE_CASE, "--format", "json", "-o", str(out)]  # fmt: skip
    assert main(argv) == 0
    cli = json.loads((out / "quota_request.json").read_text())
    values = shown(at)
    assert values["TPM to request for 30 users"] == f"{cli['request']['tpm']:,}"
    assert values["Users today"] == f"{int(cli['users_today']):,}"
    assert any("TPM sized by replaying" in i.value for i in at.info)
    report = at.session_state["justification_report"]
    assert report.replay["tpm"] == cli["replay"]["tpm"]
    assert report.traffic.source == cli["traffic"]["source"]
    assert report.historical_usage == cli["historical_usage"]
    # the planner instead, on request
    at.radio(key="justification_basis").set_value("workload").run()
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state["justification_report"].replay is None

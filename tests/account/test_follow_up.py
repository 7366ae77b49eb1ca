"""What the account commands print as the next step carries every connection flag the user gave:
each printed ``llmcap …`` line is parsed back by the real parser and must reproduce the Region,
the AWS profile and the endpoint. Also: --region is checked against the SDK's list, and
--profile is a hidden, deprecated alias of --aws-profile."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from account import WrongRegion, check_region, connect
from emulator import Emulator
from llmcap.cli import build_parser, main

LLAMA = "us.meta.llama3-3-70b-instruct-v1:0"
TPM_CODE = "L-0E7AA8B7"
COMMAND = re.compile(r"llmcap [^`\n]*")


@pytest.fixture()
def profile(tmp_path: Path) -> str:
    """A named profile with static keys in the test's (temporary) AWS config file."""
    (tmp_path / "config").write_text(
        "[profile planner]\naws_access_key_id = AKIDEXAMPLE\n"
        "aws_secret_access_key = secret-example\n"
    )
    return "planner"


def _commands(text: str) -> list[argparse.Namespace]:
    """Every ``llmcap …`` command in ``text``, parsed by the real parser (N: a number)."""
    parsed = []
    for match in COMMAND.findall(text):
        words = ["1000000" if w == "N" else w for w in shlex.split(match)]
        parsed.append(build_parser().parse_args(words[1:]))
    return parsed


def test_follow_up_formats_options_and_connection_flags(profile: str) -> None:
    conn = connect("us-west-2", profile, "http://127.0.0.1:9/a b")
    line = conn.follow_up(
        "request-increase", quota_code=TPM_CODE, desired_value=1e6, submit=True, json=False,
        model_id=None,
    )  # fmt: skip
    assert line == (
        f"llmcap request-increase --quota-code {TPM_CODE} --desired-value 1000000 --submit "
        "--region us-west-2 --aws-profile planner --endpoint-url 'http://127.0.0.1:9/a b'"
    )
    offline = connect("eu-west-1", endpoint_url="http://127.0.0.1:9", offline=True)
    assert offline.follow_up("request-status", "r-1") == (
        "llmcap request-status r-1 --region eu-west-1 --endpoint-url http://127.0.0.1:9"
    )
    assert connect("us-east-1").follow_up("quotas") == "llmcap quotas --region us-east-1"


def test_every_printed_next_step_reproduces_the_connection(
    emu: Emulator, profile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--region", "us-west-2", "--aws-profile", profile, "--endpoint-url", emu.url]
    printed = []
    for argv in (
        ["quotas", "--model-id", LLAMA],
        ["request-increase", "--quota-code", TPM_CODE, "--desired-value", "900000"],
        ["request-increase", "--quota-code", TPM_CODE, "--desired-value", "900000", "--submit"],
        ["request-increase", "--quota-code", TPM_CODE, "--desired-value", "950000", "--submit"],
    ):
        code = main([*argv, *flags])
        out, err = capsys.readouterr()
        printed += _commands(out + err)
    assert code == 2 and "already open in us-west-2" in err  # the duplicate, as one line
    assert {a.command for a in printed} == {"usage", "request-increase", "request-status"}
    assert len(printed) == 5  # quotas 2, the dry run 1, the submit 1, the duplicate 1
    for args in printed:
        assert (args.region, args.aws_profile, args.endpoint_url) == (
            "us-west-2", profile, emu.url,
        )  # fmt: skip
    filed = [a for a in printed if a.command == "request-status"]
    assert len({a.request_id for a in filed}) == 1  # the duplicate points at the filed request
    code = main(["request-status", filed[0].request_id, *flags])
    assert code == 0 and "PENDING" in capsys.readouterr().out


def test_region_is_checked_against_the_sdk_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_region("us-east-1") == "us-east-1"
    with pytest.raises(WrongRegion, match=r"'us-esat-1' — did you mean us-east-1\?"):
        check_region("us-esat-1")
    with pytest.raises(WrongRegion, match=r"use one of .*us-west-2"):
        check_region("moon-1")
    code = main(["request-status", "r-1", "--region", "us-esat-1"])
    err = capsys.readouterr().err
    assert (
        code == 2
        and err.startswith("error: Amazon Bedrock is not offered")
        and err.count("\n") == 1
    )


@pytest.mark.parametrize("command", ["quotas", "usage", "request-increase", "request-status"])
def test_profile_is_a_hidden_deprecated_alias(
    command: str, profile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub = subparsers.choices[command]
    text = sub.format_help()
    assert "--aws-profile" in text and "--profile" not in text.replace("--aws-profile", "")
    argv = {
        "quotas": [], "usage": ["--model-id", LLAMA], "request-status": ["r-1"],
        "request-increase": ["--quota-code", TPM_CODE, "--desired-value", "1"],
    }[command]  # fmt: skip
    args = build_parser().parse_args(
        [command, *argv, "--region", "us-west-2", "--profile", profile]
    )
    assert args.aws_profile == profile
    assert capsys.readouterr().err == "warning: --profile is deprecated; use --aws-profile\n"

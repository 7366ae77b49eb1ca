"""One vocabulary across ``llmcap``: every subcommand's parser is walked and its options are
checked against the project's words (``-o/--out`` for outputs, ``--aws-profile`` for AWS,
``--emulator-profile`` for the emulator, ``--profile`` only as a hidden deprecated alias), and
every default a help text states is the parser's real default."""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmcap import console
from llmcap.cli import build_parser
from llmcap.commands._args import Deprecated


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield sub
                yield from _subparsers(sub)


PARSERS = {p.prog: p for p in _subparsers(build_parser())}
OUTPUT_WORDS = ("--output", "--out-dir", "--outdir", "--output-dir")
STATED_DEFAULT = re.compile(r"\((?:default:? )?([0-9][0-9,._]*(?:\.[0-9]+)?)\)")


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings]


def test_every_command_is_walked() -> None:
    names = {prog.split()[1] for prog in PARSERS}
    assert {"demo", "bench", "plan", "report", "fit", "twin", "probe", "emulate"} <= names
    assert {"quotas", "usage", "summarize"} <= names


@pytest.mark.parametrize("prog", sorted(PARSERS))
def test_outputs_are_dash_o_or_out(prog: str) -> None:
    for action in _options(PARSERS[prog]):
        flags = set(action.option_strings)
        assert not flags & set(OUTPUT_WORDS), f"{prog}: {flags}: write -o/--out"
        if "--out" in flags:
            assert "-o" in flags, f"{prog}: --out without -o"
        if "-o" in flags:
            assert "--out" in flags, f"{prog}: -o means --out, not {flags}"


@pytest.mark.parametrize("prog", sorted(PARSERS))
def test_profiles_say_whose(prog: str) -> None:
    for action in _options(PARSERS[prog]):
        if "--profile" in action.option_strings:
            assert isinstance(action, Deprecated), f"{prog}: --profile is a deprecated alias"
            assert action.help == argparse.SUPPRESS, f"{prog}: hide the deprecated --profile"
            assert action.dest in ("aws_profile", "emulator_profile", "profile"), prog
        if "--aws-profile" in action.option_strings:
            assert action.dest == "aws_profile", prog
        if "--emulator-profile" in action.option_strings:
            assert action.dest in ("emulator_profile", "profile"), prog


def _number(text: str) -> float:
    return float(text.replace(",", "").replace("_", ""))


@pytest.mark.parametrize("prog", sorted(PARSERS))
def test_stated_defaults_are_the_real_ones(prog: str) -> None:
    for action in _options(PARSERS[prog]):
        match = STATED_DEFAULT.search(action.help or "")
        if match is None or isinstance(action.default, bool):
            continue
        if isinstance(action.default, str):
            assert match.group(1) == action.default, (prog, action.option_strings)
            continue
        assert isinstance(action.default, int | float), (
            f"{prog} {action.option_strings}: help states a default of {match.group(1)} but "
            f"the option has {action.default!r}"
        )
        assert _number(match.group(1)) == pytest.approx(float(action.default)), (
            f"{prog} {action.option_strings}: help says {match.group(1)}, default is "
            f"{action.default!r}"
        )


def test_deprecated_alias_still_works(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["demo", "--profile", "fast"])
    assert args.emulator_profile == "fast"
    assert "--profile is deprecated; use --emulator-profile" in capsys.readouterr().err


ROOT = Path(__file__).resolve().parents[2]


class _Interrupted(types.ModuleType):
    """A module whose loading is cut short by Ctrl-C (the user's key, while imports run)."""

    def __getattr__(self, name: str) -> object:
        raise KeyboardInterrupt


def test_ctrl_c_while_the_commands_load_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "llmcap.cli", _Interrupted("llmcap.cli"))
    assert console() == 130
    assert capsys.readouterr().err == "interrupted (Ctrl-C)\n"


def test_the_console_script_is_console() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert scripts["project"]["scripts"] == {"llmcap": "llmcap:console"}

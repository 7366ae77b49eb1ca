"""Streamlit's magic writes every bare expression of a page script onto the page, so a string
meant as a note to readers (an attribute docstring after a constant) shows up above the title.
Page scripts carry none: only the docstrings of the script, its functions and classes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
PAGES = [APP / "Home.py", APP / "calculator.py", *sorted((APP / "views").glob("[!_]*.py"))]


def bare_strings(tree: ast.Module) -> list[int]:
    """Lines of string expressions other than the docstrings of the module, its functions and
    its classes (what magic would render)."""
    owners = [tree, *(n for n in ast.walk(tree) if isinstance(n, DEFINITIONS))]
    docstrings = {id(owner.body[0]) for owner in owners if owner.body}
    return sorted(
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        and id(node) not in docstrings
    )


@pytest.mark.parametrize("script", PAGES, ids=lambda p: p.name)
def test_a_page_script_shows_no_stray_string(script: Path) -> None:
    tree = ast.parse(script.read_text(encoding="utf-8"))
    assert bare_strings(tree) == [], f"{script.name}: magic would render these lines"


def test_the_check_finds_an_attribute_docstring() -> None:
    tree = ast.parse(
        '"""doc"""\nX = 1\n"""about X"""\ndef f():\n    """doc"""\n    if X:\n        "stray"\n'
    )
    assert bare_strings(tree) == [3, 7]

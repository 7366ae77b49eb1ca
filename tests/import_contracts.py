"""The project's own import-linter contract (``make lint``; ``[tool.importlinter]`` in
pyproject.toml): a private module (``_name``) is imported only from inside its own package.

A package's public names are what its ``__init__`` exports; a private module is an
implementation detail its package may rearrange (docs/architecture.md, "Allowed imports").
"""

from __future__ import annotations

from typing import Any

import grimp
from importlinter import Contract, ContractCheck, fields, output


def is_private(module: str) -> bool:
    """``a.b._c`` is private (``__init__`` and dunder names are not)."""
    last = module.rsplit(".", 1)[-1]
    return last.startswith("_") and not last.startswith("__")


def owner(module: str) -> str:
    """The package a private module belongs to: everything before its first private part."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return module


class PrivateModulesContract(Contract):
    """Private modules of ``packages`` may only be imported from inside their own package."""

    type_name = "private_modules"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        """Every import of a private module from outside its owning package is a violation."""
        roots = tuple(str(p) for p in self.packages)  # type: ignore[attr-defined]
        broken: list[dict[str, Any]] = []
        for imported in sorted(graph.modules):
            if not imported.startswith(roots) or "._" not in imported:
                continue
            home = owner(imported)
            for importer in sorted(graph.find_modules_that_directly_import(imported)):
                if importer == home or importer.startswith(home + "."):
                    continue
                lines = [d["line_number"] for d in graph.get_import_details(
                    importer=importer, imported=imported)]  # fmt: skip
                broken.append({"importer": importer, "imported": imported, "lines": lines})
        return ContractCheck(kept=not broken, metadata={"broken": broken})

    def render_broken_contract(self, check: ContractCheck) -> None:
        """One line per import that reaches into another package's private module."""
        for b in check.metadata["broken"]:
            where = ", ".join(f"l.{n}" for n in b["lines"])
            output.print_error(
                f"{b['importer']} imports {b['imported']} ({where}): import the name from "
                f"{owner(b['imported'])} (add it to its __all__)",
                bold=False,
            )

"""The layer rules of docs/architecture.md, checked on the source text with `ast` (nothing is
imported). Every import statement counts, wherever it is: inside a function, or under
`if TYPE_CHECKING:` (a type-only import is still a dependency).

The streaming package's import-cycle check belongs here too; it is added by the change that
removes the cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Module:
    name: str  # dotted: hub.services.orders
    label: str  # as reported: hub/services/orders.py
    source: str
    is_package: bool = False  # an __init__.py: relative imports start from the module itself


def load(dotted: str) -> list[Module]:
    """The module `dotted`, or every module of the package `dotted`, read from the tree."""
    base = ROOT.joinpath(*dotted.split("."))
    paths = sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
    modules = []
    for path in paths:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        label = path.relative_to(ROOT).as_posix()
        modules.append(Module(".".join(parts), label, path.read_text(), is_package))
    assert modules, f"nothing found for {dotted}"
    return modules


def imported(module: Module) -> Iterator[tuple[int, str]]:
    """(line, absolute dotted name) for every name the module imports; `from a import b`
    yields `a.b`, since b may be a submodule (`from hub import adapters`)."""
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    for node in ast.walk(ast.parse(module.source, module.label)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, *(node.module.split(".") if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                name = base if alias.name == "*" else ".".join(filter(None, [base, alias.name]))
                yield node.lineno, name


def under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def offenders(
    modules: Iterable[Module], forbidden: Sequence[str], allowed: Sequence[str] = ()
) -> list[str]:
    """`module:line -> name` for every import of a name under a `forbidden` prefix that is not
    under an `allowed` one."""
    return [
        f"{module.label}:{line} -> {name}"
        for module in modules
        for line, name in sorted(imported(module))
        if under(name, forbidden) and not under(name, allowed)
    ]


def report(rule: str, found: list[str]) -> str:
    return f"{rule}:\n  " + "\n  ".join(found)


# --- the rules ----------------------------------------------------------------------------------


def test_streaming_never_imports_hub() -> None:
    found = offenders(load("streaming"), ["hub"])
    assert not found, report("streaming/ imports hub", found)


def test_domain_imports_only_the_domain() -> None:
    found = offenders(load("hub.domain"), ["hub"], allowed=["hub.domain"])
    assert not found, report("hub/domain/ imports hub outside hub.domain", found)


def test_services_import_no_adapter_and_no_entrypoint() -> None:
    found = offenders(load("hub.services"), ["hub.adapters", "hub.entrypoints"])
    assert not found, report("hub/services/ imports adapters or entrypoints", found)


def test_bootstrap_imports_no_entrypoint() -> None:
    found = offenders(load("hub.bootstrap"), ["hub.entrypoints"])
    assert not found, report("hub/bootstrap.py imports entrypoints", found)


def test_adapters_import_no_entrypoint() -> None:
    found = offenders(load("hub.adapters"), ["hub.entrypoints"])
    assert not found, report("hub/adapters/ imports entrypoints", found)


# --- the checker itself -------------------------------------------------------------------------

SYNTHETIC = """\
from __future__ import annotations
import os
from typing import TYPE_CHECKING
import hubris
from hub.domain import errors
from . import orders
from .orders import Order

import hub.adapters.memory
from hub import entrypoints
from ..adapters.memory import queue
from ... import streaming_app

if TYPE_CHECKING:
    from hub.entrypoints.http.app import HubApp


def late():
    from hub.services.ports import QuoteStore
"""


def synthetic(name: str = "hub.domain.rules", *, is_package: bool = False) -> Module:
    return Module(name, name.replace(".", "/") + ".py", SYNTHETIC, is_package)


def test_the_checker_resolves_every_kind_of_import() -> None:
    names = [name for _, name in imported(synthetic())]
    assert names == [
        "__future__.annotations",
        "os",
        "typing.TYPE_CHECKING",
        "hubris",
        "hub.domain.errors",
        "hub.domain.orders",
        "hub.domain.orders.Order",
        "hub.adapters.memory",
        "hub.entrypoints",
        "hub.adapters.memory.queue",
        "streaming_app",
        "hub.entrypoints.http.app.HubApp",
        "hub.services.ports.QuoteStore",
    ]


def test_relative_imports_in_a_package_start_from_the_package() -> None:
    names = [name for _, name in imported(synthetic(is_package=True))]
    assert "hub.domain.rules.orders" in names
    assert "hub.adapters.memory.queue" not in names
    assert "hub.domain.adapters.memory.queue" in names


@pytest.mark.parametrize(
    ("forbidden", "allowed", "expected"),
    [
        (
            ["hub"],
            ["hub.domain"],
            [
                "hub/domain/rules.py:9 -> hub.adapters.memory",
                "hub/domain/rules.py:10 -> hub.entrypoints",
                "hub/domain/rules.py:11 -> hub.adapters.memory.queue",
                "hub/domain/rules.py:15 -> hub.entrypoints.http.app.HubApp",
                "hub/domain/rules.py:19 -> hub.services.ports.QuoteStore",
            ],
        ),
        (
            ["hub.entrypoints"],
            [],
            [
                "hub/domain/rules.py:10 -> hub.entrypoints",
                "hub/domain/rules.py:15 -> hub.entrypoints.http.app.HubApp",
            ],
        ),
        (["hub.services"], [], ["hub/domain/rules.py:19 -> hub.services.ports.QuoteStore"]),
        (["streaming"], [], []),  # streaming_app is not under streaming
    ],
)
def test_the_checker_flags_what_each_rule_forbids(
    forbidden: list[str], allowed: list[str], expected: list[str]
) -> None:
    assert offenders([synthetic()], forbidden, allowed) == expected


def test_a_clean_module_has_no_offenders() -> None:
    clean = Module("streaming.x", "streaming/x.py", "import asyncio\nfrom . import protocol\n")
    assert offenders([clean], ["hub"]) == []

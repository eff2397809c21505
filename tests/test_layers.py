"""The layer rules of docs/architecture.md, checked on the source text with `ast` (nothing is
imported). Every import statement counts, wherever it is: inside a function, or under
`if TYPE_CHECKING:` (a type-only import is still a dependency).

The streaming package must also be free of import cycles: its modules form a layered graph, so
that any one of them can be read (and tested) with only what is below it.
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


Graph = dict[str, dict[str, int]]  # module -> {module it imports: line of the first such import}


def graph(modules: Sequence[Module]) -> Graph:
    """The imports between `modules`. An imported name counts as the longest of its prefixes
    that is one of them: `from streaming.brokers import Snapshot` is an import of
    streaming/brokers/__init__.py, `from streaming import _drive` one of streaming/_drive.py.
    The parent packages Python runs first (`import a.b.c` runs a/__init__.py) are not counted:
    that is how every package is built, and their own imports are counted where they are."""
    names = {module.name for module in modules}
    edges: Graph = {}
    for module in modules:
        out = edges[module.name] = {}
        for line, name in sorted(imported(module)):
            while name and name not in names:
                name = name.rpartition(".")[0]
            if name and name != module.name:
                out.setdefault(name, line)
    return edges


def components(edges: Graph) -> list[list[str]]:
    """Strongly connected components (Tarjan), each sorted; a module alone is one too."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in edges.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def cycle(edges: Graph, component: Sequence[str], labels: dict[str, str]) -> str:
    """One shortest cycle through the component's first module, as `a.py:line -> b.py ...`."""
    start, members = component[0], set(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while start not in came_from:  # a component of two or more always leads back to start
        following = []
        for node in frontier:
            for target in sorted(edges[node]):
                if target in members and target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    back = []  # from the module that imports start, back to the one start imports
    node = came_from[start]
    while node != start:
        back.append(node)
        node = came_from[node]
    path = [start, *reversed(back)]
    hops = [f"{labels[a]}:{edges[a][b]}" for a, b in zip(path, [*path[1:], start], strict=True)]
    return " -> ".join([*hops, labels[start]])


def cycles(modules: Sequence[Module]) -> list[str]:
    """Every import cycle among `modules`, one line per strongly connected component."""
    edges = graph(modules)
    labels = {module.name: module.label for module in modules}
    return [
        f"{', '.join(labels[name] for name in component)}: {cycle(edges, component, labels)}"
        for component in components(edges)
        if len(component) > 1
    ]


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


def test_streaming_has_no_import_cycle() -> None:
    found = cycles(load("streaming"))
    assert not found, report("import cycles in streaming/ (the modules, then one cycle)", found)


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


def test_a_cycle_is_found_through_every_kind_of_import() -> None:
    modules = [
        Module("pkg", "pkg/__init__.py", "from pkg.engine import Engine\n", is_package=True),
        Module("pkg.engine", "pkg/engine.py", "import asyncio\nfrom pkg import session\n"),
        Module(
            "pkg.session",
            "pkg/session.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sse import x\n",
        ),
        Module("pkg.sse", "pkg/sse.py", "def f():\n    from .engine import Engine\n"),
        Module("pkg.plain", "pkg/plain.py", "from pkg.sse import y\n"),
    ]
    assert cycles(modules) == [
        "pkg/engine.py, pkg/session.py, pkg/sse.py: "
        "pkg/engine.py:2 -> pkg/session.py:3 -> pkg/sse.py:2 -> pkg/engine.py"
    ]


def test_a_name_from_a_package_is_an_import_of_its_init() -> None:
    modules = [
        Module("pkg", "pkg/__init__.py", "from pkg.sub.mod import thing\n", is_package=True),
        Module("pkg.sub", "pkg/sub/__init__.py", "def f():\n    from . import mod\n", True),
        Module("pkg.sub.mod", "pkg/sub/mod.py", "from pkg.sub import Base\n"),
    ]
    assert graph(modules) == {
        "pkg": {"pkg.sub.mod": 1},
        "pkg.sub": {"pkg.sub.mod": 2},
        "pkg.sub.mod": {"pkg.sub": 1},
    }
    assert cycles(modules) == [
        "pkg/sub/__init__.py, pkg/sub/mod.py: pkg/sub/__init__.py:2 -> pkg/sub/mod.py:1 -> "
        "pkg/sub/__init__.py"
    ]


def test_layered_modules_have_no_cycle() -> None:
    modules = [
        Module("pkg", "pkg/__init__.py", "from pkg.a import A\nfrom pkg.b import B\n", True),
        Module("pkg.a", "pkg/a.py", "from pkg.b import B\nimport pkg.a\n"),  # self: not a cycle
        Module("pkg.b", "pkg/b.py", "import os\n"),
    ]
    assert cycles(modules) == []

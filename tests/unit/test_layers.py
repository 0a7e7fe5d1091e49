"""The layer graph: no import circles, and imports point one way.

server / enrollment / lifecert.cli*  →  lifecert.services  →  lifecert.engine / lifecert.storage
→  lifecert.domain / lifecert.config. Every import counts, also those inside functions (a lazy
import is still a dependency); only ``if TYPE_CHECKING:`` blocks are left out (never run).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lifecert", "server", "enrollment")


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for p in (ROOT / pkg).rglob("*.py"):
            rel = p.relative_to(ROOT).with_suffix("")
            if "migrations" in rel.parts:
                continue
            name = ".".join(rel.parts)
            out[name.removesuffix(".__init__")] = p
    return out


def _graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    g: dict[str, set[str]] = defaultdict(set)
    for m, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skip.update(id(n) for n in ast.walk(node))
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = m.split(".")[: len(m.split(".")) - node.level + (1 if is_pkg else 0)]
                    base = ".".join([*parts, base] if base else parts)
                targets = [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                r = resolve(t)
                if r is not None and r != m and not m.startswith(r + "."):  # a package's own parents
                    g[m].add(r)
    return g


def _cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(g):
        if start in index:
            continue
        work = [(start, iter(sorted(g[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(g.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def layer(module: str) -> int:
    if module.startswith(("server", "enrollment", "lifecert.cli")):
        return 3
    if module.startswith("lifecert.services"):
        return 2
    if module.startswith(("lifecert.engine", "lifecert.storage")):
        return 1
    return 0  # lifecert.domain, lifecert.config, the lifecert package itself


def test_given_the_code_when_its_imports_are_graphed_then_there_is_no_circle() -> None:
    assert _cycles(_graph(_modules())) == []


def test_given_the_code_when_its_imports_are_graphed_then_every_import_points_down_or_sideways() -> None:
    g = _graph(_modules())
    upward = sorted(f"{m} -> {t}" for m, ts in g.items() for t in ts if layer(t) > layer(m))
    assert upward == []


def test_given_a_planted_circle_when_graphed_then_the_checker_finds_it() -> None:
    # The checker itself can fail: a two-module circle and a three-module one are both found.
    g = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert sorted(_cycles(g)) == [["a", "b"], ["c", "d", "e"]]
    assert layer("lifecert.services.review") > layer("lifecert.storage.db") > layer("lifecert.domain.errors")

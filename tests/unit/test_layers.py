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


# Each room of the code and its layer (docs/ARCHITECTURE.md). A new top-level package or module
# must be placed here; test_every_module_has_a_layer fails until it is.
LAYERS: dict[str, int] = {
    "server": 3, "enrollment": 3, "lifecert.cli": 3,
    "lifecert.services": 2,
    "lifecert.engine": 1, "lifecert.storage": 1,
    "lifecert.domain": 0, "lifecert.config": 0,
}


def layer(module: str) -> int | None:
    if module == "lifecert":
        return 0  # the package's __init__ (a docstring)
    if module.startswith("lifecert.cli"):
        return LAYERS["lifecert.cli"]  # cli.py and every cli_<area>.py
    for prefix, n in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            return n
    return None


def test_given_the_code_when_its_imports_are_graphed_then_there_is_no_circle() -> None:
    assert _cycles(_graph(_modules())) == []


def test_given_the_code_when_its_imports_are_graphed_then_every_import_points_down_or_sideways() -> None:
    g = _graph(_modules())
    upward = sorted(f"{m} -> {t}" for m, ts in g.items() for t in ts if (layer(t) or 0) > (layer(m) or 0))
    assert upward == []


def test_given_the_code_when_modules_are_listed_then_every_module_has_a_layer() -> None:
    # A new room (say lifecert/notify/) is placed in LAYERS on purpose, not silently treated as domain.
    unplaced = sorted(m for m in _modules() if layer(m) is None)
    assert unplaced == []
    assert layer("lifecert.notify.smtp") is None and layer("lifecert.cli_staff") == 3
    assert layer("lifecert") == 0 and layer("lifecert.configs") is None


def test_given_a_planted_circle_when_graphed_then_the_checker_finds_it() -> None:
    # The checker itself can fail: a two-module circle and a three-module one are both found.
    g = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert sorted(_cycles(g)) == [["a", "b"], ["c", "d", "e"]]
    assert layer("lifecert.services.review") == 2 and layer("lifecert.storage.db") == 1
    assert layer("lifecert.domain.errors") == 0

"""The library's shape: no import cycle, imports run one way, no module over about 400 lines.

The import graph is read from the source (every ``import``, including those inside functions
and under ``TYPE_CHECKING``), so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 420  # "about 400"
#: modules allowed to be longer, each with its reason (data, not logic)
LONG_MODULES: dict[str, str] = {}

#: the README's layering, lowest first; a module may import its own tier and the tiers below
TIERS: list[tuple[str, ...]] = [
    ("mindvec.errors", "mindvec._version"),
    ("mindvec.limits", "mindvec.text", "mindvec.site", "mindvec.times", "mindvec._fs", "mindvec.features"),
    ("mindvec.wikitext",),
    ("mindvec.calibration",),
    ("mindvec.canonical", "mindvec.container"),
    ("mindvec.payload", "mindvec.schema", "mindvec.manifest", "mindvec.shapes", "mindvec.values"),
    ("mindvec.package",),
    ("mindvec.signing", "mindvec.keys", "mindvec.rotation", "mindvec.trust", "mindvec.state"),
    ("mindvec.policy", "mindvec.verification"),
    ("mindvec.translation", "mindvec.builder", "mindvec.assets"),
    ("mindvec.loader", "mindvec.fit", "mindvec.hub", "mindvec.interop"),
    ("mindvec.cli", "mindvec.__main__", "mindvec"),
]


def modules(package: str) -> dict[str, Path]:
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules that ``name`` imports (a ``from pkg import mod`` counts as ``pkg.mod``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    out: set[str] = set()

    def resolve(target: str) -> str | None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".") if is_package else name.split(".")[:-1]
                here = here[: len(here) - node.level + 1]
                base = ".".join([*here, base] if base else here)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            hit = resolve(target)
            if hit is not None and hit != name:
                out.add(hit)
                break
    return out


def graph(package: str) -> dict[str, set[str]]:
    known = modules(package)
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def tier_of(name: str) -> int:
    best, depth = -1, -1
    for level, prefixes in enumerate(TIERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > depth:
                best, depth = level, len(prefix)
    assert best >= 0, f"{name} has no tier in TIERS; place it in the README's layering"
    return best


@pytest.mark.parametrize("package", ["mindvec", "conformance_tests"])
def test_no_import_cycle(package: str) -> None:
    assert cycles(graph(package)) == []


def test_cycle_detection_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_run_one_way() -> None:
    upward = [
        f"{name} ({tier_of(name)}) imports {target} ({tier_of(target)})"
        for name, targets in graph("mindvec").items()
        if name != "mindvec"
        for target in targets
        if tier_of(target) > tier_of(name)
    ]
    assert upward == []


@pytest.mark.parametrize("package", ["mindvec", "conformance_tests"])
def test_no_module_over_about_400_lines(package: str) -> None:
    long = {
        name: n
        for name, path in modules(package).items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES and name not in LONG_MODULES
    }
    assert long == {}, f"split these modules, or list them in LONG_MODULES with the reason: {long}"
    assert all(reason.strip() for reason in LONG_MODULES.values())


def _readme_tree() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Layout") :]
    return section[section.index("```") + 3 : section.index("```", section.index("```") + 3)]


def test_readme_layout_names_every_module_and_only_real_ones() -> None:
    """The README's layout section matches the tree: every module and sub-package, no ghosts."""
    tree = _readme_tree()
    top = {p.stem for p in (ROOT / "mindvec").glob("*.py")} - {"__main__"}
    packages = {p.name for p in (ROOT / "mindvec").iterdir() if (p / "__init__.py").is_file()}
    listed_files = set(re.findall(r"^  (\w+)\.py\b", tree, re.M))
    listed_packages = set(re.findall(r"^  (\w+)/", tree, re.M))
    assert listed_files == top, (sorted(top - listed_files), sorted(listed_files - top))
    assert listed_packages == packages, (
        sorted(packages - listed_packages),
        sorted(listed_packages - packages),
    )
    for package in packages:
        line = re.search(rf"^  {package}/(.*(?:\n {{20}}.*)*)", tree, re.M)
        assert line is not None
        named = set(re.findall(r"\b(\w+)\b", line[1]))
        modules_here = {p.stem for p in (ROOT / "mindvec" / package).glob("*.py")} - {"__init__"}
        assert modules_here <= named, f"{package}/: the README does not name {sorted(modules_here - named)}"

"""The package's import structure: no cycle, and no import up the layer order stated in README.md ("Layout")."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "lmtune"
# Imports inside functions, allowed only where they keep start-up fast (not to dodge a cycle: the cycle check
# below counts them like any other import).
DEFERRED_OK = {
    "lmtune": "`import lmtune` does not load torch until lmtune.train & co. are used",
    "lmtune.cli": "`lmtune --help` and light commands do not load torch",
    "lmtune.models.convert": "`lmtune models fetch` loads the GGUF reader (torch) only for GGUF models",
}


def layers() -> list[list[str]]:
    """The layer list from README.md: a numbered line per layer, `module` names in backticks."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- layers:.*?-->\n(.*?)<!-- /layers -->", text, re.S)
    assert block, "README.md has no <!-- layers --> block"
    out = []
    for line in block.group(1).splitlines():
        found = re.match(r"\d+\. (.*?)(?::|$)", line)
        if found:
            out.append(re.findall(r"`([\w.]+)`", found.group(1)))
    return out


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, bool]]:
    """(imported lmtune module, whether the import sits inside a function) for each import in the file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("lmtune"):
            subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known]
            targets = subs if len(subs) == len(node.names) else [node.module, *subs]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names if a.name.startswith("lmtune")]
        else:
            continue
        out += [(t, node.col_offset > 0) for t in targets if t in known and t != name]
    return out


def layer_of(module: str, order: list[list[str]]) -> int | None:
    if module == "lmtune":
        return len(order)  # the package root re-exports the API: above everything
    short = module.removeprefix("lmtune.")
    for i, names in enumerate(order):
        if any(short == n or short.startswith(n + ".") for n in names):
            return i
    return None


def graph() -> dict[str, list[tuple[str, bool]]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_the_readme_states_the_layers():
    order = layers()
    assert len(order) >= 10 and ["config"] in order and order[-1] == ["cli"]


def test_every_module_belongs_to_a_layer():
    order = layers()
    assert [m for m in modules() if layer_of(m, order) is None] == []


def test_no_import_goes_up_a_layer():
    order = layers()
    upward = [f"{src} (layer {layer_of(src, order) + 1}) imports {dst} (layer {layer_of(dst, order) + 1})"
              for src, targets in graph().items() for dst, _ in targets
              if layer_of(dst, order) > layer_of(src, order)]
    assert upward == []


def test_no_import_cycle():
    edges = {src: {dst for dst, _ in targets} for src, targets in graph().items()}
    assert find_cycle(edges) is None


def test_imports_inside_functions_only_where_start_up_time_asks_for_them():
    deferred = {src for src, targets in graph().items() if any(inside for _, inside in targets)}
    assert deferred <= set(DEFERRED_OK), sorted(deferred - set(DEFERRED_OK))


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path of modules, or None (depth-first search, colouring nodes on the stack)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    return next((c for node in sorted(edges) if node not in state for c in [visit(node)] if c), None)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None

"""The house's layers, lowest first, named here and only here: a module imports from its own
layer or the ones below it, never above, and no two modules import each other, directly or
round a loop (imports inside functions count; those under ``if TYPE_CHECKING`` do not)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "entrosel"

# (layer, the modules and packages in it), lowest first
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core: errors, hyper-parameters, registries, the step base",
     ("errors", "heap", "params", "registry", "progress", "step", "version")),
    ("io: readers, writers, score files, record formats", ("io", "formats")),
    ("the pool: records read once, serialized", ("pool",)),
    ("engines: where work runs", ("engines",)),
    ("steps: scorers, then filters and selectors", ("scoring", "filters", "selection")),
    ("the data probe: a small LM trained on a set", ("probe",)),
    ("the entropy law", ("law",)),
    ("reports", ("report",)),
    ("evaluate: train on each subset and compare", ("evaluate",)),
    ("verbs as library functions, recipes", ("commands",)),
    ("entrosel inside other tools", ("integrations",)),
    ("the command line, the generic checks that run it, the package's public names",
     ("cli", "testing", "__main__", "")),
]


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """The entrosel modules ``path`` imports, as names below ``entrosel`` (``""``: the root)."""
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            test = node.test
            if getattr(test, "id", None) == "TYPE_CHECKING" or getattr(test, "attr", None) == "TYPE_CHECKING":
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(a.name for a in node.names if a.name.split(".")[0] == "entrosel")

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.level == 0 and node.module and node.module.split(".")[0] == "entrosel":
                found.add(node.module)
                for alias in node.names:  # `from entrosel.x import y` where y is a module
                    if (SRC / node.module.replace("entrosel", "", 1).lstrip(".").replace(".", "/") / alias.name).exists() \
                            or (SRC / node.module.replace("entrosel", "", 1).lstrip(".").replace(".", "/")
                                / f"{alias.name}.py").exists():
                        found.add(f"{node.module}.{alias.name}")

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    return {name.removeprefix("entrosel").lstrip(".") for name in found}


def _layer(module: str) -> int:
    top = module.split(".")[0]
    for rank, (_, members) in enumerate(LAYERS):
        if top in members:
            return rank
    raise AssertionError(f"entrosel.{module} is in no layer: add it to LAYERS in {__file__}")


GRAPH = {_module(p): _imports(p) for p in sorted(SRC.rglob("*.py"))}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_import_reaches_up_a_layer(module):
    up = sorted(m for m in GRAPH[module] if _layer(m) > _layer(module))
    assert not up, (f"entrosel.{module} ({LAYERS[_layer(module)][0]}) imports from a higher layer: "
                     + ", ".join(f"entrosel.{m} ({LAYERS[_layer(m)][0]})" for m in up))


def _package_of(module: str, name: str) -> bool:
    return name == "" or module == name or module.startswith(name + ".")


def test_no_import_cycle():
    # a package's __init__ importing its own modules is how it names its public parts, not a
    # loop; every other edge counts
    edges = {m: {t for t in ts if t in GRAPH and not (m.startswith(t + ".") or (t == "" and m != ""))
                 and not _package_of(t, m)} for m, ts in GRAPH.items()}
    seen: dict[str, int] = {}  # 1 on the current path, 2 done
    stack: list[str] = []

    def visit(node: str) -> None:
        seen[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if seen.get(nxt) == 1:
                loop = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(f"entrosel.{m}".rstrip(".") for m in loop))
            if nxt not in seen:
                visit(nxt)
        stack.pop()
        seen[node] = 2

    for module in sorted(edges):
        if module not in seen:
            visit(module)

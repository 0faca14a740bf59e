"""The layer rule of DESIGN §1: each package imports only the packages to its left."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYERS = ["eventlog", "commands", "projections", "query_api"]
ALLOWED = {layer: set(LAYERS[: index + 1]) for index, layer in enumerate(LAYERS)}
ALLOWED["query_api"].add("infra")
PROJECT = {*LAYERS, "infra", "tests", "bench", "agentlog"}
#: The edge embedders are a leaf (they import no project package), so the node may embed with them.
EMBEDDERS = "agentlog.embedders"


def imported_modules(path: Path) -> set[str]:
    """Dotted names of the modules a file imports (absolute imports only)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def imported_roots(path: Path) -> set[str]:
    """Top-level names a module imports (absolute imports only; relative ones stay in the package)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_each_layer_imports_only_layers_to_its_left() -> None:
    violations = []
    for layer in LAYERS:
        for path in sorted((REPO / layer).rglob("*.py")):
            forbidden = (imported_roots(path) & PROJECT) - ALLOWED[layer]
            if layer == "query_api" and "agentlog" in forbidden:
                agentlog = {name for name in imported_modules(path) if name.split(".")[0] == "agentlog"}
                if all(name == EMBEDDERS or name.startswith(EMBEDDERS + ".") for name in agentlog):
                    forbidden.discard("agentlog")
            if forbidden:
                violations.append(f"{path.relative_to(REPO)} imports {sorted(forbidden)}")
    assert violations == []


def test_infra_imports_no_layer() -> None:
    violations = [
        str(path.relative_to(REPO))
        for path in sorted((REPO / "infra").rglob("*.py"))
        if imported_roots(path) & set(LAYERS)
    ]
    assert violations == []


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import query_api.cli\nfrom projections import x\nfrom . import sibling\n")
    assert imported_roots(module) & PROJECT == {"query_api", "projections"}


def test_embedders_import_no_project_package() -> None:
    violations = [
        str(path.relative_to(REPO))
        for path in sorted((REPO / "agentlog" / "embedders").rglob("*.py"))
        if (imported_roots(path) & PROJECT) - {"agentlog"}
        or any(not name.startswith(EMBEDDERS) for name in imported_modules(path) if name.startswith("agentlog"))
    ]
    assert violations == []


def test_agentlog_imports_commands_and_only_lazily_query_api() -> None:
    violations = []
    for path in sorted((REPO / "agentlog").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        top_level = {
            (node.module or "").split(".")[0] if isinstance(node, ast.ImportFrom) else alias.name.split(".")[0]
            for node in tree.body
            if isinstance(node, ast.Import | ast.ImportFrom) and getattr(node, "level", 0) == 0
            for alias in node.names
        }
        forbidden = (top_level & PROJECT) - {"agentlog", "commands"}
        if forbidden or (imported_roots(path) & PROJECT) - {"agentlog", "commands", "query_api"}:
            violations.append(f"{path.relative_to(REPO)} imports {sorted(forbidden)}")
    assert violations == []

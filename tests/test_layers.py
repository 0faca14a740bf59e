"""The layer rule of DESIGN §1: each package imports only the packages to its left.

`agentlog/` (the public client package) imports `commands` at module level and `query_api` only
lazily (inside a function or under `TYPE_CHECKING`), for embedded mode. The CLI (`query_api/cli/`)
is a client of the node, so it is the one part of the server allowed to import `agentlog`.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYERS = ["eventlog", "commands", "projections", "query_api"]
ALLOWED = {layer: set(LAYERS[: index + 1]) for index, layer in enumerate(LAYERS)}
ALLOWED["query_api"].add("infra")
PROJECT = {*LAYERS, "agentlog", "infra", "tests", "bench"}
#: What the public package may import at module level, and what only lazily.
AGENTLOG_EAGER = {"agentlog", "commands", "eventlog"}
AGENTLOG_LAZY = {"query_api"}
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
    return _roots(ast.walk(ast.parse(path.read_text(), str(path))))


def module_level_roots(path: Path) -> set[str]:
    """Top-level names imported at module level, outside `if TYPE_CHECKING:` and function bodies."""
    tree = ast.parse(path.read_text(), str(path))
    eager: list[ast.AST] = []
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
        elif isinstance(node, ast.If | ast.Try | ast.With):
            pending.extend(ast.iter_child_nodes(node))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            eager.append(node)
    return _roots(eager)


def _roots(nodes: object) -> set[str]:
    roots: set[str] = set()
    for node in nodes:  # type: ignore[attr-defined]
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_each_layer_imports_only_layers_to_its_left() -> None:
    violations = []
    for layer in LAYERS:
        for path in sorted((REPO / layer).rglob("*.py")):
            allowed = ALLOWED[layer] | ({"agentlog"} if path.is_relative_to(REPO / "query_api" / "cli") else set())
            forbidden = (imported_roots(path) & PROJECT) - allowed
            if layer == "query_api" and "agentlog" in forbidden:
                agentlog = {name for name in imported_modules(path) if name.split(".")[0] == "agentlog"}
                if all(name == EMBEDDERS or name.startswith(EMBEDDERS + ".") for name in agentlog):
                    forbidden.discard("agentlog")
            if forbidden:
                violations.append(f"{path.relative_to(REPO)} imports {sorted(forbidden)}")
    assert violations == []


def test_the_public_package_loads_the_server_only_lazily() -> None:
    violations = []
    for path in sorted((REPO / "agentlog").rglob("*.py")):
        eager = (module_level_roots(path) & PROJECT) - AGENTLOG_EAGER
        anywhere = (imported_roots(path) & PROJECT) - AGENTLOG_EAGER - AGENTLOG_LAZY
        if eager or anywhere:
            violations.append(f"{path.relative_to(REPO)} imports {sorted(eager | anywhere)}")
    assert violations == []


def test_infra_imports_no_layer() -> None:
    violations = [
        str(path.relative_to(REPO))
        for path in sorted((REPO / "infra").rglob("*.py"))
        if imported_roots(path) & {*LAYERS, "agentlog"}
    ]
    assert violations == []


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import query_api.cli\nfrom projections import x\nfrom . import sibling\n")
    assert imported_roots(module) & PROJECT == {"query_api", "projections"}


def test_the_lazy_rule_sees_through_functions_and_type_checking(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\nimport commands\nif TYPE_CHECKING:\n    import query_api.node\n"
        "def f() -> None:\n    import projections\ntry:\n    import eventlog\nexcept ImportError:\n    pass\n"
    )
    assert module_level_roots(module) & PROJECT == {"commands", "eventlog"}
    assert imported_roots(module) & PROJECT == {"commands", "eventlog", "query_api", "projections"}


def test_embedders_import_no_project_package() -> None:
    violations = [
        str(path.relative_to(REPO))
        for path in sorted((REPO / "agentlog" / "embedders").rglob("*.py"))
        if (imported_roots(path) & PROJECT) - {"agentlog"}
        or any(not name.startswith(EMBEDDERS) for name in imported_modules(path) if name.startswith("agentlog"))
    ]
    assert violations == []

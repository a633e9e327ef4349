"""The app's modules import one another in one direction only, all at the top of the file."""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

APP_DIR = Path(__file__).resolve().parents[1]


def app_modules():
    """Every module of the app but its tests and migrations, by dotted name."""
    modules = {}
    for path in sorted(APP_DIR.rglob("*.py")):
        parts = path.relative_to(APP_DIR.parent).with_suffix("").parts
        if {"tests", "migrations"} & set(parts):
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = ast.parse(path.read_text(), filename=str(path))
    return modules


def imported_names(node):
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module:
        return [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return []


def test_no_module_imports_inside_a_function():
    late = [
        f"{name}: line {node.lineno}"
        for name, tree in app_modules().items()
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(function)
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]

    assert late == []


def test_the_app_modules_import_each_other_without_a_circle():
    modules = app_modules()
    graph = {
        name: {
            imported
            for node in ast.walk(tree)
            for imported in imported_names(node)
            if imported in modules and imported != name
        }
        for name, tree in modules.items()
    }

    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as error:
        raise AssertionError(f"import circle: {' → '.join(error.args[1])}") from None
    assert order.index("mailinglist.models") < order.index("mailinglist.delivery.claims")
    assert order.index("mailinglist.delivery.sending") < order.index("mailinglist.tasks")

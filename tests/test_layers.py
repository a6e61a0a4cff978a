"""The structure the code promises (STYLE.md): layers import one way, configuration is read at the
edge only, SQL lives in the store, functions stay short. Read from the source, so a change that
breaks a promise fails here, not in a review."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# package → packages it must never import (directly or by `from x import`)
FORBIDDEN = {
    "sensevoice_core": {"prefect", "duckdb", "laughtrack", "laughtrack_cli", "flows", "tasks", "reports", "matplotlib"},
    "laughtrack": {"laughtrack_cli", "flows", "tasks", "reports"},
    "reports": {"laughtrack_cli", "flows", "tasks", "duckdb", "prefect"},    # it reads the store's records
    "tasks": {"laughtrack_cli", "flows"},
    "flows": {"laughtrack_cli"},
}
EDGE = {"laughtrack_cli/main.py", "flows/analyze.py", "flows/inbox.py", "flows/report.py", "flows/maintain.py"}
MAX_FUNCTION_LINES = 40


def modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "fixture" not in p.parts)


def imported(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_import_one_way(package):
    offenders = {str(p.relative_to(ROOT)): sorted(imported(ast.parse(p.read_text())) & FORBIDDEN[package])
                 for p in modules(package)}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_environment_is_read_only_at_the_edge():
    readers = []
    for package in ("laughtrack", "laughtrack_cli", "flows", "tasks", "sensevoice_core", "reports"):
        for p in modules(package):
            tree = ast.parse(p.read_text())
            if any(isinstance(n, ast.Attribute) and n.attr in ("environ", "getenv") and
                   isinstance(n.value, ast.Name) and n.value.id == "os" for n in ast.walk(tree)):
                readers.append(str(p.relative_to(ROOT)))
    assert set(readers) <= EDGE, sorted(set(readers) - EDGE)


def test_sql_is_spoken_only_by_the_store():
    """Nothing outside laughtrack/store/ imports duckdb or executes a statement."""
    speakers = []
    for package in ("laughtrack", "laughtrack_cli", "flows", "tasks", "reports"):
        for p in modules(package):
            rel = str(p.relative_to(ROOT))
            tree = ast.parse(p.read_text())
            executes = any(isinstance(n, ast.Attribute) and n.attr in ("execute", "executemany", "sql")
                           for n in ast.walk(tree))
            if not rel.startswith("laughtrack/store/") and ("duckdb" in imported(tree) or executes):
                speakers.append(rel)
    assert speakers == []


def test_functions_stay_short():
    long = []
    for package in ("laughtrack", "laughtrack_cli", "flows", "tasks", "sensevoice_core", "reports"):
        for p in modules(package):
            for node in ast.walk(ast.parse(p.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    n = node.end_lineno - node.lineno + 1
                    if n > MAX_FUNCTION_LINES:
                        long.append(f"{p.relative_to(ROOT)}:{node.name} {n} lines")
    assert long == []


def test_records_travel_between_stages_not_dicts():
    """No `x["column"]` in the flows: what moves between stages is typed (laughtrack/records.py)."""
    subscripts = []
    for p in modules("flows"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and \
                    isinstance(node.slice.value, str):
                subscripts.append(f"{p.relative_to(ROOT)}:{node.lineno}")
    assert subscripts == []


def test_what_the_store_reads_is_read_by_attribute_not_by_column_name():
    """No `row["column"]` read in the reporting package or the command line: the store's reads give
    back records (laughtrack/store/records.py). Allowed: the process environment, and an ASGI scope
    (a protocol's own dict, laughtrack_cli/ui.py's middleware)."""
    subscripts = []
    for p in modules("reports") + modules("laughtrack_cli"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and \
                    isinstance(node.slice.value, str) and isinstance(node.ctx, ast.Load) and \
                    ast.unparse(node.value) not in ("os.environ", "scope"):
                subscripts.append(f"{p.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}")
    assert subscripts == []


def test_every_prefect_yaml_entrypoint_imports_as_a_flow():
    import yaml
    from prefect.flows import load_flow_from_entrypoint
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    for deployment in spec["deployments"]:
        flow = load_flow_from_entrypoint(str(ROOT / deployment["entrypoint"]))
        assert callable(flow) and flow.name, deployment["name"]

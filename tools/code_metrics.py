"""Structure metrics of the product code (issues 12 and 23: before/after), from the source alone.

    python tools/code_metrics.py [ROOT]

Prints: function lengths (p50, p90, max and the longest), string subscripts (`x["key"]`) in
flows/ and in all product code (by file), `list[dict]` / `dict[str, Any]` annotations, the
`isinstance(…, BaseException | Exception)` sites, facts defined more than once (a module-level
constant under one name in several modules; `--db` options declared; report page paths built),
files per folder, `os.environ` / `os.getenv` reads per file, and which files declare the results
schema (DDL, Arrow schemas and tables, dicts keyed by three or more column names).
"""

from __future__ import annotations

import ast
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

PRODUCT = ("laughtrack", "laughtrack_cli", "flows", "tasks", "sensevoice_core", "reports")
TABLES = ("videos", "audio_streams", "analyses", "windows", "segments", "tokens", "events",
          "minute_density", "minute_events", "failures")


def sources(root: Path) -> list[Path]:
    return sorted(p for pkg in PRODUCT for p in (root / pkg).rglob("*.py") if "fixture" not in p.parts)


def functions(tree: ast.AST) -> list[tuple[str, int]]:
    return [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def string_subscripts(tree: ast.AST) -> int:
    return sum(isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant) and isinstance(n.slice.value, str)
               for n in ast.walk(tree))


def environ_reads(tree: ast.AST) -> int:
    count = 0
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and n.attr in ("environ", "getenv") and \
                isinstance(n.value, ast.Name) and n.value.id == "os":
            count += 1
    return count


COLUMNS = {"video_id", "sha256", "size_bytes", "container", "stream_index", "codec", "channels", "sample_rate",
           "language_tag", "analysis_id", "model_id", "model_sha256", "params_json", "code_version", "started_at",
           "minute", "laughter_s", "applause_s", "laughter_count", "applause_count", "speech_s", "covered_s",
           "stage", "error_type", "message", "label", "start_s", "end_s", "peak_p", "mean_p", "raw_text"}


def schema_sites(text: str, tree: ast.AST) -> int:
    """Places that spell out results columns: DDL, Arrow schemas/tables, dicts keyed by columns."""
    tables = "|".join(TABLES)
    sites = len(re.findall(rf"CREATE TABLE (?:IF NOT EXISTS )?(?:{tables})\b", text))
    sites += len(re.findall(r"pa\.(?:schema|table)\(", text))
    for n in ast.walk(tree):
        if isinstance(n, ast.Dict):
            keys = {k.value for k in n.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
            sites += len(keys & COLUMNS) >= 3
    return sites


def untyped_annotations(tree: ast.AST) -> int:
    """Annotations that hand rows around as dicts: `list[dict…]`, `dict[str, Any]`, `dict[str, list[dict]]`."""
    found = 0
    for n in ast.walk(tree):
        for ann in ([n.returns] + [a.annotation for a in n.args.args + n.args.kwonlyargs]
                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) else
                    [n.annotation] if isinstance(n, ast.AnnAssign) else []):
            text = ast.unparse(ann) if ann is not None else ""
            found += bool(re.search(r"list\[dict|dict\[str, *Any\]|dict\[str, *list\[dict", text))
    return found


def exception_checks(tree: ast.AST) -> int:
    """`isinstance(x, BaseException)` / `isinstance(x, Exception)`: failures carried as exception objects."""
    count = 0
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "isinstance" and len(n.args) == 2:
            kinds = n.args[1].elts if isinstance(n.args[1], ast.Tuple) else [n.args[1]]
            count += any(isinstance(k, ast.Name) and k.id in ("BaseException", "Exception") for k in kinds)
    return count


def constants(tree: ast.AST) -> set[str]:
    """Module-level UPPER_CASE names assigned a literal (a fact stated here)."""
    names = set()
    for n in tree.body if isinstance(tree, ast.Module) else ():
        targets = n.targets if isinstance(n, ast.Assign) else [n.target] if isinstance(n, ast.AnnAssign) else []
        value = getattr(n, "value", None)
        if value is not None and not isinstance(value, (ast.Name, ast.Attribute)):
            names |= {t.id for t in targets if isinstance(t, ast.Name) and t.id.isupper() and len(t.id) > 2}
    return names


def percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(root: Path) -> None:
    lengths, env, schema, subs = [], {}, [], 0
    all_subs, untyped, checks, defined = Counter(), Counter(), Counter(), defaultdict(list)
    db_options = page_paths = 0
    folders = Counter()
    for path in sources(root):
        text = path.read_text()
        tree = ast.parse(text)
        rel = path.relative_to(root).as_posix()
        folders[path.parent.relative_to(root).as_posix()] += 1
        lengths += [(n, f"{rel}:{name}") for name, n in functions(tree)]
        if rel.startswith("flows/"):
            subs += string_subscripts(tree)
        all_subs[rel] = string_subscripts(tree)
        untyped[rel] = untyped_annotations(tree)
        checks[rel] = exception_checks(tree)
        for name in constants(tree):
            defined[name].append(rel)
        db_options += len(re.findall(r"db: str = typer\.Option\(", text))
        page_paths += len(re.findall(r"[\"'/]report\.html[\"']", text))
        if environ_reads(tree):
            env[rel] = environ_reads(tree)
        if schema_sites(text, tree):
            schema.append(f"{rel} ({schema_sites(text, tree)})")
    sizes = [n for n, _ in lengths]
    print(f"functions: {len(sizes)}; lines p50 {percentile(sizes, 0.5)}, p90 {percentile(sizes, 0.9)}, "
          f"max {max(sizes)}")
    for n, where in sorted(lengths, reverse=True)[:5]:
        print(f"  {n:4d}  {where}")
    print(f"string subscripts in flows/: {subs}; in product code: {sum(all_subs.values())} "
          f"({', '.join(f'{k} {v}' for k, v in all_subs.most_common(8) if v)})")
    print(f"list[dict] / dict[str, Any] annotations: {sum(untyped.values())} "
          f"({', '.join(f'{k} {v}' for k, v in untyped.most_common(6) if v)})")
    print(f"isinstance(…, BaseException|Exception) sites: {sum(checks.values())} "
          f"({', '.join(f'{k} {v}' for k, v in checks.most_common(6) if v)})")
    twice = {name: places for name, places in sorted(defined.items()) if len(places) > 1}
    print(f"facts defined more than once: {len(twice)} constants {twice}; `db` options declared {db_options}; "
          f"report page paths spelt {page_paths}")
    print(f"files per folder: {dict(sorted(folders.items()))}")
    print(f"os.environ reads: {sum(env.values())} in {env}")
    print(f"places spelling out results columns: {sum(int(s.rsplit('(', 1)[1][:-1]) for s in schema)} in {schema}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]))

"""The command line as a user meets it: the demo end to end, and the README documenting it."""

import re
from pathlib import Path

from typer.testing import CliRunner

from laughtrack_cli.main import app

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_the_flow_offline_within_the_accuracy_contract(tmp_path, no_network, prefect_server):
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    share = re.search(r"within ±2 s of the truth: (\d+)%", result.output)
    assert share and int(share.group(1)) >= 90, result.output
    assert "per minute, laughtrack / truth" in result.output
    for name in ("demo.mp4", "demo.truth.json", "laughtrack.duckdb"):
        assert (tmp_path / name).stat().st_size > 0
    assert no_network == []


def test_unknown_model_is_one_line_not_a_traceback(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--model", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "neither a model dir nor a hub id" in result.output and "Traceback" not in result.output


def readme_commands() -> dict[str, str]:
    """The README's command table: command name (with its sub-command) → its row."""
    readme = (ROOT / "README.md").read_text()
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `laughtrack ([a-z]+(?: [a-z]+)?)[^\n]*$", readme,
                                                         flags=re.M)}


def commands(group, prefix: str = "") -> dict:
    """Every runnable command of the app, sub-commands as "db migrate"."""
    out = {}
    for name, command in group.commands.items():
        if hasattr(command, "commands"):     # a group (typer vendors its own click)
            out.update(commands(command, f"{prefix}{name} "))
        else:
            out[prefix + name] = command
    return out


def test_every_cli_command_and_option_is_in_the_readme_table():
    import typer
    every = commands(typer.main.get_command(app))
    rows = readme_commands()
    assert set(rows) == set(every), (sorted(rows), sorted(every))
    for name, command in every.items():
        options = [o for p in command.params for o in p.opts if o.startswith("--") and o != "--help"]
        missing = [o for o in options if o not in rows[name]]
        assert missing == [], (name, missing)


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci

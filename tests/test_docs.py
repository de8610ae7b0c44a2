"""Docs stay true to the code: the parameter table and the README's test command."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_parameter_table_in_model_md_is_current() -> None:
    spec = importlib.util.spec_from_file_location("mpt", ROOT / "docs" / "make_parameter_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (ROOT / "docs" / "model.md").read_text()
    assert module.table_markdown() in text, "run: python docs/make_parameter_table.py"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    test_cmd = next(line for line in readme if "pytest" in line and line.startswith("python3"))
    assert test_cmd in ci

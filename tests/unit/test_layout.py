"""The project's layout (README, "What it is"): the runtime, tooling packages beside it,
``scripts/`` holding only thin commands. Reads the source files; imports nothing of them."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ("chalicelib", "processors")
TOOLING = ("infra", "local_stack", "migration", "image_client", "benchmarks", "operations")
SKIPPED = {"tests", "node_modules", "build", "vendor"}


def package_folders() -> set[str]:
    """Every folder with an ``__init__.py`` outside tests/, as a dotted package name."""
    found = set()
    for init in ROOT.glob("**/__init__.py"):
        parts = init.relative_to(ROOT).parent.parts
        if parts and not parts[0].startswith(".") and not SKIPPED.intersection(parts):
            found.add(".".join(parts))
    return found


def sources(*folders: str) -> list[Path]:
    return [path for folder in folders for path in (ROOT / folder).rglob("*.py") if "node_modules" not in path.parts]


def test_pyproject_lists_exactly_the_packages_and_not_the_tests() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(setuptools["packages"]) == package_folders()
    assert {name.split(".")[0] for name in setuptools["packages"]} == {*RUNTIME, *TOOLING}
    assert setuptools["py-modules"] == ["app"]


def test_each_tooling_package_says_what_it_is_for() -> None:
    for package in TOOLING:
        docstring = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text()))
        assert docstring and len(docstring) > 80, package


def test_no_command_in_scripts_shadows_a_module_it_could_import() -> None:
    """``python scripts/x.py`` puts scripts/ first on sys.path: a scripts/token.py hid the
    standard library's ``token`` (and broke everything importing ``inspect``)."""
    taken = set(sys.stdlib_module_names) | {*RUNTIME, *TOOLING, "app", "tests"}
    commands = {path.stem for path in (ROOT / "scripts").glob("*.py")}
    assert commands and not commands & taken, commands & taken
    assert not (ROOT / "scripts" / "__init__.py").exists()  # commands, not a package


def test_the_commands_in_scripts_are_thin_entry_points() -> None:
    """Each names the function it runs, so the code lives in a package tests import."""
    for path in (ROOT / "scripts").glob("*.py"):
        tree = ast.parse(path.read_text())
        assert ast.get_docstring(tree), path.name
        imports = [node for node in tree.body if isinstance(node, ast.ImportFrom)]
        assert len(imports) == 1 and (imports[0].module or "").split(".")[0] in TOOLING, path.name
        assert len(path.read_text().splitlines()) <= 8, path.name


def test_console_commands_name_functions_the_packages_define() -> None:
    commands = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name, target in commands.items():
        module, function = target.split(":")
        tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
        assert any(isinstance(node, ast.FunctionDef) and node.name == function for node in tree.body), name


def test_no_code_edits_sys_path() -> None:
    """The project is installed (pip install -e .): imports need no path edits."""
    edits = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in [ROOT / "app.py", *sources(*RUNTIME, *TOOLING, "scripts")]
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "sys.path" in line
        and not line.lstrip().startswith(("#", "``"))
        # bench_import's probe runs in a clean ``python -I -S`` holding only an unpacked
        # Lambda zip: it puts the zip on the path as Lambda's bootstrap puts /var/task.
        and not (path.name == "bench_import.py" and "sys.path.insert(0, {root!r})" in line)
    ]
    assert edits == []


def test_the_runtime_imports_no_tooling() -> None:
    """What ships to Lambda (app.py, chalicelib, processors) never imports the tooling beside it."""
    pattern = re.compile(rf"^\s*(?:from|import)\s+({'|'.join(TOOLING)}|scripts)\b", re.MULTILINE)
    offenders = [
        str(path.relative_to(ROOT))
        for path in [ROOT / "app.py", *sources(*RUNTIME)]
        if pattern.search(path.read_text())
    ]
    assert offenders == []

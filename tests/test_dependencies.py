"""What the code imports is what pyproject.toml declares, and what it ships is what exists."""

from __future__ import annotations

import ast
import importlib.metadata
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from validators.cli import PIPELINE_MODULES

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
OWN = {"validators", "flows", "fixtures", "__future__"}  # the demo (flows/devharness) uses fixtures
# Declared but never imported by name, and why.
NOT_IMPORTED = {
    "psycopg": "SQLAlchemy's PostgreSQL driver, chosen by the index URL",
    "asyncpg": "the Prefect server's PostgreSQL driver, chosen by its database URL",
    "python-multipart": "Starlette parses the workbench's forms with it (request.form())",
}


def _declared(extra: str | None = None) -> set[str]:
    project = PYPROJECT["project"]
    requirements = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def _third_party_imports(paths: Iterable[Path]) -> dict[str, set[str]]:
    """Top-level modules imported anywhere in these files (inside functions too) -> the files."""
    found: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module.split(".")[0]]
            else:
                continue
            for name in names:
                if name not in sys.stdlib_module_names and name not in OWN:
                    found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def _distributions_of(module: str) -> set[str]:
    return {canonicalize_name(d) for d in importlib.metadata.packages_distributions().get(module, [])}


def _modules_of(distributions: set[str]) -> set[str]:
    return {
        module
        for module, dists in importlib.metadata.packages_distributions().items()
        if {canonicalize_name(d) for d in dists} & distributions and not module.startswith("_")
    }


@pytest.mark.parametrize(
    ("package", "allowed"), [("validators", (None,)), ("flows", (None, "pipeline"))], ids=["engine", "pipeline"]
)
def test_every_import_is_declared(package: str, allowed: tuple[str | None, ...]) -> None:
    """The engine imports core dependencies only; the pipeline core or ``pipeline`` extra ones."""
    declared = set().union(*(_declared(extra) for extra in allowed))
    imports = _third_party_imports((ROOT / package).rglob("*.py"))
    undeclared = {
        module: sorted(files) for module, files in imports.items() if not _distributions_of(module) & declared
    }
    assert undeclared == {}


def test_every_declared_dependency_is_imported() -> None:
    """A dependency no module imports is dead weight for every install (xmlschema was one)."""
    imported = set().union(
        *(
            _distributions_of(m)
            for m in _third_party_imports([*ROOT.glob("validators/**/*.py"), *ROOT.glob("flows/**/*.py")])
        )
    )
    unused = (_declared() | _declared("pipeline")) - imported - set(NOT_IMPORTED)
    assert unused == set()


def test_the_cli_knows_the_pipeline_modules() -> None:
    """``proofcheck`` names the missing extra when a pipeline command runs without it."""
    pipeline = _modules_of(_declared("pipeline"))
    assert set(PIPELINE_MODULES) <= pipeline
    assert {
        m for m in _third_party_imports(ROOT.glob("flows/**/*.py")) if _distributions_of(m) & _declared("pipeline")
    } <= (PIPELINE_MODULES)


def test_a_pipeline_command_without_the_pipeline_install_says_so() -> None:
    code = (
        "import sys\n"
        "for name in ('prefect', 'boto3', 'botocore', 'sqlalchemy'):\n"
        "    sys.modules[name] = None  # what an install without the extra finds\n"
        "from validators.cli import main\n"
        "sys.exit(main(['reindex']))\n"
    )
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert answer.returncode == 2, answer.stderr[-2000:]
    assert "pip install 'proofcheck[pipeline]'" in answer.stderr
    assert "Traceback" not in answer.stderr


def test_package_data_exists_and_covers_every_data_file() -> None:
    """Each package-data pattern ships something, and nothing the code reads is left out of a wheel."""
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]
    covered: set[Path] = set()
    for package, globs in patterns.items():
        base = ROOT.joinpath(*package.split("."))
        for pattern in globs:
            matched = {p for p in base.glob(pattern) if p.is_file()}
            assert matched, f"{package}: {pattern} matches no file"
            covered |= matched
    data = {
        p
        for top in ("validators", "flows")
        for p in (ROOT / top).rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and p.suffix != ".md" and "__pycache__" not in p.parts
    }
    assert sorted(str(p.relative_to(ROOT)) for p in data - covered) == []


def test_production_code_does_not_import_the_development_harness() -> None:
    """flows/devharness starts local stand-ins (moto, a private Postgres...): production never needs it.

    Only the `proofcheck demo` command (flows/cli.py) reaches it, inside its handler.
    """
    import ast

    allowed = {ROOT / "flows" / "cli.py"}
    found = []
    for path in sorted([*(ROOT / "flows").rglob("*.py"), *(ROOT / "validators").rglob("*.py")]):
        if "devharness" in path.parts or path in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            found += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.startswith("flows.devharness")]
    assert found == []

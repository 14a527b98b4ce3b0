"""Guards on the environment: our `validators`/`flows` are the ones imported, and the engine stays pure."""

from __future__ import annotations

import ast
import importlib.metadata
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import flows
import validators

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["validators", "flows"])
def test_pypi_namesake_is_not_installed(name: str) -> None:
    """PyPI has packages named `validators` and `flows`: installed beside ours, they would shadow it."""
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution(name)
    owners = importlib.metadata.packages_distributions().get(name, [])
    assert set(owners) <= {"proofcheck"}, f"{name} is provided by {owners}"


def test_our_packages_are_imported() -> None:
    assert Path(validators.__file__).resolve().parent == ROOT / "validators"
    assert Path(flows.__file__).resolve().parent == ROOT / "flows"


def _imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_engine_source_never_imports_the_pipeline() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports_of(path) & {"prefect", "boto3", "botocore", "flows"})
        for path in (ROOT / "validators").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_every_engine_module_loads_no_pipeline_library() -> None:
    modules = [m.name for m in pkgutil.walk_packages(validators.__path__, "validators.")]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('prefect', 'boto3', 'botocore'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == ""

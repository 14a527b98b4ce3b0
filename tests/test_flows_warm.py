"""Pure parts of the warm executor (the pool itself runs in test_flows_e2e.py against a Prefect server;
the Prefect behaviours it relies on are checked in test_prefect_compat.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from flows.settings import PipelineSettings

ROOT = Path(__file__).resolve().parents[1]


def test_the_executor_is_chosen_by_environment() -> None:
    assert PipelineSettings.from_env({}).executor == "warm"
    assert PipelineSettings.from_env({"PROOFCHECK_EXECUTOR": "process"}).executor == "process"
    with pytest.raises(ValueError, match="PROOFCHECK_EXECUTOR"):
        PipelineSettings.from_env({"PROOFCHECK_EXECUTOR": "threads"})


def _private_prefect_names(path: Path) -> list[str]:
    """Imports of private Prefect modules or names, and ``sys.modules`` look-ups of Prefect modules."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("prefect"):
            names = [a.name for a in node.names]
            if "._" in f".{node.module}" or any(n.startswith("_") for n in names):
                found.append(f"from {node.module} import {', '.join(names)}")
        elif isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.startswith("prefect") and "._" in a.name]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("prefect._"):
            found.append(repr(node.value))
    return found


def test_only_the_compat_module_touches_prefect_internals() -> None:
    """Whatever relies on Prefect beyond its API lives in flows/prefect_compat.py (checked there)."""
    compat = ROOT / "flows" / "prefect_compat.py"
    sources = [*(ROOT / "flows").rglob("*.py"), *(ROOT / "validators").rglob("*.py"), ROOT / "tests" / "conftest.py"]
    offenders = {
        str(p.relative_to(ROOT)): names for p in sources if p != compat and (names := _private_prefect_names(p))
    }
    assert offenders == {}
    assert _private_prefect_names(compat), "the check above finds nothing: it is broken"


def _module_patches(source: str, modules: set[str]) -> list[str]:
    """Assignments to an attribute of an imported module (``ssl.x = ...``, ``setattr(ssl, ...)``)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr" and node.args:
            targets = [ast.Attribute(value=node.args[0], attr="?")]
        found += [
            f"{t.value.id}.{t.attr}"
            for t in targets
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id in modules
        ]
    return found


def test_no_process_wide_patch_of_the_tls_or_http_stack() -> None:
    """Prefect's clients are shared in the warm processes (flows.prefect_compat), not by patching ssl."""
    modules = {"ssl", "socket", "httpx", "certifi", "prefect"}
    assert sorted(_module_patches("setattr(ssl, 'create_default_context', f)\nssl.x = 1\n", modules)) == [
        "ssl.?",
        "ssl.x",
    ]
    sources = [*(ROOT / "flows").rglob("*.py"), *(ROOT / "validators").rglob("*.py")]
    offenders = {
        str(p.relative_to(ROOT)): found for p in sources if (found := _module_patches(p.read_text("utf-8"), modules))
    }
    assert offenders == {}

"""Session-wide services for the tests: a private clamd (real ClamAV) and a synced CDA ruleset."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def clamd_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Settings pointing the antivirus at a private clamd with the project's test signatures."""
    from validators.ssi import clamd_manager

    if clamd_manager.clamd_binary() is None:
        pytest.skip("ClamAV is not installed (tools/install-system-deps.sh installs clamav-daemon)")
    with clamd_manager.private_clamd(tmp_path_factory.mktemp("clamd")) as settings:
        yield settings


SHARED = Path(__file__).resolve().parents[1].parent / "shared"
ANS_TREE = SHARED / "ans" / "TestContenuCDA-3-0"


@pytest.fixture(scope="session")
def synced_rulesets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ruleset store synced once per test session from the ANS reference tree (~10 s: compile)."""
    from validators.cda.store import RulesetStore
    from validators.cda.sync import sync

    if not ANS_TREE.is_dir():
        pytest.skip(f"ANS reference tree absent ({ANS_TREE})")
    root = tmp_path_factory.mktemp("rulesets")
    sync(str(ANS_TREE), RulesetStore(root))
    return root


@pytest.fixture(scope="session")
def ruleset_settings(synced_rulesets: Path) -> dict[str, Any]:
    return {"rulesets_dir": str(synced_rulesets)}


def pytest_unconfigure(config: pytest.Config) -> None:
    """Drop what Prefect's log and event workers of this process still hold for the test servers.

    Flows run in-process by the tests log to Prefect servers that the fixtures have stopped by now: at
    interpreter exit Prefect would try to deliver each item and wait out each connection failure (seen:
    ~90 items, minutes after the last test). Relies on Prefect internals: flows.prefect_compat.
    """
    import sys

    if "prefect" in sys.modules:
        from flows.prefect_compat import abandon_undelivered

        abandon_undelivered()

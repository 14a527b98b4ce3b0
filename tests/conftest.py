"""Session-wide services for the tests: a private clamd (real ClamAV), a synced CDA ruleset, and a home
of their own (nothing a test does reads or writes the user's home or ruleset store)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.ans import ANS_TREE, ans_tree_absent

# Set before collection (test modules read settings at import) and inherited by every subprocess a test
# starts: a ruleset synced by hand into ~/.local/share/proofcheck, or a Prefect profile in ~/.prefect,
# can never change a test's outcome, and no test writes there.
_ISOLATED = ("PROOFCHECK_HOME", "PROOFCHECK_RULESETS", "PREFECT_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME",
             "XDG_CONFIG_HOME")
_saved_env: dict[str, str | None] = {}
_session_home: list[Path] = []


def pytest_configure(config: pytest.Config) -> None:
    home = Path(tempfile.mkdtemp(prefix="proofcheck-tests-home-"))
    _session_home.append(home)
    values = {
        "PROOFCHECK_HOME": home / "proofcheck",
        "PROOFCHECK_RULESETS": home / "proofcheck" / "rulesets",
        "PREFECT_HOME": home / "prefect",
        "XDG_CACHE_HOME": home / "cache",
        "XDG_DATA_HOME": home / "data",
        "XDG_CONFIG_HOME": home / "config",
    }
    for name in _ISOLATED:
        _saved_env[name] = os.environ.get(name)
        os.environ[name] = str(values[name])


@pytest.fixture(scope="session")
def clamd_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Settings pointing the antivirus at a private clamd with the project's test signatures."""
    from validators.ssi import clamd_manager

    if clamd_manager.clamd_binary() is None:
        pytest.skip("ClamAV is not installed (tools/install-system-deps.sh installs clamav-daemon)")
    with clamd_manager.private_clamd(tmp_path_factory.mktemp("clamd")) as settings:
        yield settings


@pytest.fixture(scope="session")
def synced_rulesets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ruleset store synced once per test session from the ANS reference tree (~10 s: compile)."""
    from validators.cda.store import RulesetStore
    from validators.cda.sync import sync

    absent = ans_tree_absent()
    if absent:
        pytest.skip(absent)
    root = tmp_path_factory.mktemp("rulesets")
    sync(str(ANS_TREE), RulesetStore(root))
    return root


@pytest.fixture(scope="session")
def ruleset_settings(synced_rulesets: Path) -> dict[str, Any]:
    return {"rulesets_dir": str(synced_rulesets)}


def pytest_unconfigure(config: pytest.Config) -> None:
    _restore_home()
    _drop_prefect_backlog()


def _restore_home() -> None:
    for name, value in _saved_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    for home in _session_home:
        shutil.rmtree(home, ignore_errors=True)


def _drop_prefect_backlog() -> None:
    """Drop what Prefect's log and event workers of this process still hold for the test servers.

    Flows run in-process by the tests log to Prefect servers that the fixtures have stopped by now: at
    interpreter exit Prefect would try to deliver each item and wait out each connection failure (seen:
    ~90 items, minutes after the last test). Relies on Prefect internals: flows.prefect_compat.
    """
    import sys

    if "prefect" in sys.modules:
        from flows.prefect_compat import abandon_undelivered

        abandon_undelivered()

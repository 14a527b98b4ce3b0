"""Session-wide services for the tests: a private clamd (real ClamAV) and a synced CDA ruleset."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def clamd_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Settings pointing the antivirus at a private clamd with the project's test signatures."""
    from validators.ssi import clamd_manager

    if clamd_manager.clamd_binary() is None:
        pytest.skip("ClamAV is not installed (tools/install-system-deps.sh installs clamav-daemon)")
    with clamd_manager.private_clamd(tmp_path_factory.mktemp("clamd")) as settings:
        yield settings

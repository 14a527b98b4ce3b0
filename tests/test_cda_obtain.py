"""How a first run obtains its CDA ruleset (validators/cda/obtain.py, used by `make demo`): the ANS
repository, then $PROOFCHECK_RULESET_SOURCE, then the tree beside the clone; cached; one line; the ruleset
in force kept when every source fails. Synthetic trees (fixtures/cda_tree.py): runs everywhere."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_cda_sync_bad_input import zipped
from test_valuesets_sync_support import http_folder

from fixtures.cda_tree import write_tree
from validators.cda.obtain import SOURCE_ENV, Source, default_sources, obtain
from validators.cda.store import RulesetStore

UNREACHABLE = Source("the ANS repository", "https://127.0.0.1:9/TestContenuCDA.zip")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(tmp_path_factory.mktemp("tree"))


def test_sources_in_order_and_what_is_not_configured(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SOURCE_ENV, raising=False)
    sources = default_sources(tree)
    assert [s.label for s in sources] == ["the ANS repository", SOURCE_ENV, "the ANS tree beside the clone"]
    assert sources[0].location and sources[0].location.startswith("https://")
    assert sources[1].location is None and sources[2].location == str(tree)
    monkeypatch.setenv(SOURCE_ENV, "/some/tree")
    assert default_sources(None)[1].location == "/some/tree" and default_sources(None)[2].location is None


def test_unreachable_repository_then_the_named_tree(tree: Path, tmp_path: Path) -> None:
    store = RulesetStore(tmp_path / "store")
    got = obtain(store, [UNREACHABLE, Source(SOURCE_ENV, str(tree))], timeout=2)
    assert got.version is not None and got.version == store.latest()
    assert "\n" not in got.line and got.line.startswith(f"ruleset {got.name} from {SOURCE_ENV}, synced in")
    assert "the ANS repository: cannot download" in got.line
    again = obtain(store, [UNREACHABLE, Source(SOURCE_ENV, str(tree))], timeout=2)
    assert again.name == got.name and "already synced" in again.line and len(store.versions()) == 1


def test_repository_sync_is_cached_for_a_day(tree: Path, tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "main.zip").write_bytes(zipped(tree))
    store = RulesetStore(tmp_path / "store")
    with http_folder(served) as url:
        source = Source("the ANS repository", f"{url}/main.zip")
        first = obtain(store, [source])
    assert first.version is not None and "synced in" in first.line
    # The server is gone: the version synced from it less than a day ago is used without asking it.
    second = obtain(store, [source])
    assert second.name == first.name and "(cached, synced" in second.line


def test_every_source_failing_keeps_the_ruleset_in_force(tree: Path, tmp_path: Path) -> None:
    store = RulesetStore(tmp_path / "store")
    in_force = obtain(store, [Source("tree", str(tree))]).name
    broken = tmp_path / "broken"
    shutil.copytree(tree, broken)
    shutil.rmtree(broken / "schematrons" / "moteur")
    got = obtain(store, [UNREACHABLE, Source(SOURCE_ENV, None), Source("the tree beside", str(broken))], timeout=2)
    assert got.name == in_force and got.line.startswith(f"ruleset {in_force} kept in force (")
    assert f"{SOURCE_ENV}: not set" in got.line and "no schematron of the tree compiles" in got.line
    assert len(store.versions()) == 1


def test_nothing_at_all_is_said_in_one_line(tmp_path: Path) -> None:
    got = obtain(RulesetStore(tmp_path / "store"), [UNREACHABLE, Source(SOURCE_ENV, None),
                                                    Source("the ANS tree beside the clone", None)], timeout=2)
    assert got.version is None and got.name == "none" and "\n" not in got.line
    assert got.line.startswith("no CDA ruleset (the ANS repository: cannot download")
    assert "the ANS tree beside the clone: absent" in got.line
    assert "report themselves not run" in got.line and "come out error" in got.line

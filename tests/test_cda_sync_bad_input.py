"""`proofcheck rulesets sync` on bad sources: unreachable or slow repository, truncated zip, a tree without
schematrons, without a usable XSD or whose schematrons do not compile. Each is one line saying what
happened, exit 1, no traceback, and the ruleset in force stays in force. Runs without the ANS tree: the
trees are written by tests/test_cda_volets.py's helper."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from test_valuesets_sync_support import http_folder, serve

from fixtures.cda_tree import write_tree
from validators.cda.store import RulesetStore
from validators.cda.sync import SyncError, sync


def zipped(tree: Path) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(tree.rglob("*")):
            if path.is_file():
                archive.write(path, f"TestContenuCDA-3-0-main/{path.relative_to(tree).as_posix()}")
    return out.getvalue()


@pytest.fixture(scope="module")
def good_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(tmp_path_factory.mktemp("good"))


@pytest.fixture
def store_in_force(tmp_path: Path, good_tree: Path) -> RulesetStore:
    store = RulesetStore(tmp_path / "store")
    sync(str(good_tree), store)
    return store


def run_cli(store: RulesetStore, source: str, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "validators.cli", "rulesets", "--store", str(store.root), "sync", "--from", source]
    return subprocess.run([*argv, *extra], capture_output=True, text=True, timeout=120, check=False)


def assert_one_line_and_kept(answer: subprocess.CompletedProcess[str], store: RulesetStore, words: str) -> None:
    assert answer.returncode == 1 and "Traceback" not in answer.stderr
    lines = answer.stderr.strip().splitlines()
    assert len(lines) == 1, answer.stderr
    assert words in lines[0]
    current = store.latest()
    assert current is not None and f"the ruleset in force stays {current.version}" in lines[0]
    assert len(store.versions()) == 1 and not list(store.root.glob(".staging-*"))


def broken_copy(good_tree: Path, target: Path, remove: str = "", write: tuple[str, str] | None = None) -> Path:
    shutil.copytree(good_tree, target)
    if remove:
        removed = target / remove
        shutil.rmtree(removed) if removed.is_dir() else removed.unlink()
    if write:
        (target / write[0]).write_text(write[1], "utf-8")
    return target


@pytest.mark.parametrize(
    ("remove", "write", "words"),
    [
        ("schematrons", None, "not a TestContenuCDA-like tree"),
        ("infrastructure/cda/CDA_extended.xsd", None, "not a TestContenuCDA-like tree"),
        ("", ("infrastructure/cda/CDA_extended.xsd", "<pas-un-schema/>"), "is not a usable schema"),
        ("schematrons/moteur", None, "no schematron of the tree compiles"),
    ],
    ids=["no-schematrons", "no-xsd", "bad-xsd", "no-engine"],
)
def test_a_tree_the_checks_cannot_use_is_refused(
    store_in_force: RulesetStore, good_tree: Path, tmp_path: Path, remove: str, write: tuple[str, str] | None,
    words: str,
) -> None:
    tree = broken_copy(good_tree, tmp_path / "broken", remove, write)
    assert_one_line_and_kept(run_cli(store_in_force, str(tree)), store_in_force, words)


def test_a_tree_without_volets_is_refused(store_in_force: RulesetStore, good_tree: Path, tmp_path: Path) -> None:
    tree = broken_copy(good_tree, tmp_path / "broken")
    for sch in (tree / "schematrons").glob("CI-SIS_*.sch"):
        sch.unlink()
    assert_one_line_and_kept(run_cli(store_in_force, str(tree)), store_in_force, "no CI-SIS volet schematron")


def test_truncated_and_corrupted_zips_are_refused(
    store_in_force: RulesetStore, good_tree: Path, tmp_path: Path
) -> None:
    whole = zipped(good_tree)
    served = tmp_path / "served"
    served.mkdir()
    (served / "tronque.zip").write_bytes(whole[: len(whole) // 2])
    # The central directory intact, the compressed data of the largest member overwritten.
    with zipfile.ZipFile(io.BytesIO(whole)) as archive:
        info = max(archive.infolist(), key=lambda i: i.compress_size)
    data = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 100
    (served / "corrompu.zip").write_bytes(whole[:data] + bytes(range(200)) + whole[data + 200 :])
    with http_folder(served) as url:
        truncated = run_cli(store_in_force, f"{url}/tronque.zip")
        corrupted = run_cli(store_in_force, f"{url}/corrompu.zip")
    assert_one_line_and_kept(truncated, store_in_force, "not a readable zip archive")
    assert_one_line_and_kept(corrupted, store_in_force, "archive")
    # zlib refuses the data, or the member's CRC does not match: either way, said, not a traceback.
    assert "truncated or corrupted" in corrupted.stderr or "Bad CRC-32" in corrupted.stderr


def test_unreachable_repository(store_in_force: RulesetStore) -> None:
    answer = run_cli(store_in_force, "https://127.0.0.1:9/TestContenuCDA.zip", "--timeout", "2")
    assert_one_line_and_kept(answer, store_in_force, "cannot download")


@pytest.fixture
def trickling_server() -> Iterator[str]:
    class Trickle(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            try:
                for _ in range(60):  # one byte a second: each read answers within the socket timeout
                    self.wfile.write(b"P")
                    self.wfile.flush()
                    time.sleep(1)
            except OSError:
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serve(Trickle) as url:
        yield url


def test_slow_repository_ends_at_the_total_timeout(store_in_force: RulesetStore, trickling_server: str) -> None:
    started = time.monotonic()
    answer = run_cli(store_in_force, f"{trickling_server}/main.zip", "--timeout", "5", "--total-timeout", "3")
    assert time.monotonic() - started < 30
    assert_one_line_and_kept(answer, store_in_force, "no complete answer within 3 s")


def test_sync_error_never_leaves_a_staging_folder(tmp_path: Path) -> None:
    store = RulesetStore(tmp_path / "store")
    with pytest.raises(SyncError):
        sync(str(tmp_path / "absent"), store)
    assert store.latest() is None and not list(store.root.glob(".staging-*"))

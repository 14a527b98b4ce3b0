"""Every S3 call of the pipeline: packages in, verdicts out, tags, quarantine, event notifications.

S3-generic on purpose: it runs against AWS S3, SeaweedFS, Ceph RGW or moto. Tags, versioning,
conditional writes and bucket notifications are used when the server has them and skipped (with a log
line) when it does not: the record of truth is the verdict object, never a tag.

Bucket layout (one bucket, prefixes configurable in ``Layout``)::

    inbox/<publisher>/<package>.zip            submissions (instructors' side)
    inbox/<publisher>/<package>/...            a submission uploaded as a folder of proof objects ...
    inbox/<publisher>/<package>/_READY         ... validated once this marker is written (last)
    dryrun/<publisher>/<package>.zip|/         publishers' dry runs (never in the instructors' index)
    reports/<package key>/<version>/<ruleset>.json|.html   one verdict per package version and ruleset ...
    reports/<package key>/<version>/<ruleset>.retry-<n>.json|.html  ... and one per re-run of an incomplete one
    reports/index.html                         the instructors' index of submissions
    quarantine/<package key>                   packages with an ``ssi.*`` error, moved out of the inbox

Two package forms. A **zip** is one object: its key names the package and its version (S3 version id,
else ETag) names the version validated; the zip object is tagged with the package status. A **folder**
is every object under ``<area>/<publisher>/<package>/``; the publisher writes the ``_READY`` marker
(any content, e.g. empty) after the last proof object. The marker is the package object: its key and
version name the folder package in reports and idempotency keys (rewriting it asks for a new
validation of the folder as it then is); the members are read as they are when the run starts. After
the verdict, each proof object is tagged with *its proof's* status (a file outside any proof: its own
status) and the marker with the package status. Objects deeper than ``<publisher>/`` with no marker
are members waiting for it: events for them are ignored, and the reconcile validates each one as a
single-object package once it has waited ``folder_grace`` seconds with no marker (never silently
skipped: a folder whose marker never comes gets a verdict per object, saying they are not packages).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

from flows.settings import PipelineSettings
from validators.attest.seal import ATTESTATION_SUFFIX

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
MARKER = "_READY"  # written last by the publisher: the folder package above it is complete
MAX_FOLDER_FILES = 10_000
MAX_MEMBER_PATH = 1024
TAG_STATUS = "proofcheck-status"
TAG_RULESET = "proofcheck-ruleset"
TAG_QUARANTINE = "proofcheck-quarantine"
# "full" once every check ran on the package (flows/completeness.py), else "incomplete": the bucket policy
# gives instructors a package only with "full" (a missing tag counts as not checked).
TAG_CHECKED = "proofcheck-checked"
_OUR_TAGS = (TAG_STATUS, TAG_RULESET, TAG_QUARANTINE, TAG_CHECKED)
RETRY_MARK = ".retry-"  # <ruleset>.retry-<n>.json: the n-th verdict of a version, stored by a re-run
_RETRY_KEY = re.compile(re.escape(RETRY_MARK) + r"(\d+)\.json$")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MISSING_CODES = {"NoSuchKey", "404", "NotFound", "NoSuchVersion"}
_TRANSIENT_CODES = {
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "Throttling",
    "ThrottlingException",
    "500",
    "502",
    "503",
    "504",
}


def _iso(moment: Any) -> str | None:
    """S3's LastModified (a datetime from boto3) as ISO 8601 UTC text that sorts in time order."""
    if moment is None or not hasattr(moment, "astimezone"):
        return None
    return str(moment.astimezone(UTC).isoformat(timespec="seconds"))


class StorageError(Exception):
    """A storage operation failed for good (not worth retrying)."""


class TransientStorageError(StorageError):
    """A storage operation failed in a way that a retry may fix (5xx, throttling, connection reset)."""


class PackageGoneError(StorageError):
    """The package object (or the version asked for) no longer exists."""


class PackageTooLargeError(StorageError):
    """The package is over the size limit: it is not downloaded."""


class UnsafeMemberError(StorageError):
    """A folder package holds an object whose name cannot be a local path (``..``, empty segment...)."""


def _previous_of(document: bytes) -> str | None:
    """The previous verdict a stored verdict names (its ``chain`` section), if readable."""
    try:
        chain = json.loads(document).get("chain") or {}
    except (ValueError, AttributeError):
        return None
    previous = chain.get("previous_sha256") if isinstance(chain, dict) else None
    return previous if isinstance(previous, str) else None


def retry_attempt(json_key: str) -> int:
    """The re-run number of a verdict key (0: the version's first run or a re-validation)."""
    found = _RETRY_KEY.search(json_key)
    return int(found.group(1)) if found else 0


def safe_segment(text: str) -> str:
    """A key segment made only of unreserved characters (version ids, ruleset versions)."""
    return _SAFE.sub("_", text).strip("_") or "none"


@dataclass(frozen=True)
class Layout:
    inbox: str = "inbox/"
    dryrun: str = "dryrun/"
    reports: str = "reports/"
    quarantine: str = "quarantine/"

    def area_of(self, key: str) -> str | None:
        """``inbox`` or ``dryrun`` for a package key, None for anything else (reports, folders...)."""
        if key.endswith("/"):
            return None
        if key.startswith(self.inbox) and len(key) > len(self.inbox):
            return "inbox"
        if key.startswith(self.dryrun) and len(key) > len(self.dryrun):
            return "dryrun"
        return None

    def publisher_of(self, key: str) -> str | None:
        """The first folder under the area (``inbox/<publisher>/...``), if the key has one."""
        area = self.area_of(key)
        if area is None:
            return None
        rest = key[len(self.inbox if area == "inbox" else self.dryrun) :]
        return rest.split("/", 1)[0] if "/" in rest else None

    def folder_of(self, key: str) -> str | None:
        """``<area>/<publisher>/<package>/`` for a key inside a folder package, None for anything else."""
        area = self.area_of(key)
        if area is None:
            return None
        prefix = self.inbox if area == "inbox" else self.dryrun
        parts = key[len(prefix) :].split("/")
        if len(parts) < 3:
            return None
        return f"{prefix}{parts[0]}/{parts[1]}/"

    def is_marker(self, key: str) -> bool:
        """The key that names a folder package (its completion marker)."""
        folder = self.folder_of(key)
        return folder is not None and key == folder + MARKER

    def is_member(self, key: str) -> bool:
        """An object of a folder package (not a package by itself while its folder may get a marker)."""
        return self.folder_of(key) is not None and not self.is_marker(key)

    def reports_prefix(self, key: str, token: str) -> str:
        return f"{self.reports}{key}/{token}/"

    def verdict_keys(self, key: str, token: str, ruleset_version: str, attempt: int = 0) -> tuple[str, str]:
        """JSON and HTML keys of a verdict; ``attempt`` > 0: the re-run that stores the version's n-th one.

        A re-run after an incomplete verdict (flows/retry.py) may use the same ruleset: the attempt keeps
        its key apart, so the earlier verdict is never overwritten (history kept).
        """
        base = self.reports_prefix(key, token) + safe_segment(ruleset_version)
        if attempt:
            base += f"{RETRY_MARK}{attempt:04d}"
        return base + ".json", base + ".html"

    def quarantine_key(self, key: str) -> str:
        return self.quarantine + key

    @property
    def index_html(self) -> str:
        return self.reports + "index.html"


@dataclass(frozen=True)
class PackageRef:
    """One version of one uploaded package."""

    bucket: str
    key: str
    etag: str
    version_id: str | None = None
    size: int = -1
    # When this version was uploaded (S3 LastModified, ISO 8601 UTC) where known: orders the versions of
    # a key in the index. Not part of the identity: refs from an event and from a HEAD compare equal.
    last_modified: str | None = field(default=None, compare=False)

    @property
    def token(self) -> str:
        """What names this version in report keys: the S3 version id, else the ETag."""
        if self.version_id and self.version_id != "null":
            return "v-" + safe_segment(self.version_id)
        return "e-" + safe_segment(self.etag)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def idempotency_key(self, attempt: int = 0, retry: int = 0) -> str:
        """The same package version always gives the same key; a new version a new one.

        ``retry``: the re-run of an incomplete verdict that stores the version's ``retry``-th verdict
        (flows/retry.py); ``attempt``: the dispatch attempt of that run.
        """
        digest = hashlib.sha256(f"{self.bucket}\0{self.key}\0{self.token}".encode()).hexdigest()[:32]
        return f"proofcheck:{digest}:r{retry}:{attempt}" if retry else f"proofcheck:{digest}:{attempt}"


@dataclass(frozen=True)
class Member:
    """One object of a folder package, as read for a run."""

    key: str
    path: str  # relative to the package folder: the path the verdict names
    etag: str
    version_id: str | None
    size: int


def member_path(folder: str, key: str) -> str:
    """The local relative path of a member; refuses what could leave the folder or is not a plain name."""
    path = key[len(folder) :]
    parts = path.split("/")
    if (
        not path
        or len(path) > MAX_MEMBER_PATH
        or any(part in {"", ".", ".."} or "\0" in part or "\\" in part for part in parts)
    ):
        raise UnsafeMemberError("a member name is not a plain relative path")
    return path


@dataclass(frozen=True)
class ObjectEvent:
    """An ObjectCreated notification, as S3 (or a compatible server) sends it."""

    bucket: str
    key: str
    etag: str | None
    version_id: str | None
    size: int | None
    sequencer: str | None


def parse_s3_event(body: str) -> list[ObjectEvent]:
    """ObjectCreated records of an S3 event notification (SNS-wrapped or not); anything else is skipped."""
    try:
        document = json.loads(body)
    except json.JSONDecodeError:
        return []
    if isinstance(document, dict) and isinstance(document.get("Message"), str):  # via SNS
        return parse_s3_event(document["Message"])
    records = document.get("Records") if isinstance(document, dict) else None
    if not isinstance(records, list):
        return []  # e.g. the s3:TestEvent sent when notifications are configured
    events = []
    for record in records:
        try:
            if not str(record.get("eventName", "")).startswith("ObjectCreated"):
                continue
            s3 = record["s3"]
            obj = s3["object"]
            events.append(
                ObjectEvent(
                    bucket=s3["bucket"]["name"],
                    key=urllib.parse.unquote_plus(obj["key"]),
                    etag=(obj.get("eTag") or None) and str(obj["eTag"]).strip('"'),
                    version_id=obj.get("versionId") or None,
                    size=obj.get("size"),
                    sequencer=obj.get("sequencer"),
                )
            )
        except (KeyError, TypeError, AttributeError):
            log.warning("skipped a malformed S3 event record")
    return events


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def classify(exc: Exception, what: str) -> StorageError:
    """Turn a botocore exception into our small hierarchy; the message never holds object content."""
    if isinstance(exc, ClientError):
        code, status = _code(exc), _status(exc)
        if code in _MISSING_CODES or status == 404:
            return PackageGoneError(f"{what}: not found ({code or status})")
        if code in _TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientStorageError(f"{what}: {code or status}")
        return StorageError(f"{what}: {code or status}")
    if isinstance(exc, ConnectionError | HTTPClientError):
        return TransientStorageError(f"{what}: {type(exc).__name__}")
    if isinstance(exc, BotoCoreError):
        return StorageError(f"{what}: {type(exc).__name__}")
    return StorageError(f"{what}: {type(exc).__name__}")


def make_client(settings: PipelineSettings, service: str = "s3") -> Any:
    """A boto3 client with bounded timeouts and botocore's own retries for throttling and 5xx."""
    config = Config(
        connect_timeout=5,
        read_timeout=60,
        retries={"max_attempts": 4, "mode": "standard"},
        s3={"addressing_style": "path"},
    )
    return boto3.session.Session().client(
        service, endpoint_url=settings.s3_endpoint, region_name=settings.s3_region, config=config
    )


class Store:
    """The bucket, seen through the layout."""

    def __init__(self, client: Any, bucket: str, layout: Layout | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.layout = layout or Layout()
        self._versioned: bool | None = None
        self._tags_supported = True

    @classmethod
    def connect(cls, settings: PipelineSettings, bucket: str | None = None) -> Store:
        return cls(make_client(settings), bucket or settings.bucket)

    # -- setup --------------------------------------------------------------------------------------

    def ensure_bucket(self, *, versioning: bool = True) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)
        if versioning:
            try:
                self.client.put_bucket_versioning(
                    Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"}
                )
            except ClientError as exc:
                log.warning("bucket versioning unavailable (%s): ETags name package versions", _code(exc))
        self._versioned = None

    def configure_notifications(self, queue_arn: str) -> bool:
        """Send ObjectCreated events of both package areas to a queue; False if the server cannot."""
        configs = [
            {
                "Id": f"proofcheck-{area.strip('/')}",
                "QueueArn": queue_arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": area}]}},
            }
            for area in (self.layout.inbox, self.layout.dryrun)
        ]
        try:
            self.client.put_bucket_notification_configuration(
                Bucket=self.bucket, NotificationConfiguration={"QueueConfigurations": configs}
            )
        except ClientError as exc:
            log.warning("bucket notifications unavailable (%s): intake relies on reconcile", _code(exc))
            return False
        return True

    @property
    def versioned(self) -> bool:
        if self._versioned is None:
            try:
                answer = self.client.get_bucket_versioning(Bucket=self.bucket)
                self._versioned = answer.get("Status") == "Enabled"
            except ClientError:
                self._versioned = False
        return self._versioned

    # -- packages -----------------------------------------------------------------------------------

    def head(self, key: str, version_id: str | None = None) -> PackageRef:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id and version_id != "null":
            kwargs["VersionId"] = version_id
        try:
            answer = self.client.head_object(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, "head package") from None
        return PackageRef(
            bucket=self.bucket,
            key=key,
            etag=str(answer.get("ETag", "")).strip('"'),
            version_id=answer.get("VersionId") or None,
            size=int(answer.get("ContentLength", -1)),
            last_modified=_iso(answer.get("LastModified")),
        )

    def resolve(self, key: str, version_id: str | None, etag: str | None) -> PackageRef:
        """The version an event names: by version id, else by ETag (servers such as moto send no id).

        Raises PackageGoneError when that version no longer exists.
        """
        if version_id and version_id != "null":
            return self.head(key, version_id)
        try:
            current: PackageRef | None = self.head(key)
        except PackageGoneError:
            current = None
        if current is not None and (not etag or current.etag == etag):
            return current
        if self.versioned and etag:
            try:
                pages = self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key)
                for page in pages:
                    for item in page.get("Versions", []):
                        if item["Key"] == key and str(item.get("ETag", "")).strip('"') == etag:
                            return PackageRef(
                                self.bucket, key, etag, item.get("VersionId") or None, int(item.get("Size", -1)),
                                last_modified=_iso(item.get("LastModified")),
                            )
            except (ClientError, BotoCoreError) as exc:
                raise classify(exc, "list versions") from None
        if current is None or self.versioned:
            raise PackageGoneError("package version not found")
        # Unversioned and overwritten: only the current content can still be read.
        return current

    def download(self, ref: PackageRef, dest: Path, limit: int) -> str:
        """Stream one version to ``dest`` (never more than ``limit`` bytes); returns its sha256."""
        if ref.size > limit:
            raise PackageTooLargeError(f"{ref.size} bytes is over the {limit}-byte limit")
        return self._stream(ref.key, ref.version_id, ref.etag, dest, limit)[1]

    def _stream(self, key: str, version_id: str | None, etag: str, dest: Path, limit: int) -> tuple[int, str]:
        """One object version to ``dest``, at most ``limit`` bytes; (bytes written, sha256)."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id and version_id != "null":
            kwargs["VersionId"] = version_id
        elif etag:
            kwargs["IfMatch"] = f'"{etag}"'  # unversioned: refuse content replaced since the listing
        digest = hashlib.sha256()
        written = 0
        try:
            body = self.client.get_object(**kwargs)["Body"]
            with dest.open("wb") as out:
                for chunk in iter(lambda: body.read(CHUNK), b""):
                    written += len(chunk)
                    if written > limit:
                        raise PackageTooLargeError(f"more than {limit} bytes received")
                    digest.update(chunk)
                    out.write(chunk)
        except ClientError as exc:
            if _code(exc) == "PreconditionFailed":
                raise PackageGoneError("package replaced while being read") from None
            raise classify(exc, "download package") from None
        except BotoCoreError as exc:
            raise classify(exc, "download package") from None
        return written, digest.hexdigest()

    def _latest(self, prefix: str) -> Iterator[tuple[PackageRef, float]]:
        """The current version of every object under ``prefix``, with its last-modified time (epoch s)."""
        return ((ref, modified) for ref, modified, latest in self._listing(prefix) if latest)

    def _listing(self, prefix: str) -> Iterator[tuple[PackageRef, float, bool]]:
        """Every version under ``prefix`` (one paginated listing): (version, last-modified, is current).

        Delete markers are not versions and are skipped. Unversioned: each object is its current version.
        """
        try:
            if self.versioned:
                pages = self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix)
                items = (item for page in pages for item in page.get("Versions", []))
            else:
                pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
                items = (item for page in pages for item in page.get("Contents", []))
            for item in items:
                modified = item.get("LastModified")
                yield (
                    PackageRef(
                        self.bucket,
                        item["Key"],
                        str(item.get("ETag", "")).strip('"'),
                        (item.get("VersionId") or None) if self.versioned else None,
                        int(item.get("Size", -1)),
                    ),
                    modified.timestamp() if modified is not None else 0.0,
                    bool(item.get("IsLatest", True)),
                )
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, "list packages") from None

    def list_packages(
        self, area: str, member_grace: float | None = None, versions_since: float | None = None
    ) -> Iterator[PackageRef]:
        """The current version of every package in an area (``inbox`` or ``dryrun``).

        Packages are zip objects and folder markers. A member of a folder that has no marker is listed
        too, as a package of its own, once it is ``member_grace`` seconds old (None: never).

        ``versions_since`` (epoch s; versioned bucket only): the older versions of zip packages written
        since then are listed too (a version replaced before its event was handled, event lost, is still
        a submission). Folders keep their current version only: a folder is read as it is now, so an
        older marker version could not be validated as it was. Still one listing of the area.
        """
        prefix = self.layout.inbox if area == "inbox" else self.layout.dryrun
        waiting: dict[str, list[tuple[PackageRef, float]]] = {}
        complete: set[str] = set()
        for ref, modified, latest in self._listing(prefix):
            if self.layout.area_of(ref.key) is None:
                continue
            folder = self.layout.folder_of(ref.key)
            if not latest:
                if folder is None and versions_since is not None and modified >= versions_since:
                    yield ref
                continue
            if folder is not None and not self.layout.is_marker(ref.key):
                waiting.setdefault(folder, []).append((ref, modified))
                continue
            if folder is not None:
                complete.add(folder)
            yield ref
        if member_grace is None:
            return
        cutoff = time.time() - member_grace
        for folder, members in waiting.items():
            if folder not in complete:
                yield from (ref for ref, modified in members if modified <= cutoff)

    def members(self, ref: PackageRef) -> list[Member]:
        """The objects of a folder package (its marker excluded), as they are now."""
        folder = self.layout.folder_of(ref.key)
        if folder is None or not self.layout.is_marker(ref.key):
            raise StorageError("not a folder package")
        found: list[Member] = []
        for item, _ in self._latest(folder):
            if item.key == ref.key or item.key.endswith("/"):
                continue
            if len(found) >= MAX_FOLDER_FILES:
                raise PackageTooLargeError(f"more than {MAX_FOLDER_FILES} objects in the folder")
            found.append(Member(item.key, member_path(folder, item.key), item.etag, item.version_id, item.size))
        return found

    def download_folder(self, ref: PackageRef, dest: Path, limit: int) -> list[Member]:
        """Every member of a folder package under ``dest`` (``limit`` bytes in all); the members read."""
        members = self.members(ref)
        if sum(max(m.size, 0) for m in members) > limit:
            raise PackageTooLargeError(f"the folder is over the {limit}-byte limit")
        budget = limit
        for member in members:
            target = dest / member.path
            target.parent.mkdir(parents=True, exist_ok=True)
            written, _ = self._stream(member.key, member.version_id, member.etag, target, budget)
            budget -= written
        return members

    def presigned_get(self, ref: PackageRef, expires: int) -> str:
        """A time-limited GET URL of exactly this version (only ``flows.access.package_link`` calls it)."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": ref.key}
        if ref.version_id and ref.version_id != "null":
            params["VersionId"] = ref.version_id
        try:
            url: str = self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires)
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, "presign package") from None
        return url

    # -- verdicts -----------------------------------------------------------------------------------

    def verdict_keys_of(self, ref: PackageRef) -> list[str]:
        """JSON verdicts already stored for this package version (under any ruleset)."""
        prefix = self.layout.reports_prefix(ref.key, ref.token)
        try:
            answer = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, "list verdicts") from None
        return sorted(item["Key"] for item in answer.get("Contents", []) if item["Key"].endswith(".json"))

    def verdict_listing(self, ref: PackageRef) -> list[tuple[str, float]]:
        """The version's JSON verdicts with their storage time (epoch s), oldest first; the last is current.

        Ordered by S3's LastModified (verdicts are written once, never rewritten), then by re-run number:
        key order alone is not time order (a "none" ruleset sorts after dated ones).
        """
        prefix = self.layout.reports_prefix(ref.key, ref.token)
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            found = [
                (item["Key"], item["LastModified"].timestamp() if item.get("LastModified") else 0.0)
                for page in pages
                for item in page.get("Contents", [])
                if item["Key"].endswith(".json") and "/" not in item["Key"][len(prefix) :]
            ]
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, "list verdicts") from None
        return sorted(found, key=lambda kt: (kt[1], retry_attempt(kt[0]), kt[0]))

    def verdict_keys_for_content(self, key: str, etag: str, limit: int = 100) -> list[str]:
        """JSON verdicts of any version of ``key`` whose stored document names this ETag.

        For an event without a version id (moto, some S3 servers) about a version that is no longer
        there (moved to quarantine, deleted): its verdict is stored under the version id it had.
        """
        prefix = self.layout.reports + key + "/"
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            candidates = [
                item["Key"]
                for page in pages
                for item in page.get("Contents", [])
                if item["Key"].endswith(".json") and item["Key"][len(prefix) :].count("/") == 1
            ]
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, "list verdicts") from None
        found = []
        for json_key in candidates[:limit]:
            try:
                obj = json.loads(self.get_bytes(json_key)).get("object") or {}
            except (StorageError, ValueError, AttributeError):
                continue
            if obj.get("key") == key and str(obj.get("etag")) == etag:
                found.append(json_key)
        return sorted(found)

    def put_verdict(
        self,
        ref: PackageRef,
        ruleset_version: str,
        document: bytes,
        html: bytes,
        attempt: int = 0,
        attestation: bytes | None = None,
    ) -> str | None:
        """Store a verdict once: None if this version already has one under this ruleset (and attempt).

        The conditional write (If-None-Match) makes two racing runs of the same version store one
        verdict; its attestation (``.intoto.jsonl``) and HTML are written after the JSON that won.
        """
        json_key, html_key = self.layout.verdict_keys(ref.key, ref.token, ruleset_version, attempt)
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=json_key,
                Body=document,
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if _code(exc) in {"PreconditionFailed", "ConditionalRequestConflict"} or _status(exc) == 412:
                return None
            raise classify(exc, "store verdict") from None
        except BotoCoreError as exc:
            raise classify(exc, "store verdict") from None
        if attestation is not None:
            envelope_key = json_key[: -len(".json")] + ATTESTATION_SUFFIX
            self.put_bytes(envelope_key, attestation, "application/vnd.dsse.envelope+json")
        self.put_bytes(html_key, html, "text/html; charset=utf-8")
        return json_key

    def latest_verdict(self, key: str) -> tuple[str, bytes] | None:
        """The verdict stored last for any version of ``key`` (its key and bytes): the chain's previous link.

        S3 times have a one-second grain: among verdicts stored in the same second, the one no other
        names as its previous is the last.
        """
        prefix = self.layout.reports + key + "/"
        stored: dict[str, float] = {}
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    if item["Key"].endswith(".json"):
                        modified = item.get("LastModified")
                        stored[item["Key"]] = modified.timestamp() if modified is not None else 0.0
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, "list verdicts") from None
        if not stored:
            return None
        newest = max(stored.values())
        tied = {k: self.get_bytes(k) for k in sorted(k for k, t in stored.items() if newest - t < 1.0)}
        named = {_previous_of(data) for data in tied.values()}
        heads = [k for k, data in tied.items() if hashlib.sha256(data).hexdigest() not in named]
        last = (heads or sorted(tied))[-1]
        return last, tied[last]

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, f"store {key.rsplit('/', 1)[-1]}") from None

    def get_bytes(self, key: str, limit: int = 64 * 1024 * 1024) -> bytes:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            data: bytes = body.read(limit + 1)
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, "read stored object") from None
        if len(data) > limit:
            raise StorageError("stored object over its size limit")
        return data

    def iter_verdict_keys(self, under: str = "") -> Iterator[str]:
        """Every stored JSON verdict, both areas (for rebuilding the index); ``under``: only those of the
        package keys starting with it (``dryrun/<publisher>/``: a publisher's dry runs)."""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.layout.reports + under):
                for item in page.get("Contents", []):
                    if item["Key"].endswith(".json"):
                        yield item["Key"]
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, "list verdicts") from None

    # -- tags and quarantine ------------------------------------------------------------------------

    def tag(self, ref: PackageRef, tags: Mapping[str, str], key: str | None = None) -> bool:
        """Merge our tags into the object's; False when the server has no tagging (e.g. Garage)."""
        if not self._tags_supported:
            return False
        target: dict[str, Any] = {"Bucket": self.bucket, "Key": key or ref.key}
        if key is None and ref.version_id and ref.version_id != "null":
            target["VersionId"] = ref.version_id
        try:
            current = self.client.get_object_tagging(**target).get("TagSet", [])
            kept = [t for t in current if t["Key"] not in _OUR_TAGS][: 10 - len(tags)]
            merged = kept + [{"Key": k, "Value": safe_segment(v)[:256]} for k, v in tags.items()]
            self.client.put_object_tagging(**target, Tagging={"TagSet": merged})
        except ClientError as exc:
            if _code(exc) in {"NotImplemented", "NotSupported", "MethodNotAllowed"} or _status(exc) in {
                405,
                501,
            }:
                self._tags_supported = False
                log.warning("object tagging unavailable on this S3 server: verdicts are the record")
                return False
            raise classify(exc, "tag package") from None
        except BotoCoreError as exc:
            raise classify(exc, "tag package") from None
        return True

    def tags_of(self, ref: PackageRef) -> dict[str, str] | None:
        """The object's tags (this version), None when the server has no tagging."""
        if not self._tags_supported:
            return None
        target: dict[str, Any] = {"Bucket": self.bucket, "Key": ref.key}
        if ref.version_id and ref.version_id != "null":
            target["VersionId"] = ref.version_id
        try:
            answer = self.client.get_object_tagging(**target)
        except ClientError as exc:
            if _code(exc) in {"NotImplemented", "NotSupported", "MethodNotAllowed"} or _status(exc) in {405, 501}:
                self._tags_supported = False
                return None
            raise classify(exc, "read tags") from None
        except BotoCoreError as exc:
            raise classify(exc, "read tags") from None
        return {t["Key"]: t["Value"] for t in answer.get("TagSet", [])}

    def quarantine(self, ref: PackageRef, tags: Mapping[str, str]) -> str:
        """Move the package version out of the area instructors read; returns its quarantine key."""
        target = self.layout.quarantine_key(ref.key)
        source: dict[str, str] = {"Bucket": self.bucket, "Key": ref.key}
        if ref.version_id and ref.version_id != "null":
            source["VersionId"] = ref.version_id
        tagging = urllib.parse.urlencode({k: safe_segment(v) for k, v in tags.items()})
        try:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=target,
                CopySource=source,
                TaggingDirective="REPLACE",
                Tagging=tagging,
            )
            delete: dict[str, Any] = {"Bucket": self.bucket, "Key": ref.key}
            if "VersionId" in source:
                # Deleting the version itself: a delete marker would leave the bytes readable by version.
                delete["VersionId"] = source["VersionId"]
            self.client.delete_object(**delete)
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, "quarantine package") from None
        return target

    def quarantine_package(self, ref: PackageRef, tags: Mapping[str, str]) -> str:
        """Move a package out of the area instructors read: the zip, or a folder's members then marker."""
        if self.layout.is_marker(ref.key):
            folder = self.layout.folder_of(ref.key) or ""
            for item, _ in list(self._latest(folder)):
                if item.key != ref.key:
                    self.quarantine(item, tags)
        return self.quarantine(ref, tags)

    def complete_quarantine(self, ref: PackageRef, json_key: str) -> bool:
        """Finish the move of a version whose stored verdict says quarantine; True if it moved it now.

        A run that died between storing the verdict and the move (copy + delete) left the package where
        instructors may read it: whoever finds it so (a later run, the reconcile) completes the move.
        """
        try:
            doc = json.loads(self.get_bytes(json_key))
        except ValueError:
            log.warning("stored verdict is not JSON: quarantine state unknown")
            return False
        return self.complete_quarantine_of(ref, doc)

    def complete_quarantine_of(self, ref: PackageRef, doc: Any) -> bool:
        """``complete_quarantine`` with the verdict document already read."""
        if not isinstance(doc, dict) or doc.get("quarantine") is not True:
            return False
        try:
            self.head(ref.key, ref.version_id)
        except PackageGoneError:
            return False  # already moved (or deleted by its publisher)
        tags = {
            TAG_STATUS: str(doc.get("status")),
            TAG_QUARANTINE: "true",
            TAG_RULESET: str((doc.get("ruleset") or {}).get("version", "none")),
        }
        self.quarantine_package(ref, tags)
        return True


__all__ = [
    "MARKER",
    "TAG_CHECKED",
    "TAG_QUARANTINE",
    "TAG_RULESET",
    "TAG_STATUS",
    "Layout",
    "Member",
    "ObjectEvent",
    "PackageGoneError",
    "PackageRef",
    "PackageTooLargeError",
    "StorageError",
    "Store",
    "TransientStorageError",
    "UnsafeMemberError",
    "classify",
    "make_client",
    "member_path",
    "parse_s3_event",
    "retry_attempt",
    "safe_segment",
]

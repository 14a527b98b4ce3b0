"""Proof package intake: an archive or a folder, safely turned into the proof files the engine checks.

A zip is triaged first (``validators.ziptriage``: limits, traversal, links, encryption, overlaps...)
and only then unpacked, member by member, streaming, into a private work directory (mode 0700, removed
on exit). Members are written under generated names (``files/000001.pdf``), never under their own
names, so no name can reach outside the work dir, collide on a case-insensitive disk or carry control
characters into a file system; the member's name lives on as the proof file's ``path``. tar (plain or
compressed), 7z, RAR and single gzip/bzip2/xz packages go through ``validators.archives`` with the same
limits and name rules, their members streamed to the same generated names. Whatever the intake could not
hand whole to the file checks (any package but a fully unpacked zip) is also given to the engine as the
package's ``container``, which clamd scans whole.

A folder is walked without following any link; its regular files are hashed and used in place.

The package digest is the sha256 of the zip's bytes; for a folder, the sha256 of the UTF-8 text made of
one line ``<path>\\0<file sha256>\\n`` per file, in path order (so a folder and its content are named by
the same digest wherever it is copied).

Settings: ``package`` (``TriageLimits``), and ``source``, recorded as the package's source.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from validators import rules, sniff
from validators.archives import detect, read_archive
from validators.archives.members import ArchiveMember, conclude
from validators.base import ProofFile
from validators.engine import PackageContents
from validators.mapping import map_package
from validators.model import Finding, Location, PackageInfo
from validators.pii.mask import mask_identifiers
from validators.settings import EngineSettings
from validators.ziptriage import (
    HEAD_BYTES,
    SIG_EOCD,
    SIG_LOCAL,
    CappedFindings,
    MemberError,
    TriageLimits,
    ZipEntry,
    check_names,
    display_name,
    read_member,
    triage,
)

log = logging.getLogger(__name__)

DEFAULT_REFERENTIAL = "REM-MDV-LGC-SF-Va1"
MANIFEST_NAMES = frozenset({"manifest.yaml", "manifest.yml", "manifest.json"})
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_FOLDER_DEPTH = 32
CHUNK = 1024 * 1024
ODD_ENCODINGS = {
    "utf-8 unflagged": "UTF-8 without the archive's UTF-8 flag",
    "cp437": "a legacy code page (read as CP437)",
    "undecodable": "bytes that are not valid UTF-8",
}


@dataclass
class _Kept:
    """A file of the package that will be checked."""

    path: str
    disk_path: Path
    size: int
    sha256: str
    media_type: str


@dataclass
class _Intake:
    """What unpacking found, before proof IDs are mapped."""

    package_sha256: str = ""
    kept: list[_Kept] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    file_findings: dict[str, list[Finding]] = field(default_factory=dict)
    container: bool = False  # the package file must also be scanned whole

    def odd_encoding(self, path: str, encoding: str) -> None:
        finding = rules.finding("package.name-encoding", encoding=ODD_ENCODINGS[encoding])
        self.file_findings.setdefault(path, []).append(finding)


@contextmanager
def open_package(
    path: Path,
    *,
    settings: Mapping[str, Any] | None = None,
    profiles: Sequence[str] | None = None,
) -> Iterator[PackageContents]:
    """The package at ``path`` (a zip or a folder) as ``PackageContents``; its work dir lives until exit.

    Never raises on hostile or broken input: what cannot be used becomes findings.
    """
    typed = EngineSettings.coerce(settings)
    limits = typed.package
    workdir = Path(tempfile.mkdtemp(prefix="proofcheck-"))  # mkdtemp: mode 0700, private to us
    try:
        try:
            intake = _intake(Path(path), workdir, limits)
        except Exception as exc:  # fail closed: a bug on hostile input is an error verdict, not a traceback
            log.warning("package intake failed: %s", type(exc).__name__)
            reason = f"internal error ({type(exc).__name__})"
            intake = _Intake(findings=[rules.finding("system.package-unreadable", reason=reason)])
        yield _contents(Path(path), intake, typed, profiles)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _intake(path: Path, workdir: Path, limits: TriageLimits) -> _Intake:
    intake = _Intake()
    try:
        mode = path.stat().st_mode  # the path given is the user's choice: a link to it is followed
    except OSError as exc:
        reason = "no such file or folder" if isinstance(exc, FileNotFoundError) else type(exc).__name__
        intake.findings.append(rules.finding("system.package-unreadable", reason=reason))
        return intake
    if stat.S_ISDIR(mode):
        _intake_folder(path, intake, limits)
    elif stat.S_ISREG(mode):
        _intake_file(path, workdir, intake, limits)
    else:
        intake.findings.append(rules.finding("package.not-a-package", what="a special file"))
    if not intake.kept and not any(f.rule in _NOTHING_TO_UNPACK for f in intake.findings):
        intake.findings.append(rules.finding("package.empty"))
    return intake


# Findings that already explain why a package has no files (an "empty" finding would add nothing).
_NOTHING_TO_UNPACK = frozenset(
    {"system.package-unreadable", "package.not-a-package", "package.corrupt", "package.not-unpacked"}
)


# --- zip ------------------------------------------------------------------------------------------


def _intake_file(path: Path, workdir: Path, intake: _Intake, limits: TriageLimits) -> None:
    try:
        stream = path.open("rb")
    except OSError as exc:
        intake.findings.append(rules.finding("system.package-unreadable", reason=type(exc).__name__))
        return
    with stream:
        intake.package_sha256, head = _hash_stream(stream)
        kind = detect(head[:HEAD_BYTES])
        # An end record that does not end the file is only a zip inside another format (a member).
        report = triage(stream, limits=limits, depth=0, require_end_at_eof=kind is not None)
        if kind is not None:
            intake.container = True
            _intake_archive(path, stream, kind, workdir, intake, limits)
            if report.is_zip:  # a zip appended to the archive: two archives in one package
                intake.findings.extend(report.findings)
            return
        if not report.is_zip:
            intake.container = True  # whatever it is, clamd sees it
            _not_a_zip(path, head, intake)
            return
        intake.findings.extend(report.findings)
        if report.structural:
            intake.container = True
            intake.findings.append(
                rules.finding("package.not-unpacked", reason="its archive structure is unsafe (see above)")
            )
            return
        files = _files_dir(workdir)
        used: set[str] = set()
        for entry in report.extractable():
            _extract(stream, entry, files, intake, limits, used)
        regular = sum(1 for entry in report.entries if not entry.is_dir)
        intake.container = len(intake.kept) < regular  # members left out: clamd looks at the whole zip


def _files_dir(workdir: Path) -> Path:
    files = workdir / "files"
    files.mkdir(mode=0o700, exist_ok=True)
    return files


# --- other archives -------------------------------------------------------------------------------


class _DiskSink:
    """Writes each member to the work dir under a generated name, hashing it on the way."""

    def __init__(self, files: Path, max_member_bytes: int) -> None:
        self.files = files
        self.max_member_bytes = max_member_bytes
        self.written: dict[int, _Kept] = {}
        self.heads: dict[int, bytes] = {}
        self.over: list[ArchiveMember] = []
        self._member: ArchiveMember | None = None
        self._out: BinaryIO | None = None
        self._target = files
        self._digest = hashlib.sha256()
        self._head = bytearray()
        self._size = 0

    def start(self, member: ArchiveMember) -> bool:
        self._member = member
        self._target = self.files / f"{member.index:06d}{_safe_suffix(member.name)}"
        fd = os.open(self._target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        self._out = os.fdopen(fd, "wb")
        self._digest = hashlib.sha256()
        self._head = bytearray()
        self._size = 0
        return True

    def write(self, data: bytes) -> None:
        self._size += len(data)
        if len(self._head) < sniff.SNIFF_BYTES:
            self._head += data[: sniff.SNIFF_BYTES - len(self._head)]
        if self._out is None:
            return
        if self._size > self.max_member_bytes:
            self.abort()
            assert self._member is not None
            self.over.append(self._member)
            return
        self._out.write(data)
        self._digest.update(data)

    def abort(self) -> None:
        """Remove the member being written, if any (over its limit, unreadable, or the walk failed)."""
        if self._out is not None:
            self._out.close()
            self._out = None
            self._target.unlink(missing_ok=True)

    def finish(self, ok: bool) -> None:
        member = self._member
        if member is None:
            return
        self.heads[member.index] = bytes(self._head[:HEAD_BYTES])
        if ok and self._out is not None:
            self._out.close()
            self._out = None
            head = bytes(self._head)
            digest = self._digest.hexdigest()
            self.written[member.index] = _Kept("", self._target, self._size, digest, _media_type(head))
        else:
            self.abort()
        self._member = None

    def discard(self, index: int) -> None:
        kept = self.written.pop(index, None)
        if kept is not None:
            kept.disk_path.unlink(missing_ok=True)


def _intake_archive(
    path: Path, stream: BinaryIO, kind: str, workdir: Path, intake: _Intake, limits: TriageLimits
) -> None:
    sink = _DiskSink(_files_dir(workdir), limits.max_entry_size)
    try:
        listing = read_archive(stream, kind, file_name=path.name, limits=limits, sink=sink)
    finally:
        sink.abort()  # a member left open by an error in the middle of the walk
    skipped = conclude(listing, sink.heads, 0, limits)
    intake.findings.extend(listing.findings)
    if listing.structural:
        intake.findings.append(
            rules.finding("package.not-unpacked", reason="its archive structure is unsafe (see above)")
        )
    for member in sink.over:
        where = Location(entry=display_name(member.name))
        intake.findings.append(rules.finding("ssi.archive.member-not-checked", where, reason="over the size limit",
                                             evidence=f"limit {limits.max_entry_size} bytes"))
    used: set[str] = set()
    for member in listing.members:
        kept = sink.written.get(member.index)
        if kept is None:
            continue
        if member.index in skipped or member.path is None:
            sink.discard(member.index)
            continue
        kept.path = _unique(display_name(member.path), used)
        intake.kept.append(kept)


def _not_a_zip(path: Path, head: bytes, intake: _Intake) -> None:
    if head.startswith((SIG_LOCAL, SIG_EOCD)) or path.suffix.lower() == ".zip":
        intake.findings.append(
            rules.finding("package.corrupt", reason="no end-of-archive record: truncated or not a zip")
        )
        return
    intake.findings.append(rules.finding("package.not-a-package", what=_media_type(head)))


def _extract(
    stream: BinaryIO, entry: ZipEntry, files: Path, intake: _Intake, limits: TriageLimits, used: set[str]
) -> None:
    assert entry.path is not None  # extractable entries all have a safe path
    logical = _unique(display_name(entry.path), used)
    target = files / f"{entry.index:06d}{_safe_suffix(entry.path)}"
    where = Location(entry=display_name(entry.name))
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        intake.findings.append(rules.finding("system.package-unreadable", where, reason=type(exc).__name__))
        return
    digest = hashlib.sha256()
    head = bytearray()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in read_member(stream, entry, max_bytes=limits.max_entry_size, chunk_size=CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                if len(head) < sniff.SNIFF_BYTES:
                    head += chunk[: sniff.SNIFF_BYTES - len(head)]
    except MemberError as err:
        target.unlink(missing_ok=True)
        intake.findings.append(rules.finding(err.rule, where, reason=err.reason))
        return
    except OSError as exc:  # the work dir is full or gone: the pipeline's problem, not the publisher's
        target.unlink(missing_ok=True)
        intake.findings.append(rules.finding("system.package-unreadable", where, reason=type(exc).__name__))
        return
    intake.kept.append(_Kept(logical, target, size, digest.hexdigest(), _media_type(bytes(head))))
    if entry.name_encoding in ODD_ENCODINGS:
        intake.odd_encoding(logical, entry.name_encoding)


def _unique(path: str, used: set[str]) -> str:
    """``path``, or ``path (copy N)`` when an earlier member took it (duplicates are all checked)."""
    candidate = path
    copy = 1
    while candidate in used:
        copy += 1
        candidate = f"{path} (copy {copy})"
    used.add(candidate)
    return candidate


def _safe_suffix(name: str) -> str:
    """The member's extension when it is plain (tools that look at a suffix still see it), else none."""
    suffix = Path(name).suffix
    return suffix if 1 < len(suffix) <= 10 and suffix[1:].isascii() and suffix[1:].isalnum() else ""


def _hash_stream(stream: BinaryIO) -> tuple[str, bytes]:
    """sha256 of the whole stream, read in chunks, and its first bytes for type detection."""
    digest = hashlib.sha256()
    stream.seek(0)
    head = stream.read(sniff.SNIFF_BYTES)
    digest.update(head)
    for chunk in iter(lambda: stream.read(CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest(), head


def _media_type(head: bytes) -> str:
    try:
        return sniff.media_type(head)
    except sniff.SnifferUnavailableError:
        return sniff.UNKNOWN  # the filetype check reports itself as not run


# --- folder ---------------------------------------------------------------------------------------


def _intake_folder(root: Path, intake: _Intake, limits: TriageLimits) -> None:
    root_real = os.path.realpath(root)
    total = 0
    names: list[tuple[int, str, bool]] = []
    for rel, entry in _walk(root, intake):
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            _unreadable(intake, rel, type(exc).__name__)
            continue
        if stat.S_ISLNK(st.st_mode):
            _folder_link(entry.path, rel, root_real, intake)
            continue
        if not stat.S_ISREG(st.st_mode):
            _unreadable(intake, rel, "not a regular file")
            continue
        if len(intake.kept) >= limits.max_entries or total + st.st_size > limits.max_total_size:
            intake.findings.append(
                rules.finding("package.limit-exceeded", files=limits.max_entries, size=limits.max_total_size)
            )
            break
        kept = _hash_file(entry.path, rel, intake)
        if kept is not None:
            total += kept.size
            names.append((len(names), rel, False))
    check_names(names, CappedFindings(intake.findings))
    lines = "".join(f"{k.path}\0{k.sha256}\n" for k in sorted(intake.kept, key=lambda k: k.path))
    intake.package_sha256 = hashlib.sha256(lines.encode("utf-8", "surrogateescape")).hexdigest()


def _walk(root: Path, intake: _Intake) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """(relative path, entry) of everything below ``root``, in name order, never entering a link."""
    stack: list[tuple[str, str, int]] = [(str(root), "", 0)]
    while stack:
        folder, prefix, depth = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            _unreadable(intake, prefix or ".", type(exc).__name__)
            continue
        subfolders = []
        for entry in entries:
            rel = f"{prefix}{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                if depth + 1 > MAX_FOLDER_DEPTH:
                    _unreadable(intake, rel, "folders nested too deeply")
                else:
                    subfolders.append((entry.path, f"{rel}/", depth + 1))
                continue
            yield rel, entry
        stack.extend(reversed(subfolders))


def _folder_link(link: str, rel: str, root_real: str, intake: _Intake) -> None:
    """A link is never followed; one that leads out of the package is dangerous, one inside is noted."""
    target = os.path.realpath(link)
    inside = os.path.commonpath([root_real, target]) == root_real
    shown = display_name(rel)
    if inside:
        intake.findings.append(rules.finding("package.symlink", Location(entry=shown)))
    else:
        kind = "link leading out of the package"
        intake.findings.append(rules.finding("ssi.archive.symlink", Location(entry=shown), kind=kind))


def _hash_file(disk: str, rel: str, intake: _Intake) -> _Kept | None:
    try:
        fd = os.open(disk, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        _unreadable(intake, rel, type(exc).__name__)
        return None
    try:
        with os.fdopen(fd, "rb") as stream:
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):  # swapped since it was listed
                _unreadable(intake, rel, "not a regular file")
                return None
            digest, head = _hash_stream(stream)
            size = stream.tell()
    except OSError as exc:
        _unreadable(intake, rel, type(exc).__name__)
        return None
    logical = display_name(rel)
    if any("\udc80" <= c <= "\udcff" for c in rel):  # bytes the file system name did not decode
        intake.odd_encoding(logical, "undecodable")
    kept = _Kept(logical, Path(disk), size, digest, _media_type(head))
    intake.kept.append(kept)
    return kept


def _unreadable(intake: _Intake, rel: str, reason: str) -> None:
    where = Location(entry=display_name(rel))
    intake.findings.append(rules.finding("package.file-unreadable", where, reason=reason))


# --- proof IDs ------------------------------------------------------------------------------------


def _manifest_path(paths: Sequence[str]) -> str | None:
    """The manifest at the package root, or at the root of the one folder that wraps everything."""
    for candidate in sorted(paths):
        if candidate.lower() in MANIFEST_NAMES:
            return candidate
    tops = {p.split("/", 1)[0] for p in paths}
    if len(tops) == 1:
        for candidate in sorted(paths):
            parts = candidate.split("/")
            if len(parts) == 2 and parts[1].lower() in MANIFEST_NAMES:
                return candidate
    return None


def _mapper() -> Callable[..., Any] | None:
    """The proof mapping (a seam: the intake tests replace it to test the intake on its own)."""
    return map_package


def _contents(
    path: Path, intake: _Intake, settings: EngineSettings, profiles: Sequence[str] | None
) -> PackageContents:
    by_path = {k.path: k for k in intake.kept}
    manifest = _manifest_path(list(by_path))
    proof_files = [k for k in intake.kept if k.path != manifest]

    def read_file(name: str) -> bytes:
        with by_path[name].disk_path.open("rb") as stream:
            return stream.read(MAX_MANIFEST_BYTES + 1)

    overrides: dict[str, Any] = {}
    proof_of: Mapping[str, str | None] = {}
    contents = PackageContents(info=_info(path, intake, {}, profiles, settings), files=[])
    unread = any(f.rule in _NOTHING_TO_UNPACK for f in intake.findings)
    try:
        # A package that could not be read has nothing to map: listing every proof as missing would
        # bury the one finding that matters.
        mapper = None if unread else _mapper()
        if mapper is not None:
            mapped = mapper([k.path for k in proof_files], manifest, read_file, profiles)
            overrides = dict(mapped.info_overrides)
            proof_of = mapped.proof_of
            contents.ids_as_written = dict(mapped.ids_as_written)
            contents.package_findings.extend(mapped.package_findings)
            contents.proof_findings = {k: list(v) for k, v in mapped.proof_findings.items()}
            contents.expectations = {k: dict(v) for k, v in mapped.expectations.items()}
            for name, found in mapped.file_findings.items():
                intake.file_findings.setdefault(name, []).extend(found)
    except Exception as exc:  # a mapping bug must not lose the package: report it, keep files unmapped
        log.warning("proof mapping failed: %s", type(exc).__name__)
        contents.package_findings.append(
            rules.finding("system.check-crashed", check="proof mapping", error=type(exc).__name__)
        )
    contents.info = _info(path, intake, overrides, profiles, settings)
    contents.package_findings.extend(intake.findings)
    if intake.container:
        contents.container = _container(path, intake)
    contents.file_findings = intake.file_findings
    contents.files = [
        ProofFile(
            path=k.path,
            size=k.size,
            sha256=k.sha256,
            media_type=k.media_type,
            disk_path=k.disk_path,
            proof_id=proof_of.get(k.path),
        )
        for k in proof_files
    ]
    return contents


def _container(path: Path, intake: _Intake) -> ProofFile:
    with path.open("rb") as stream:
        head = stream.read(sniff.SNIFF_BYTES)
        size = stream.seek(0, os.SEEK_END)
    return ProofFile(path=path.name, size=size, sha256=intake.package_sha256, media_type=_media_type(head),
                     disk_path=path)


def _info(
    path: Path,
    intake: _Intake,
    overrides: Mapping[str, Any],
    profiles: Sequence[str] | None,
    settings: EngineSettings,
) -> PackageInfo:
    return PackageInfo(
        name=mask_identifiers(path.name),
        sha256=intake.package_sha256,
        source=settings.source,
        referential=str(overrides.get("referential") or DEFAULT_REFERENTIAL),
        profiles=tuple(overrides.get("profiles") or profiles or ()),
        publisher=overrides.get("publisher"),
        software=overrides.get("software"),
        software_version=overrides.get("software_version"),
        complete=bool(overrides.get("complete", False)),
    )

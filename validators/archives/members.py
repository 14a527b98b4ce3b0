"""One member model for every archive format, judged by the rules zip members already obey.

A format reader (``tar``, ``compressed``, ``sevenzip``, ``rar``) turns what its headers say into
``ArchiveMember`` records and pushes member bytes into a ``Sink``; ``judge`` then applies the same rules
to all of them: limits (entries, sizes, ratio), names (traversal, absolute paths, drive letters, hidden
and reserved characters, duplicates, case collisions), links, devices and FIFOs, encryption, content
that cannot be decoded, and names that extractors would write differently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from validators.model import Finding
from validators.ziptriage import (
    HEAD_BYTES,
    CappedFindings,
    TriageLimits,
    archive_kind,
    check_names,
    judge_other_name,
    safe_path,
)

FILE, DIRECTORY, SYMLINK, HARDLINK, DEVICE, FIFO, OTHER = (
    "file", "directory", "symbolic link", "hard link", "device", "FIFO", "special file",
)
SPARSE = "sparse file"  # declares more bytes than it stores: extracted, it is a bomb
ANTI = "anti-item (deletes a file when extracted)"  # 7z


@dataclass(slots=True)
class ArchiveMember:
    """A member as an archive's headers describe it, whatever the format."""

    index: int
    name: str  # the name the format's usual extractor writes
    kind: str = FILE
    size: int = 0  # declared uncompressed size
    packed_size: int | None = None  # compressed size, when the format gives one per member
    encrypted: bool = False
    undecodable: str | None = None  # why its content cannot be decoded here (unknown method...)
    # Other names an extractor may write it under (tar's header name beside a pax path, a zip's
    # Unicode Path field beside its raw name) with where each comes from, when they really differ.
    other_names: tuple[tuple[str, str], ...] = ()

    @property
    def path(self) -> str | None:
        return safe_path(self.name)[0]


@dataclass
class Listing:
    """What a format reader found: members in archive order, findings, and how far it could go."""

    kind: str
    members: list[ArchiveMember] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    structural: bool = False  # a limit, a bomb or a malformation: no member may be used
    complete: bool = True  # False when reading stopped before the end of the archive
    failed: set[int] = field(default_factory=set)  # members whose bytes could not be read intact
    out: CappedFindings = field(init=False, repr=False)  # adds to ``findings``, capped per rule

    def __post_init__(self) -> None:
        self.out = CappedFindings(self.findings)

    def stop(self, rule: str, **params: Any) -> None:
        """Reading stopped on a limit or a malformation: a finding, and no member may be used."""
        self.out.add(rule, **params)
        self.structural = True
        self.complete = False


class Sink(Protocol):
    """Receives member bytes from a reader, one member at a time, in archive order."""

    def start(self, member: ArchiveMember) -> bool:
        """Whether the member's bytes are wanted (False: the reader skips or discards them)."""

    def write(self, data: bytes) -> None:
        """The next bytes of the started member; must stay bounded whatever the reader sends."""

    def finish(self, ok: bool) -> None:
        """The started member is over; ``ok`` is False when it could not be read intact."""


class NullSink:
    """A sink that wants no bytes: listing only."""

    def start(self, member: ArchiveMember) -> bool:
        return False

    def write(self, data: bytes) -> None:  # pragma: no cover - never called
        pass

    def finish(self, ok: bool) -> None:
        pass


class LimitExceededError(Exception):
    """Reading went past a limit of the archive as a whole; ``rule`` names the finding it deserves."""

    def __init__(self, rule: str, **params: Any) -> None:
        super().__init__(rule)
        self.rule = rule
        self.params = params


def check_declared(listing: Listing, limits: TriageLimits, archive_size: int, out: CappedFindings) -> bool:
    """Entry count, sizes and overall ratio from the headers, before any byte is decompressed.

    Returns False (and marks the listing structural) when the archive must not be decompressed at all.
    """
    members = listing.members
    if len(members) > limits.max_entries:
        out.add("ssi.archive.too-many-entries", count=len(members), limit=limits.max_entries)
        listing.structural = True
        return False
    total = 0
    for member in members:
        total += member.size
        if member.size > limits.max_entry_size or total > limits.max_total_size:
            out.add("ssi.archive.too-large", member.name, size=total, limit=limits.max_total_size)
            listing.structural = True
            return False
    ratio = total / max(1, archive_size)
    if total >= limits.ratio_floor and ratio > limits.max_ratio:
        out.add("ssi.archive.ratio", ratio=round(ratio), limit=limits.max_ratio)
        listing.structural = True
        return False
    return True


def judge(listing: Listing, out: CappedFindings) -> dict[int, str]:
    """Findings on every member; returns the indexes of members that must not be used, with why."""
    skipped: dict[int, str] = {}
    items = [(m.index, m.name, m.kind == DIRECTORY) for m in listing.members]
    skipped.update(check_names(items, out))
    for member in listing.members:
        for other, source in member.other_names:
            judge_other_name(member.name, other, source, member.kind == DIRECTORY, out)
            skipped.setdefault(member.index, "names disagree")
        if member.kind not in (FILE, DIRECTORY):  # links, devices, FIFOs, anti-items, RAR file copies
            skipped[member.index] = member.kind
            out.add("ssi.archive.symlink", member.name, kind=member.kind)
        elif member.kind == FILE and member.encrypted:
            skipped[member.index] = "encrypted"
            out.add("ssi.archive.encrypted", member.name)
        elif member.kind == FILE and member.undecodable is not None:
            skipped[member.index] = member.undecodable
            out.add("ssi.archive.content-not-inspected", member.name, reason=member.undecodable)
        if member.index in listing.failed:
            skipped.setdefault(member.index, "unreadable")
    return skipped


def conclude(listing: Listing, heads: Mapping[int, bytes], depth: int, limits: TriageLimits) -> dict[int, str]:
    """Judge a finished listing; returns the members that must not be used (all of them if structural).

    ``heads`` holds the first bytes of the members that were read, to find archives nested too deep.
    """
    skipped = judge(listing, listing.out)
    by_index = {m.index: m for m in listing.members}
    pairs = [(by_index[i], head) for i, head in heads.items() if i in by_index and i not in skipped]
    skipped.update(nesting(pairs, depth, limits, listing.out))
    listing.out.close()
    if listing.structural:
        skipped.update({m.index: "archive not extracted" for m in listing.members if m.index not in skipped})
    return skipped


def nesting(
    heads: Iterable[tuple[ArchiveMember, bytes]], depth: int, limits: TriageLimits, out: CappedFindings
) -> dict[int, str]:
    """Members that are themselves archives past the depth limit (``depth`` is this archive's level)."""
    skipped: dict[int, str] = {}
    for member, head in heads:
        kind = archive_kind(head[:HEAD_BYTES])
        if kind is not None and depth + 1 > limits.max_depth:
            skipped[member.index] = "nesting depth"
            out.add("ssi.archive.nesting-depth", member.name, kind=kind, depth=depth + 1, limit=limits.max_depth)
    return skipped


class MemoryCollector:
    """A sink that keeps member bytes in memory, up to a size per member and a total budget.

    Members past either bound are not kept (``over``); the first bytes of every member are kept in
    ``heads`` either way, to recognise nested archives.
    """

    def __init__(self, max_member_bytes: int, max_total_bytes: int) -> None:
        self.max_member_bytes = max_member_bytes
        self.budget = max_total_bytes
        self.kept: dict[int, bytes] = {}
        self.heads: dict[int, bytes] = {}
        self.over: list[ArchiveMember] = []
        self._member: ArchiveMember | None = None
        self._buffer = bytearray()
        self._head = bytearray()
        self._keeping = False

    def start(self, member: ArchiveMember) -> bool:
        self._member = member
        self._buffer = bytearray()
        self._head = bytearray()
        self._keeping = member.size <= min(self.max_member_bytes, self.budget)
        if not self._keeping:
            self.over.append(member)
        return True  # the head is wanted even when the content is not kept

    def write(self, data: bytes) -> None:
        if len(self._head) < HEAD_BYTES:
            self._head += data[: HEAD_BYTES - len(self._head)]
        if not self._keeping:
            return
        if len(self._buffer) + len(data) > min(self.max_member_bytes, self.budget):
            self._keeping = False
            self._buffer = bytearray()
            assert self._member is not None
            self.over.append(self._member)
            return
        self._buffer += data

    def finish(self, ok: bool) -> None:
        member = self._member
        if member is None:
            return
        self.heads[member.index] = bytes(self._head)
        if ok and self._keeping:
            self.kept[member.index] = bytes(self._buffer)
            self.budget -= len(self._buffer)
        self._member = None
        self._buffer = bytearray()

"""The ``archive`` check: triage of every archive a proof file is or hides, and its members as children.

Every non-empty file is looked at, because a zip appended to an image or a PDF (a polyglot) is as
dangerous as a zip deposited as such; the look costs one read of the file's last 64 KiB. Members of
plain zips (and of zips hidden in other files) that are within limits are decompressed in memory, with
hard per-member and total byte limits, and handed to the engine as ``Embedded`` children so that each is
checked like any proof file. Zip-based document formats (OOXML, ODF, JAR, EPUB) are triaged for
dangerous structure only: their parts are the office check's business. tar (plain or compressed), single
gzip/bzip2/xz files, 7z and RAR go through ``validators.archives`` with the same limits and member rules.

Settings: ``archive`` (``validators.limits.ArchiveLimits``): the triage limits plus ``max_member_bytes``
and ``max_total_bytes`` (what is held in memory for the children of one archive).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, BinaryIO, ClassVar

from validators import rules
from validators.archives import detect, read_archive
from validators.archives.members import MemoryCollector, conclude
from validators.base import CheckContext, CheckResult, Embedded, ProofFile, Validator
from validators.model import CheckState, Location
from validators.settings import EngineSettings
from validators.ziptriage import (
    HEAD_BYTES,
    MemberError,
    TriageLimits,
    TriageReport,
    ZipEntry,
    display_name,
    read_member,
    triage,
)

PLAIN_ZIP_TYPES = frozenset({"application/zip", "application/x-zip-compressed", "application/x-zip"})
ZIP_BASED_TYPES = frozenset(
    {"application/java-archive", "application/epub+zip", "application/vnd.android.package-archive"}
)
ZIP_BASED_PREFIXES = ("application/vnd.openxmlformats-", "application/vnd.oasis.opendocument.")
ZIP_EXTENSIONS = frozenset({"zip", "xdm"})

ARCHIVE_RULES: tuple[str, ...] = (
    "ssi.archive.case-collision",
    "ssi.archive.content-not-inspected",
    "ssi.archive.deceptive-name",
    "ssi.archive.dictionary",
    "ssi.archive.duplicate-name",
    "ssi.archive.encrypted",
    "ssi.archive.inconsistent",
    "ssi.archive.malformed",
    "ssi.archive.member-not-checked",
    "ssi.archive.more-findings",
    "ssi.archive.name-mismatch",
    "ssi.archive.nesting-depth",
    "ssi.archive.overlapping-entries",
    "ssi.archive.polyglot",
    "ssi.archive.ratio",
    "ssi.archive.size-mismatch",
    "ssi.archive.suspicious-name",
    "ssi.archive.symlink",
    "ssi.archive.too-large",
    "ssi.archive.too-many-entries",
    "ssi.archive.traversal",
    "ssi.archive.zip64",
)


def is_zip_typed(file: ProofFile) -> bool:
    """Whether the file claims (by its real type or, failing that, its name) to be a zip container."""
    media = file.media_type
    return (
        media in PLAIN_ZIP_TYPES
        or media in ZIP_BASED_TYPES
        or media.startswith(ZIP_BASED_PREFIXES)
        or file.extension in ZIP_EXTENSIONS
    )


def opens_members(file: ProofFile, report: TriageReport) -> bool:
    """Members are checked as children for plain zips and for zips hidden in another format."""
    media = file.media_type
    zip_document = media in ZIP_BASED_TYPES or media.startswith(ZIP_BASED_PREFIXES)
    return report.is_zip and not zip_document


class ArchiveValidator(Validator):
    name: ClassVar[str] = "archive"
    rules: ClassVar[tuple[str, ...]] = ARCHIVE_RULES
    reads_settings: ClassVar[tuple[str, ...]] = ("archive",)
    reads_ruleset: ClassVar[tuple[str, ...]] = ()
    timeout: ClassVar[float] = 120.0

    def __init__(
        self,
        settings: Mapping[str, Any] | TriageLimits | None = None,
        max_member_bytes: int | None = None,
        max_total_bytes: int | None = None,
        *,
        limits: TriageLimits | None = None,
    ) -> None:
        """From the settings (``archive``), or from explicit limits (tests: ``ArchiveValidator(limits)``)."""
        if isinstance(settings, TriageLimits):
            limits, settings = settings, None
        section = EngineSettings.coerce(settings).archive
        self.limits: TriageLimits = limits or section
        self.max_member_bytes = section.max_member_bytes if max_member_bytes is None else max_member_bytes
        self.max_total_bytes = section.max_total_bytes if max_total_bytes is None else max_total_bytes

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> ArchiveValidator:
        return cls(settings)

    def applies_to(self, file: ProofFile) -> bool:
        return file.size > 0

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        zip_typed = is_zip_typed(file)
        with file.open() as stream:
            other = detect(stream.read(HEAD_BYTES))
            # A proof file at depth 0 is an archive at nesting level 1 (the package is level 0).
            report = triage(
                stream, limits=self.limits, depth=file.depth + 1, require_end_at_eof=not zip_typed or bool(other)
            )
            if other is not None:
                result = self._check_other(file, stream, other, ctx)
                if report.is_zip:  # a zip appended to a tar, 7z...: two archives in one file
                    result.findings.extend(report.findings)
                return result
            if not report.is_zip:
                if zip_typed:
                    reason = "no end-of-archive record: truncated, or not a zip"
                    return CheckResult(findings=[rules.finding("ssi.archive.malformed", reason=reason)])
                return CheckResult(detail="no archive found")
            result = CheckResult(findings=list(report.findings))
            if not report.complete:
                result.state = CheckState.PARTIAL
                result.detail = "archive refused past its limits; members not inspected"
            if opens_members(file, report):
                self._read_members(stream, report, result, ctx)
        return result

    def _check_other(self, file: ProofFile, stream: BinaryIO, kind: str, ctx: CheckContext) -> CheckResult:
        collector = MemoryCollector(self.max_member_bytes, self.max_total_bytes)
        listing = read_archive(
            stream, kind, file_name=file.name, limits=self.limits, sink=collector, check_time=ctx.check_time
        )
        skipped = conclude(listing, collector.heads, file.depth + 1, self.limits)
        result = CheckResult(findings=list(listing.findings), detail=f"{listing.kind} archive")
        if not listing.complete:
            result.state = CheckState.PARTIAL
            result.detail = f"{listing.kind} archive refused past its limits; members not inspected"
        over = {m.index for m in collector.over}
        for member in collector.over:
            if member.index not in skipped:
                where = Location(entry=display_name(member.name))
                limit = min(self.max_member_bytes, self.max_total_bytes)
                result.findings.append(rules.finding("ssi.archive.member-not-checked", where,
                                                     reason="over the size limit", evidence=f"limit {limit} bytes"))
                result.state = CheckState.PARTIAL
        for member in listing.members:
            data = collector.kept.get(member.index)
            if data is None or member.index in skipped or member.index in over:
                continue
            name = display_name(member.path) if member.path else f"member-{member.index}"
            result.children.append(Embedded(name=name, data=data, origin=f"{listing.kind} member"))
        return result

    def _read_members(
        self, stream: BinaryIO, report: TriageReport, result: CheckResult, ctx: CheckContext
    ) -> None:
        budget = self.max_total_bytes
        for entry in report.extractable():
            ctx.check_time()
            limit = min(self.max_member_bytes, budget)
            data = self._read_one(stream, entry, limit, result)
            if data is None:
                continue
            budget -= len(data)
            name = entry.path or f"member-{entry.index}"
            result.children.append(Embedded(name=name, data=data, origin="zip member"))

    def _read_one(self, stream: BinaryIO, entry: ZipEntry, limit: int, result: CheckResult) -> bytes | None:
        where = Location(entry=entry.display_name)
        try:
            return b"".join(read_member(stream, entry, max_bytes=limit))
        except MemberError as err:
            result.findings.append(rules.finding(err.rule, where, reason=err.reason))
            if err.rule == "ssi.archive.member-not-checked":
                result.state = CheckState.PARTIAL
                result.detail = "some members were not checked (limits)"
            return None


def make_validators(settings: Mapping[str, Any]) -> list[Validator]:
    from validators.registry import family_validators

    return family_validators(__name__, settings)

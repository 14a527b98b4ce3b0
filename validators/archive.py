"""The ``archive`` check: triage of every zip a proof file is or hides, and its members as children.

Every non-empty file is looked at, because a zip appended to an image or a PDF (a polyglot) is as
dangerous as a zip deposited as such; the look costs one read of the file's last 64 KiB. Members of
plain zips (and of zips hidden in other files) that are within limits are decompressed in memory, with
hard per-member and total byte limits, and handed to the engine as ``Embedded`` children so that each is
checked like any proof file. Zip-based document formats (OOXML, ODF, JAR, EPUB) are triaged for
dangerous structure only: their parts are the office check's business.

Settings: ``settings["archive"]`` may set any ``TriageLimits`` field plus ``max_member_bytes`` and
``max_total_bytes`` (what is held in memory for the children of one archive).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, BinaryIO, ClassVar

from validators import rules
from validators.base import DEFAULT_READ_LIMIT, CheckContext, CheckResult, Embedded, ProofFile, Validator
from validators.model import CheckState, Location
from validators.ziptriage import MemberError, TriageLimits, TriageReport, ZipEntry, read_member, triage

PLAIN_ZIP_TYPES = frozenset({"application/zip", "application/x-zip-compressed", "application/x-zip"})
ZIP_BASED_TYPES = frozenset(
    {"application/java-archive", "application/epub+zip", "application/vnd.android.package-archive"}
)
ZIP_BASED_PREFIXES = ("application/vnd.openxmlformats-", "application/vnd.oasis.opendocument.")
ZIP_EXTENSIONS = frozenset({"zip", "xdm"})

# Nested proof archives hold screenshots and XDM documents, not a whole package: tighter than intake.
NESTED_LIMITS = TriageLimits(max_entries=1000, max_total_size=1024**3, max_entry_size=DEFAULT_READ_LIMIT)
DEFAULT_MAX_TOTAL_BYTES = 256 * 1024 * 1024

ARCHIVE_RULES: tuple[str, ...] = (
    "ssi.archive.case-collision",
    "ssi.archive.deceptive-name",
    "ssi.archive.duplicate-name",
    "ssi.archive.encrypted",
    "ssi.archive.inconsistent",
    "ssi.archive.malformed",
    "ssi.archive.member-not-checked",
    "ssi.archive.more-findings",
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
    timeout: ClassVar[float] = 120.0

    def __init__(
        self,
        limits: TriageLimits = NESTED_LIMITS,
        max_member_bytes: int = DEFAULT_READ_LIMIT,
        max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    ) -> None:
        self.limits = limits
        self.max_member_bytes = max_member_bytes
        self.max_total_bytes = max_total_bytes

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> ArchiveValidator:
        section = dict((settings or {}).get("archive") or {})
        return cls(
            TriageLimits.from_settings(settings, "archive", NESTED_LIMITS),
            int(section.get("max_member_bytes", DEFAULT_READ_LIMIT)),
            int(section.get("max_total_bytes", DEFAULT_MAX_TOTAL_BYTES)),
        )

    def applies_to(self, file: ProofFile) -> bool:
        return file.size > 0

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        zip_typed = is_zip_typed(file)
        with file.open() as stream:
            # A proof file at depth 0 is an archive at nesting level 1 (the package is level 0).
            report = triage(
                stream, limits=self.limits, depth=file.depth + 1, require_end_at_eof=not zip_typed
            )
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
    return [ArchiveValidator.from_settings(settings)]

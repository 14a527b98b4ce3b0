"""The ``antivirus`` check: every file through clamd, failing closed, with the database's provenance.

A clamd that cannot be reached, times out, refuses the data or answers oddly makes the check "not run"
(a ``system.*`` error), never clean. Zip archives that would exhaust clamd (too many entries, bombs)
are refused from the archive triage before clamd sees them, so they cost milliseconds; ZIP64 archives,
whose members clamd does not extract, are covered member by member (the archive check's children).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

from validators import rules
from validators.archive import is_zip_typed
from validators.base import CheckContext, CheckResult, ProofFile, Validator
from validators.model import CheckState, Finding, Severity
from validators.settings import EngineSettings
from validators.ssi import clamd_manager
from validators.ssi.clamd_client import ClamdClient, ClamdError, ClamdLimitError, ClamdVersion, ScanReply
from validators.ziptriage import TriageLimits, triage

CLAMD_MAX_FILES = 10_000  # MaxFiles of the private clamd: past it, clamd stops looking

# Archive findings after which clamd would pass silently or spend minutes (docs/domain.md §5): such an
# archive is not sent to clamd at all, so a 100 000-entry zip costs milliseconds, not a scan thread.
CLAMD_BLOCKING_RULES = frozenset(
    {
        "ssi.archive.too-many-entries",
        "ssi.archive.ratio",
        "ssi.archive.too-large",
        "ssi.archive.overlapping-entries",
        "ssi.archive.nesting-depth",
        "ssi.archive.malformed",
    }
)


def zip_scan_blocker(file: ProofFile) -> CheckResult | None:
    """The result for a zip clamd must not be trusted with (from the archive triage), or None to scan it."""
    if not file.head(4).startswith(b"PK") and not is_zip_typed(file):
        return None
    with file.open() as stream:
        report = triage(stream, limits=TriageLimits(max_entries=CLAMD_MAX_FILES))
    blocking = sorted({f.rule for f in report.findings if f.rule in CLAMD_BLOCKING_RULES})
    if blocking:
        # Fixed words (the French report maps them); the archive findings that refused it go in the evidence.
        finding = rules.finding(
            "ssi.scan-limit",
            limit="archive refused before the scan: clamd would pass it silently or stall",
            evidence=", ".join(blocking),
        )
        return CheckResult(findings=[finding], detail="not sent to clamd")
    if report.zip64:
        # clamd does not extract ZIP64 members (ClamAV #1527); the archive check hands them to the
        # engine as children, and each child is scanned on its own.
        return CheckResult(state=CheckState.PARTIAL, detail="ZIP64: members scanned one by one as children")
    return None


def classify_signature(signature: str) -> Finding:
    """A clamd detection as a finding: limits, heuristics and real signatures are told apart."""
    if signature.startswith("Heuristics.Limits.Exceeded"):
        return rules.finding("ssi.scan-limit", limit=signature, evidence=signature)
    if signature.startswith("Heuristics."):
        return rules.finding("ssi.antivirus-heuristic", signature=signature, evidence=signature)
    return rules.finding("ssi.malware", signature=signature, evidence=signature)


def database_facts(version: ClamdVersion, signatures: str | None) -> dict[str, str]:
    """Provenance of the scan: engine, database version and date, and whether it was test-only."""
    facts = {"engine": f"ClamAV {version.engine}"}
    if version.database_version:
        facts["database_version"] = version.database_version
        facts["database_date"] = version.database_date or ""
        facts["signatures"] = signatures or clamd_manager.SIGNATURES_PRODUCTION
    else:
        # clamd reports no database version when it loaded no official (freshclam) database.
        facts["database_version"] = "none"
        facts["signatures"] = clamd_manager.SIGNATURES_TEST
    if facts["signatures"] == clamd_manager.SIGNATURES_TEST:
        facts["signatures_note"] = (
            "test signatures only (EICAR, proofcheck marker): real malware is not detected"
        )
    return facts


def database_age(date_text: str, now: datetime) -> timedelta | None:
    try:
        dated = parsedate_to_datetime(date_text)
    except (TypeError, ValueError):
        try:  # clamd's asctime form: "Tue Nov 25 07:24:01 2025"
            dated = datetime.strptime(" ".join(date_text.split()), "%a %b %d %H:%M:%S %Y")
        except ValueError:
            return None
    if dated.tzinfo is None:
        dated = dated.replace(tzinfo=UTC)
    return now - dated


class AntivirusValidator(Validator):
    name: ClassVar[str] = "antivirus"
    rules: ClassVar[tuple[str, ...]] = (
        "ssi.malware",
        "ssi.scan-limit",
        "ssi.antivirus-heuristic",
        "ssi.antivirus-test-signatures",
        "ssi.antivirus-database-old",
        "system.check-not-run",
    )
    # Where clamd is changes no result, and the signature database is deliberately not keyed
    # (docs/architecture.md §3.1: a signature update does not by itself re-validate stored packages).
    reads_settings: ClassVar[tuple[str, ...]] = (
        "clamd",
        "clamd_database",
        "clamd_binary",
        "clamd_signatures",
        "antivirus_max_database_age_days",
        "antivirus_test_signatures",
    )
    reads_ruleset: ClassVar[tuple[str, ...]] = ()
    timeout: ClassVar[float] = 180.0
    overlaps: ClassVar[bool] = True  # clamd scans in its own process while the other checks run

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = EngineSettings.coerce(settings)
        self.max_age = timedelta(days=self.settings.antivirus_max_database_age_days)
        # "accept" acknowledges a test-signature set-up (the demo, the test suite): the fact stays in the
        # verdict's provenance and becomes an info finding instead of a warning on every file.
        accept = self.settings.antivirus_test_signatures == "accept"
        self.test_signatures_severity = Severity.INFO if accept else Severity.WARNING
        self._lock = threading.Lock()
        self._endpoint: clamd_manager.ClamdEndpoint | None = None
        self._client: ClamdClient | None = None
        self._facts: dict[str, str] | None = None
        self._unavailable: str | None = None

    def applies_to(self, file: ProofFile) -> bool:
        return True

    def _connect(self) -> ClamdClient | None:
        """The client, set up once; the reason it is unavailable is kept and reported on every file."""
        with self._lock:
            if self._client is not None or self._unavailable is not None:
                return self._client
            try:
                self._endpoint = clamd_manager.resolve(self.settings)
            except (clamd_manager.ClamdStartError, OSError, ValueError) as exc:
                self._unavailable = f"the private clamd could not start ({exc})"
                return None
            if self._endpoint is None:
                self._unavailable = (
                    "no clamd configured (PROOFCHECK_CLAMD) and ClamAV is not installed (apt-get install "
                    "clamav-daemon); the file was NOT scanned for malware"
                )
                return None
            client = ClamdClient(self._endpoint.address)
            try:
                self._facts = database_facts(client.version(), self._endpoint.signatures)
            except ClamdError as exc:
                self._unavailable = f"clamd at {self._endpoint.address} does not answer ({exc})"
                return None
            self._client = client
            return client

    def antivirus_provenance(self) -> Mapping[str, str]:
        if self._facts is not None and self._endpoint is not None:
            return {**self._facts, "clamd": self._endpoint.source}
        if self._unavailable is not None:
            return {"engine": "none", "status": "not run"}
        return {}

    def _database_findings(self) -> list[Finding]:
        facts = self._facts or {}
        if facts.get("signatures") == clamd_manager.SIGNATURES_TEST:
            database = f"version {facts.get('database_version', 'none')}"
            return [
                rules.finding(
                    "ssi.antivirus-test-signatures", severity=self.test_signatures_severity, database=database
                )
            ]
        age = database_age(facts.get("database_date", ""), datetime.now(UTC))
        if age is None or age > self.max_age:
            return [
                rules.finding(
                    "ssi.antivirus-database-old",
                    version=facts.get("database_version", "?"),
                    date=facts.get("database_date") or "unknown",
                    max_days=f"{self.max_age.days}",
                )
            ]
        return []

    def _scan(self, client: ClamdClient, file: ProofFile, timeout: float) -> ScanReply:
        if file.data is not None:
            return client.scan_bytes(file.data, timeout)
        if client.address.is_local and file.disk_path is not None:
            fd = os.open(file.disk_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                return client.fildes(fd, timeout)
            finally:
                os.close(fd)
        with file.open() as stream:
            return client.instream_file(stream, timeout)

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        blocked = zip_scan_blocker(file)
        if blocked is not None:
            return blocked
        client = self._connect()
        if client is None:
            return CheckResult(state=CheckState.NOT_RUN, detail=self._unavailable)
        try:
            reply = self._scan(client, file, max(1.0, ctx.time_left() - 1.0))
        except ClamdLimitError as exc:
            return CheckResult(
                findings=[rules.finding("system.check-not-run", check=self.name, reason=str(exc))],
                state=CheckState.NOT_RUN,
                detail="refused by clamd (limit)",
            )
        except ClamdError as exc:
            return CheckResult(
                findings=[rules.finding("system.check-not-run", check=self.name, reason=str(exc))],
                state=CheckState.NOT_RUN,
                detail=type(exc).__name__,
            )
        findings = [classify_signature(signature) for signature in reply.signatures]
        findings += self._database_findings()
        partial = self._facts is not None and self._facts.get("signatures") == clamd_manager.SIGNATURES_TEST
        return CheckResult(
            findings=findings,
            state=CheckState.PARTIAL if partial else CheckState.RAN,
            detail="test signatures only" if partial else None,
        )

"""What the personal-data tests share: a file checked through the real engine, and its pii severity."""

from __future__ import annotations

import hashlib
from pathlib import Path

from validators import sniff
from validators.base import ProofFile
from validators.engine import Engine
from validators.model import FileVerdict, Finding, Severity

# Findings about coverage (what could not be read) are not findings about a value.
GAP_RULES = frozenset({"pii.not-inspected", "pii.not-readable"})
LEVEL = {None: "none", Severity.INFO: "info", Severity.WARNING: "warning", Severity.ERROR: "error"}
_RANK = {Severity.INFO: 1, Severity.WARNING: 2, Severity.ERROR: 3}


def proof_file(path: str, data: bytes, disk: Path | None = None) -> ProofFile:
    """A file of ``data`` (``disk``: the same bytes on disk, as the intake hands videos over)."""
    return ProofFile(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                     media_type=sniff.media_type(data), data=data, disk_path=disk)


def check(engine: Engine, path: str, data: bytes | str) -> FileVerdict:
    return engine.check_file(proof_file(path, data.encode() if isinstance(data, str) else data))


def pii_engine() -> Engine:
    """The pii check with the e-mail check: an e-mail's bodies and attachments are its children."""
    from validators.mail.check import MailValidator
    from validators.pii import make_validators

    return Engine([*make_validators({}), MailValidator()])


def value_findings(verdict: FileVerdict) -> list[Finding]:
    """The pii findings about values (rules and severities) in the file and its children, coverage gaps
    and the parent's copy of a child's error (``pii.embedded``) left out."""
    return [
        f
        for file in verdict.iter_files()
        for f in file.findings
        if f.rule.startswith("pii.") and f.rule not in GAP_RULES and f.rule != "pii.embedded"
    ]


def pii_level(verdict: FileVerdict) -> str:
    """The highest severity of a pii finding about a value: none, info, warning or error."""
    found = [f.severity for f in value_findings(verdict)]
    return LEVEL[max(found, key=_RANK.__getitem__) if found else None]


def rules_of(verdict: FileVerdict) -> list[tuple[str, str]]:
    return sorted((f.rule, f.severity.value) for f in value_findings(verdict))

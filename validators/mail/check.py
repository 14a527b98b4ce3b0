"""The ``email`` validator: picks the reader for the kind of container and returns what it harvested."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from validators import rules
from validators.base import CheckContext, CheckResult, ProofFile, Validator
from validators.mail import mime, names, transcripts
from validators.mail.detect import MailKind, mail_kind
from validators.mail.harvest import Harvest
from validators.mail.limits import MailLimits
from validators.model import CheckState
from validators.settings import EngineSettings

MAIL_RULES: tuple[str, ...] = (
    "format.email.malformed",
    "ssi.email.attachment-path",
    "ssi.email.encrypted",
    "ssi.email.header-control",
    "ssi.email.header-limit",
    "ssi.email.not-inspected",
    "ssi.email.too-deep",
    "ssi.email.too-large",
    "ssi.email.too-many-parts",
    "ssi.text.bidi-control",
    "ssi.text.terminal-colour",
    "ssi.text.terminal-escape",
)
# Findings that mean part of the content was not inspected: the check's coverage is partial.
_GAPS = frozenset(
    {
        "ssi.email.encrypted",
        "ssi.email.header-limit",
        "ssi.email.not-inspected",
        "ssi.email.too-deep",
        "ssi.email.too-large",
        "ssi.email.too-many-parts",
    }
)


def _read_tnef(data: bytes, harvest: Harvest) -> None:
    from validators.mail.tnef_parts import read_tnef_parts

    read_tnef_parts(data, harvest)


def _read_msg(data: bytes, harvest: Harvest) -> None:
    from validators.mail.outlook import read_msg

    read_msg(data, harvest)


def _read_pkcs7(data: bytes, harvest: Harvest, name: str) -> None:
    if name.lower().endswith(".p7s"):
        mime.signature(data, name, harvest)
    else:
        mime.unwrap_pkcs7(data, name, harvest)


READERS: Mapping[MailKind, Callable[[bytes, Harvest], None]] = {
    MailKind.MESSAGE: mime.read_message,
    MailKind.MBOX: transcripts.read_mbox,
    MailKind.SMTP: transcripts.read_smtp,
    MailKind.OUTLOOK: _read_msg,
    MailKind.TNEF: _read_tnef,
}


class MailValidator(Validator):
    name: ClassVar[str] = "email"
    rules: ClassVar[tuple[str, ...]] = MAIL_RULES
    reads_settings: ClassVar[tuple[str, ...]] = ("email",)
    reads_ruleset: ClassVar[tuple[str, ...]] = ()
    timeout: ClassVar[float] = 120.0

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.limits: MailLimits = EngineSettings.coerce(settings).email

    def applies_to(self, file: ProofFile) -> bool:
        return file.size > 0 and mail_kind(file) is not None

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        kind = mail_kind(file)
        harvest = Harvest(self.limits, ctx)
        if kind is None:
            return CheckResult(detail="not an e-mail container")
        if file.size > self.limits.max_message_bytes:
            harvest.add(rules.finding("ssi.email.too-large", what="the message", limit=self.limits.max_message_bytes))
            return CheckResult(findings=harvest.findings, state=CheckState.PARTIAL, detail="not parsed (size)")
        data = file.read(self.limits.max_message_bytes)
        if kind is MailKind.PKCS7:
            _read_pkcs7(data, harvest, names.display_name(file.name))
        else:
            READERS[kind](data, harvest)
        gaps = any(f.rule in _GAPS for f in harvest.findings)
        detail = f"{kind.value}: {len(harvest.children)} part(s)" + ("; partial coverage" if gaps else "")
        return CheckResult(
            findings=harvest.findings,
            state=CheckState.PARTIAL if gaps else CheckState.RAN,
            detail=detail,
            children=harvest.children,
        )

"""Whether a stored verdict was computed with every check run ("checked in full"), and what did not run.

A verdict is **incomplete** when a check could not run on some file (a check entry ``not_run``, at any
depth) or the pipeline reported a ``system.*`` error (scanner down, timeout, ruleset missing, package
unreadable). Such a verdict is ``error``, or ``fail`` when something wrong was found elsewhere (a NIR
found while clamd was down): either way the package is *not yet checked in full*. What instructors may
then see (``flows/access.py``): the report (masked evidence only) and the index row saying what did not
run, never the package bytes; the reconcile re-runs it with backoff until a run completes every check.

Decided on the typed verdict; a stored document (the record) is read back with ``validators.verdict_io``,
so the index, the reconcile, the access rule and re-validation all decide from the same bytes, and a
document that cannot be read as a whole is never taken as checked in full. A ``partial`` check (it ran with
reduced coverage, e.g. test signatures only) is a warning by contract, not a gap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from validators.model import CheckState, PackageVerdict, Severity
from validators.verdict_io import StoredVerdict, VerdictDocumentError, read_verdict

# Values of the ``proofcheck-checked`` tag (flows/storage.py) that the bucket policy reads.
IN_FULL = "full"
INCOMPLETE = "incomplete"
_MAX_LABEL = 400  # the index column's length, with room for "..."


@dataclass(frozen=True)
class Gaps:
    """What did not run in one verdict: check names (``antivirus``) and ``system.*`` rule ids."""

    checks: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()

    @property
    def in_full(self) -> bool:
        return not self.checks and not self.rules

    @property
    def tag(self) -> str:
        """The ``proofcheck-checked`` tag value."""
        return IN_FULL if self.in_full else INCOMPLETE

    def label(self) -> str:
        """``antivirus, pii (system.check-not-run, system.timeout)``: short, no package content.

        Check names and rule ids come from the engine's own vocabulary, never from the package.
        """
        text = ", ".join(self.checks) or "-"
        if self.rules:
            text += f" ({', '.join(self.rules)})"
        return text if len(text) <= _MAX_LABEL else text[: _MAX_LABEL - 3] + "..."


# What a document the reader refuses counts as: not checked in full, whatever it claims.
UNREADABLE = "verdict:unreadable"


def gaps_of(verdict: PackageVerdict | StoredVerdict | Mapping[str, Any]) -> Gaps:
    """The gaps of a verdict; a stored document is read with ``validators.verdict_io`` first.

    A document the reader refuses (broken, inconsistent, unknown schema) is never checked in full.
    """
    if isinstance(verdict, StoredVerdict):
        verdict = verdict.verdict
    elif not isinstance(verdict, PackageVerdict):
        try:
            verdict = read_verdict(verdict).verdict
        except VerdictDocumentError:
            return Gaps((), (UNREADABLE,))
    checks = {
        check.name
        for entry in verdict.iter_file_verdicts()
        for check in entry.checks
        if check.state is CheckState.NOT_RUN
    }
    rules = {f.rule for f in verdict.iter_findings() if f.is_system and f.severity is Severity.ERROR}
    return Gaps(tuple(sorted(checks)), tuple(sorted(rules)))


def checked_in_full(verdict: PackageVerdict | StoredVerdict | Mapping[str, Any]) -> bool:
    return gaps_of(verdict).in_full

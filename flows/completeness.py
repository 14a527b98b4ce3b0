"""Whether a stored verdict was computed with every check run ("checked in full"), and what did not run.

A verdict is **incomplete** when a check could not run on some file (a check entry ``not_run``, at any
depth) or the pipeline reported a ``system.*`` error (scanner down, timeout, ruleset missing, package
unreadable). Such a verdict is ``error``, or ``fail`` when something wrong was found elsewhere (a NIR
found while clamd was down): either way the package is *not yet checked in full*. What instructors may
then see (``flows/access.py``): the report (masked evidence only) and the index row saying what did not
run, never the package bytes; the reconcile re-runs it with backoff until a run completes every check.

Read from the stored document (the record), not from the engine's objects, so the index, the reconcile,
the access rule and re-validation all decide from the same bytes. A ``partial`` check (it ran with
reduced coverage, e.g. test signatures only) is a warning by contract, not a gap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from validators.verdict_diff import walk_files

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


def _system_errors(findings: Iterable[Any]) -> Iterable[str]:
    for finding in findings:
        if isinstance(finding, Mapping):
            rule = str(finding.get("rule", ""))
            if rule.startswith("system.") and finding.get("severity", "error") == "error":
                yield rule


def gaps_of(doc: Mapping[str, Any]) -> Gaps:
    """The gaps of a verdict document (contract shape: proofs, unmapped_files, package_findings)."""
    checks: set[str] = set()
    rules: set[str] = set(_system_errors(doc.get("package_findings") or []))
    files = [f for proof in doc.get("proofs") or [] for f in proof.get("files") or []]
    files += list(doc.get("unmapped_files") or [])
    for proof in doc.get("proofs") or []:
        rules.update(_system_errors(proof.get("findings") or []))
    for entry in walk_files(files):
        rules.update(_system_errors(entry.get("findings") or []))
        for check in entry.get("checks") or []:
            if isinstance(check, Mapping) and check.get("status") == "not_run":
                checks.add(str(check.get("name", "?")))
    if str(doc.get("status", "error")) == "error" and not checks and not rules:
        # An ``error`` status always means something did not run; a document that says so without
        # naming it (hand-made, truncated) is still not checked in full.
        rules.add("status:error")
    return Gaps(tuple(sorted(checks)), tuple(sorted(rules)))


def checked_in_full(doc: Mapping[str, Any]) -> bool:
    return gaps_of(doc).in_full

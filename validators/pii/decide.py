"""The rule (and so the severity) of one NIR-shaped candidate, from the evidence at its place.

The order is the charter's: a real person's number is never passed because of the words around it.

1. Positive evidence clears: a published fictitious identity (allow-list, by value) is ``info``; an
   identifier structure naming another registry (``structure.py``) is ``info``.
2. An INS assigning authority decides next: production (.8/.9) is an error, test/demonstration
   (.10/.11) a warning (a declaration, not evidence), social-security (.13/.14/.2) a NIR.
3. Words: a declaration (test, fictif...) lowers to a warning; a label or a person word makes an error;
   a word naming another kind of number (facture, suivi, tél....) lowers to a warning; no word at all
   leaves a key-valid NIR an error (a bare valid NIR is most likely real).

A key-valid number with a NIR structure therefore always gets a finding (at least a warning, ``info``
only on positive evidence). Without its key, or with a wrong one, a number is reported only where the
document names it as a NIR (a label or an INS authority).
Each decision carries a short reason (a label from the vocabulary, never document content).
"""

from __future__ import annotations

from dataclasses import dataclass

from validators.pii.allowlist import Allowlist
from validators.pii.context import ContextHit
from validators.pii.ins import Authority, InsOid
from validators.pii.nir import KeyStatus, NirMatch

RULE_NIR = "pii.nir"
RULE_NIA = "pii.nia"
RULE_BODY = "pii.nir-body"
RULE_LOOKALIKE = "pii.nir-lookalike"
RULE_UNCONFIRMED = "pii.nir-unconfirmed"
RULE_INS_PRODUCTION = "pii.ins-production"
RULE_INS_TEST = "pii.ins-test"
RULE_FICTITIOUS = "pii.fictitious-identity"
RULE_OTHER_IDENTIFIER = "pii.other-identifier"

DECISION_RULES = (
    RULE_NIR, RULE_NIA, RULE_BODY, RULE_LOOKALIKE, RULE_UNCONFIRMED, RULE_INS_PRODUCTION, RULE_INS_TEST,
    RULE_FICTITIOUS, RULE_OTHER_IDENTIFIER,
)


@dataclass(frozen=True)
class Decision:
    rule: str
    reason: str  # why this severity: which evidence or context word decided it


def _personal(match: NirMatch) -> str:
    return RULE_NIA if match.nir_like else RULE_NIR


def _words(hit: ContextHit, match: NirMatch) -> Decision:
    """A key-valid number that no authority or structure speaks for: the words decide."""
    if hit.declared is not None:
        return Decision(RULE_UNCONFIRMED, f"declared '{hit.declared}' (a declaration, not evidence)")
    if hit.positive is not None:
        also = f", despite '{hit.lowering}'" if hit.lowering else ""
        return Decision(_personal(match), f"labelled '{hit.positive}'{also}")
    if hit.lowering is not None:
        return Decision(RULE_UNCONFIRMED, f"context word '{hit.lowering}' (lowers, never clears)")
    return Decision(_personal(match), "no context word (a bare valid NIR)")


def decide(
    match: NirMatch,
    authority: InsOid | None,
    structure: str | None,
    hit: ContextHit,
    allowlist: Allowlist,
) -> Decision | None:
    """The rule ``match`` falls under at its place, or None when it is not reportable."""
    under = authority.authority if authority is not None else None
    authority_reason = f"assigning authority {authority.oid} ({under.value})" if authority and under else ""
    if match.key_status is KeyStatus.VALID:
        if allowlist.allows(match.body, match.key):
            return Decision(RULE_FICTITIOUS, "on the allow-list of published fictitious identities")
        if structure is not None:
            return Decision(RULE_OTHER_IDENTIFIER, structure)
        if under is Authority.PRODUCTION:
            return Decision(RULE_INS_PRODUCTION, authority_reason)
        if under is Authority.TEST:
            return Decision(RULE_INS_TEST, authority_reason + " (a declaration, not evidence)")
        if under is Authority.SOCIAL_SECURITY:
            return Decision(_personal(match), authority_reason)
        return _words(hit, match)
    if structure is not None:
        return None
    named = under is not None or hit.label is not None
    if not named:
        return None
    why = authority_reason or f"labelled '{hit.label}'"
    if match.key_status is KeyStatus.ABSENT:
        if allowlist.allows(match.body, None):
            return Decision(RULE_FICTITIOUS, "on the allow-list of published fictitious identities")
        if under is Authority.TEST:
            return Decision(RULE_INS_TEST, why + " (a declaration, not evidence)")
        if hit.declared is not None and under is not Authority.PRODUCTION:
            return Decision(RULE_UNCONFIRMED, f"{why}; declared '{hit.declared}' (a declaration, not evidence)")
        return Decision(RULE_BODY, why)
    # A wrong key: worth a look only where the document calls it a NIR (not under a test authority).
    if under is Authority.TEST:
        return None
    return Decision(RULE_LOOKALIKE, why)


__all__ = ["DECISION_RULES", "Decision", "decide"]

"""The rule (and so the severity) of one NIR-shaped candidate, from the evidence at its place.

The order is the charter's: a real person's number is never passed because of the words around it.

1. Positive evidence clears: a published fictitious identity (allow-list, by value) is ``info``; an
   identifier structure naming another registry (``structure.py``) is ``info``.
2. An INS assigning authority decides next: production (.8/.9) is an error, test/demonstration
   (.10/.11) a warning (a declaration, not evidence), social-security (.13/.14/.2) a NIR.
3. Words: a declaration (test, fictif...) lowers to a warning; a label (in the text or in the header of
   the value's table column) makes an error; a person word makes an error too, unless the number reads as
   a compact date-time; a word naming another kind of number (facture, suivi, tél....) lowers to a
   warning; no word at all leaves a key-valid NIR an error (a bare valid NIR is most likely real)...
4. ...unless its own shape makes it uncertain: a compact date-time (``datetimes.py``), look-alike letters
   read as digits in typed text, or two parts read together across other words and a line break. Those
   are warnings unless a label (or, for the last two, a person word) names them.

A key-valid number with a NIR structure therefore always gets a finding (at least a warning, ``info``
only on positive evidence). Without its key, or with a wrong one, a number is reported only where the
document names it as a NIR (a label or an INS authority; a person word for a 13-character body).
Each decision carries short bilingual notes (labels from the vocabulary, never document content).
"""

from __future__ import annotations

from dataclasses import dataclass

from validators.pii.allowlist import Allowlist
from validators.pii.context import ContextHit
from validators.pii.datetimes import compact_datetime
from validators.pii.explain import Note, render, word
from validators.pii.ins import Authority, InsOid
from validators.pii.nir import KeyStatus, Layout, NirMatch

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
    notes: tuple[Note, ...]  # why this severity: which evidence or context word decided it

    @property
    def reason(self) -> str:
        return render(self.notes)


NOT_EVIDENCE = Note("une déclaration, pas une preuve", "a declaration, not evidence")
DATETIME = Note("se lit comme une date-heure compacte", "reads as a compact date-time")
TYPED_LOOKALIKES = Note("dans un texte saisi", "in typed text")
APART = Note("d'autres mots entre les deux parties", "other words between its parts")
LOWERS = Note("atténue sans lever", "lowers, never clears")


@dataclass(frozen=True)
class Shape:
    """What in a number's own writing makes it less certain, and whether a person word outweighs it."""

    note: Note
    person_raises: bool


def shape_of(match: NirMatch, ocr: bool) -> Shape | None:
    """The uncertainty of ``match``'s own shape, or None for a plainly written number."""
    if match.layout is Layout.COMPACT and match.key is not None and compact_datetime(match.value):
        return Shape(DATETIME, person_raises=False)
    if match.lookalikes and not ocr:
        return Shape(TYPED_LOOKALIKES, person_raises=True)
    if match.layout is Layout.SPLIT_APART:
        return Shape(APART, person_raises=True)
    return None


def _personal(match: NirMatch) -> str:
    return RULE_NIA if match.nir_like else RULE_NIR


def _words(hit: ContextHit, match: NirMatch, shape: Shape | None) -> Decision:
    """A key-valid number that no authority or structure speaks for: the words decide."""
    if hit.declared is not None:
        return Decision(RULE_UNCONFIRMED, (word("déclaré", "declared", hit.declared), NOT_EVIDENCE))
    if hit.label is not None:
        also = (word("malgré", "despite", hit.lowering),) if hit.lowering else ()
        return Decision(_personal(match), (word("libellé", "labelled", hit.label), *also))
    if hit.person is not None and (shape is None or shape.person_raises):
        also = (word("malgré", "despite", hit.lowering),) if hit.lowering else ()
        return Decision(_personal(match), (word("personne", "person", hit.person), *also))
    lowering = (word("mot", "context word", hit.lowering),) if hit.lowering else ()
    if shape is not None:
        return Decision(RULE_UNCONFIRMED, (shape.note, *lowering, LOWERS))
    if lowering:
        return Decision(RULE_UNCONFIRMED, (*lowering, LOWERS))
    return Decision(_personal(match), (Note("aucun mot de contexte (NIR seul)", "no context word (a bare valid NIR)"),))


def person_names(match: NirMatch, ocr: bool) -> bool:
    """Whether a person word ("patient", "bénéficiaire") names ``match`` as a NIR: a body without key, and
    in OCR text a number whose key OCR may have misread (a valid key needs no word; a wrong one in typed
    text needs a label)."""
    return match.key_status is KeyStatus.ABSENT or (ocr and match.key_status is KeyStatus.INVALID)


def decide(
    match: NirMatch,
    authority: InsOid | None,
    structure: Note | None,
    hit: ContextHit,
    allowlist: Allowlist,
    ocr: bool = False,
) -> Decision | None:
    """The rule ``match`` falls under at its place, or None when it is not reportable."""
    under = authority.authority if authority is not None else None
    authority_notes: tuple[Note, ...] = ()
    if authority is not None and under is not None:
        authority_notes = (Note(f"autorité d'affectation {authority.oid} ({_AUTHORITY_FR[under]})",
                                f"assigning authority {authority.oid} ({under.value})"),)
    if match.key_status is KeyStatus.VALID:
        if allowlist.allows(match.body, match.key):
            return Decision(RULE_FICTITIOUS, (ALLOWED,))
        if structure is not None:
            return Decision(RULE_OTHER_IDENTIFIER, (structure,))
        if under is Authority.PRODUCTION:
            return Decision(RULE_INS_PRODUCTION, authority_notes)
        if under is Authority.TEST:
            return Decision(RULE_INS_TEST, (*authority_notes, NOT_EVIDENCE))
        if under is Authority.SOCIAL_SECURITY:
            return Decision(_personal(match), authority_notes)
        return _words(hit, match, shape_of(match, ocr))
    if structure is not None:
        return None
    body_named = person_names(match, ocr) and hit.person is not None
    if under is None and hit.label is None and not body_named:
        return None
    why = authority_notes or (word("libellé", "labelled", hit.label or hit.person or ""),)
    if match.key_status is KeyStatus.ABSENT:
        if allowlist.allows(match.body, None):
            return Decision(RULE_FICTITIOUS, (ALLOWED,))
        if under is Authority.TEST:
            return Decision(RULE_INS_TEST, (*why, NOT_EVIDENCE))
        if hit.declared is not None and under is not Authority.PRODUCTION:
            return Decision(RULE_UNCONFIRMED, (*why, word("déclaré", "declared", hit.declared), NOT_EVIDENCE))
        return Decision(RULE_BODY, why)
    # A wrong key: worth a look only where the document calls it a NIR (not under a test authority).
    if under is Authority.TEST:
        return None
    return Decision(RULE_LOOKALIKE, (*why, OCR_KEY) if ocr else why)


OCR_KEY = Note("lu par OCR : un seul chiffre mal lu suffit à fausser la clé",
               "read by OCR: one misread digit is enough to break the key")


ALLOWED = Note("sur la liste des identités fictives publiées", "on the allow-list of published fictitious identities")
_AUTHORITY_FR = {
    Authority.PRODUCTION: "production",
    Authority.TEST: "test",
    Authority.SOCIAL_SECURITY: "sécurité sociale",
}


__all__ = ["DECISION_RULES", "Decision", "Shape", "decide", "person_names", "shape_of"]

"""The words of decisions, in French first: finding decisions, dismissal reasons, proof decisions, and
the short list of reasons instructors give when they reject a proof.

The rejection reasons summarise, in our own words, what ANS instructors wrote when proofs of LGC
Vague 1 came back KO (the RETEX notes of the referential's Squash exports): a capture that shows
something else than what the proof asks (a DataMatrix instead of the qualified identity screen), a
demonstration missing a step or a field (the identity's status, the INSi call, the stored trace), no
log with date, time and user, a file renamed so that the naming rule cannot be checked, a proof filed
under another requirement, the same document given for two proofs, a CNDA certificate that does not
cover the right service, an unreadable capture, real personal data, a non-conformant document.
"""

from __future__ import annotations

FINDING_DECISIONS = {
    "confirm": ("Constat confirmé", "Confirmed"),
    "dismiss": ("Constat écarté", "Dismissed"),
}
DISMISS_REASONS = {
    "false_positive": ("Faux positif", "False positive"),
    "accepted": ("Accepté avec justification", "Accepted with justification"),
    "out_of_scope": ("Hors périmètre", "Out of scope"),
}
PROOF_DECISIONS = {
    "accepted": ("Preuve acceptée", "Accepted"),
    "rejected": ("Preuve rejetée", "Rejected"),
    "info_requested": ("Complément d'information demandé", "More information requested"),
}
REJECTION_REASONS = {
    "off-topic": "Ne montre pas ce que l'énoncé de la preuve demande (hors sujet, confusion avec une autre preuve)",
    "incomplete": "Incomplète : une étape, un champ ou un statut attendu n'apparaît pas",
    "no-trace": "Trace ou journal absent ou incomplet (date, heure, utilisateur, transaction)",
    "naming": "Fichier renommé : la règle de nommage ne peut pas être vérifiée",
    "misfiled": "Déposée sous une autre exigence ou un autre numéro de preuve",
    "duplicate": "Même document fourni pour plusieurs preuves sans montrer ce que chacune demande",
    "certificate": "Justificatif (homologation CNDA, attestation) absent ou ne couvrant pas le service demandé",
    "unreadable": "Illisible ou inexploitable (résolution, vidéo coupée, format)",
    "real-data": "Données personnelles ou de santé réelles : seules des données fictives sont admises",
    "non-conformant": "Document ou message non conforme (CDA, flux d'interopérabilité)",
    "other": "Autre motif (précisé en commentaire)",
}
STATES = {
    "none": ("Sans décision", "No decision"),
    "decided": ("Décidé sur ce verdict", "Decided on this verdict"),
    "carried": ("Décision reportée", "Carried over"),
    "review": ("À revoir", "To review again"),
}
STATUS = {
    "pass": ("✔", "Conforme", "Pass"),
    "warning": ("⚠", "À examiner", "Warning"),
    "error": ("⊘", "Vérification incomplète", "Error"),
    "fail": ("✖", "Non conforme", "Fail"),
}
SEVERITY = {
    "error": ("✖", "Erreur"),
    "warning": ("⚠", "Avertissement"),
    "info": ("ℹ", "Information"),
}


def rule_text(rule_id: str) -> tuple[str, str] | None:
    """The rule's title and why, in French when the catalogue has it (else its English), or None."""
    from validators import rules

    try:
        rule = rules.get(rule_id)
    except rules.UnknownRuleError:
        return None
    french = dict(rule.fr)
    return french.get("title") or rule.title, french.get("why") or rule.why


def decision_label(kind: str, decision: str) -> str:
    table = FINDING_DECISIONS if kind == "finding" else PROOF_DECISIONS
    return table.get(decision, (decision, decision))[0]


def reason_label(kind: str, code: str) -> str:
    if kind == "finding":
        return DISMISS_REASONS.get(code, (code, code))[0]
    return REJECTION_REASONS.get(code, code)


__all__ = ["DISMISS_REASONS", "FINDING_DECISIONS", "PROOF_DECISIONS", "REJECTION_REASONS", "SEVERITY", "STATES",
           "STATUS", "decision_label", "reason_label", "rule_text"]

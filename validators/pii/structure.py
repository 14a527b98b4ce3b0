"""Identifier structures that tell what a NIR-shaped number is: positive evidence that clears it.

Words around a number are only a hint (``context.py``); a *structure* is a fact the document states in
machine-readable form: the number is the whole value of an identifier whose assigning authority is a
registry of organisations or professionals, or the lot/serial field of a GS1 element string. Each check
requires the number to fill the value exactly, and reads the authority inside the same element, field
or object, so that an organisation OID written next to a patient's NIR never clears it.

Sources (public ANS / Interop'Santé material, facts only):
- ``1.2.250.1.71.4.2.2``: identifiant national de structure (IdNat_Struct), the ANS CI-SIS OID for
  organisations: a prefix digit then the FINESS (1), SIREN (2), SIRET (3) or RPPS-rang (4) number; the
  ANS CDA examples write it as ``<id root="1.2.250.1.71.4.2.2" extension="1120456789"/>``. A SIRET-based
  one is 15 digits starting with 3: NIR-shaped (NIA-like sex digit).
- ``1.2.250.1.71.4.2.1``: identifiant national de professionnel de santé (IdNat_PS): 8 + RPPS or
  0 + ADELI, as in the ANS examples' ``<id root="1.2.250.1.71.4.2.1" extension="801234567897"/>``.
- FHIR identifier systems of the same registries (FR Core / Annuaire Santé): ``urn:oid:`` of the two
  OIDs above, and the FINESS, SIRENE, RPPS and ADELI system URLs; HL7 v2 identifier type codes of FR Core
  (``fr-core-cs-v2-0203``): FINEG, FINEJ, SIREN, SIRET, IDNST, RPPS, ADELI, IDNPS.
- GS1 General Specifications: application identifiers (10) batch/lot and (21) serial number, after a
  (01) GTIN of 14 digits.
"""

from __future__ import annotations

import re

from validators.pii.explain import Note

ORGANISATION_OIDS = {
    "1.2.250.1.71.4.2.2": "IdNat_Struct (FINESS, SIREN, SIRET, RPPS-rang)",
    "1.2.250.1.71.4.2.1": "IdNat_PS (RPPS, ADELI)",
}
_OID = r"1\.2\.250\.1\.71\.4\.2\.[12]"
_ROOT_ATTR = re.compile(rf"""\broot\s*=\s*["'](?P<oid>{_OID})["']""")
_TAG_START = re.compile(r"<[^<>]*$")
_ATTR_VALUE_BEFORE = re.compile(r"""\b[\w:.-]+\s*=\s*(?P<q>["'])$""")
_HL7_TYPES = "FINEG|FINEJ|SIREN|SIRET|IDNST|RPPS|ADELI|IDNPS"
_HL7_AUTHORITY = re.compile(rf"\^[^|~\r\n]{{0,200}}?(?:&(?P<oid>{_OID})&|\^(?P<type>{_HL7_TYPES})(?:\^|$|[|~\r\n]))")
_JSON_VALUE_BEFORE = re.compile(r""""value"\s*:\s*"$""")
_JSON_SYSTEM = re.compile(
    rf""""system"\s*:\s*"(?P<system>urn:oid:{_OID}|[^"]{{0,80}}(?:finess|sirene|siret|siren|rpps|adeli)[^"]{{0,80}})\"""",
    re.IGNORECASE,
)
_FHIR_XML_SYSTEM = re.compile(
    rf"""<(?:system\s+)?value\s*=\s*["'](?P<system>urn:oid:{_OID}|[^"'<>]{{0,80}}(?:finess|sirene|siret|siren|rpps|adeli)"""
    r"""[^"'<>]{0,80})["'][^<>]*>\s*$""",
    re.IGNORECASE,
)
_GS1_BEFORE = re.compile(r"\(01\)\s?\d{14}(?:\s?\(\d{2,4}\)\s?[^()\s]{1,20})*\s?\((?P<ai>10|21)\)\s?$")
_WINDOW = 400


def _under(fr: str, en: str, oid: str) -> Note:
    return Note(f"{fr} sous {ORGANISATION_OIDS[oid]}", f"{en} under {ORGANISATION_OIDS[oid]}")


def _system(system: str) -> Note:
    return Note(f"identifiant FHIR du système {system}", f"FHIR identifier of system {system}")


def _xml_attribute(text: str, start: int, end: int) -> Note | None:
    before = text[max(0, start - _WINDOW) : start]
    opening = _TAG_START.search(before)
    quote = _ATTR_VALUE_BEFORE.search(before)
    if opening is None or quote is None or not text.startswith(quote.group("q"), end):
        return None
    after = text[end : end + _WINDOW]
    closing = after.find(">")
    tag = opening.group(0) + " " + (after[:closing] if closing >= 0 else "")
    root = _ROOT_ATTR.search(tag)
    if root is not None:
        return _under("identifiant", "identifier", root.group("oid"))
    # FHIR XML: <system value="..."/> right before <value value="..."/> in the same identifier.
    system = _FHIR_XML_SYSTEM.search(before[: opening.start()])
    return _system(system.group("system")) if system is not None else None


def _hl7_component(text: str, start: int, end: int) -> Note | None:
    if start > 0 and text[start - 1] not in "|~":
        return None
    found = _HL7_AUTHORITY.match(text, end, min(len(text), end + _WINDOW))
    if found is None:
        return None
    if found.group("oid"):
        return _under("identifiant HL7", "HL7 identifier", found.group("oid"))
    kind = found.group("type")
    return Note(f"identifiant HL7 de type {kind}", f"HL7 identifier of type {kind}")


def _fhir_identifier(text: str, start: int, end: int) -> Note | None:
    before = text[max(0, start - _WINDOW) : start]
    if not _JSON_VALUE_BEFORE.search(before) or not text.startswith('"', end):
        return None
    # The same JSON object: from the last "{" before the value to the first "}" after it.
    obj_start = before.rfind("{")
    after = text[end : end + _WINDOW]
    obj_end = after.find("}")
    if obj_start < 0 or obj_end < 0 or "}" in before[obj_start:]:
        return None
    system = _JSON_SYSTEM.search(before[obj_start:] + after[:obj_end])
    return _system(system.group("system")) if system is not None else None


def _gs1(text: str, start: int, end: int) -> Note | None:
    found = _GS1_BEFORE.search(text[max(0, start - 120) : start])
    if found is None:
        return None
    if found.group("ai") == "10":
        return Note("lot GS1 (10)", "GS1 batch/lot (10)")
    return Note("numéro de série GS1 (21)", "GS1 serial number (21)")


def identified_as(text: str, start: int, end: int) -> Note | None:
    """What the structure around ``text[start:end]`` says the number is, or None (never a person's id)."""
    # Each structure has a tell-tale character right at the number's edge: cheap to rule out first.
    following = text[end : end + 1]
    previous = text[start - 1 : start] if start else ""
    if following in ('"', "'"):
        return _xml_attribute(text, start, end) or _fhir_identifier(text, start, end)
    if following == "^" and previous in ("|", "~"):
        return _hl7_component(text, start, end)
    if ")" in text[max(0, start - 2) : start]:
        return _gs1(text, start, end)
    return None


__all__ = ["ORGANISATION_OIDS", "identified_as"]

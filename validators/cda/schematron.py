"""Run the CI-SIS Schematrons on a CDA document: its volet, then the five transverse ANS profiles.

The volet is chosen from what the synced tree says (``volet_choice.py``); the verdict names it and why
(``cda.volet``, info), or says that the tree has none for the document (``cda.volet-unknown``). SVRL
failed assertions become ``cda.schematron`` findings with the rule's id and role and the Schematron's
own message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from validators import rules
from validators.base import CheckContext
from validators.cda import profiles
from validators.cda.compiler import processor, saxon_message
from validators.cda.document import HL7_NS, CdaDocument, line_of, text_of
from validators.cda.optimise import DOCS_PARAM
from validators.cda.ruleset import LoadedRuleset, ProfileUnavailableError
from validators.cda.volet_choice import VoletChoice, choose_volet
from validators.model import CheckState, Finding, Location, Severity
from validators.safexml import parse_xml

SVRL_NS = "http://purl.oclc.org/dsdl/svrl"
TRANSVERSE_PROFILES = ("IHE", "ModelesDeContenusCDA", "Modeles_ANS", "StructurationMinimale", "terminologies")
MAX_FINDINGS_PER_PROFILE = 100
RULES = ("cda.schematron", "cda.volet", "cda.volet-unknown", "cda.partial-coverage")

_ROLE_SEVERITY = {
    "error": Severity.ERROR,
    "fatal": Severity.ERROR,
    "erreur": Severity.ERROR,
    "warning": Severity.WARNING,
    "warn": Severity.WARNING,
    "avertissement": Severity.WARNING,
    "info": Severity.INFO,
    "information": Severity.INFO,
    "note": Severity.INFO,
}
_NS_PREDICATE = re.compile(r"\[namespace-uri\(\)='[^']*'\]")
_STEP = re.compile(r"\*:([A-Za-z_][\w.-]*)")
_PLAIN_STEP = re.compile(r"(?<=/)(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)")


@dataclass
class Outcome:
    findings: list[Finding] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)


def _xpath_of(location: str) -> str:
    """SVRL's namespace-qualified location, as a plain path (/ClinicalDocument[1]/component[1]...)."""
    return _STEP.sub(r"\1", _NS_PREDICATE.sub("", location))


def _line_of(tree: etree._ElementTree, location: str) -> int | None:
    if not location.startswith("/"):
        return None
    steps = _STEP.sub(r"\1", _NS_PREDICATE.sub("", location))
    if "@" in steps or "(" in steps:
        steps = steps.split("/@", 1)[0]
        if "(" in steps:
            return None
    steps = _PLAIN_STEP.sub(r"*[local-name()='\1']", steps)
    try:
        found = tree.xpath(steps)
    except (etree.XPathError, ValueError):
        return None
    if isinstance(found, list) and found and isinstance(found[0], etree._Element):
        return line_of(found[0])
    return None


def svrl_findings(svrl: str, profile: str, tree: etree._ElementTree) -> list[Finding]:
    parsed = parse_xml(svrl.encode("utf-8"), max_bytes=512 * 1024 * 1024)
    if not parsed.ok:
        raise ProfileUnavailableError("its report (SVRL) is not readable")
    findings = []
    pattern = ""
    defaults = {f"{{{SVRL_NS}}}failed-assert": "error", f"{{{SVRL_NS}}}successful-report": "info"}
    # SVRL lists results in document order after the pattern that produced them: that pattern names the rule.
    for node in parsed.root:
        if node.tag == f"{{{SVRL_NS}}}active-pattern":
            pattern = node.get("id") or node.get("name") or ""
            continue
        if node.tag not in defaults:
            continue
        role = (node.get("role") or defaults[node.tag]).strip().lower()
        text_node = node.find(f"{{{SVRL_NS}}}text")
        text = " ".join(text_of(text_node).split()) if text_node is not None else ""
        location = node.get("location") or ""
        findings.append(
            rules.finding(
                "cda.schematron",
                Location(line=_line_of(tree, location), xpath=_xpath_of(location) or None),
                severity=_ROLE_SEVERITY.get(role, Severity.ERROR),
                profile=profile,
                text=text[:500],
                rule_ref=node.get("id") or pattern or "?",
                role=role,
            )
        )
    findings.sort(key=lambda f: (f.severity != Severity.ERROR, f.location.line or 0))
    return findings[:MAX_FINDINGS_PER_PROFILE]


_OID = re.compile(r"^[0-9]+(?:\.[0-9]+)*$")


def _documents(document: CdaDocument, ruleset: LoadedRuleset) -> Any:
    """The ruleset files this document's rules may read with doc(), parsed once per process.

    The terminology profile reads ``terminologie/<codeSystem>.rdf`` for each code system the document
    uses, and the UCUM file for units. Only OIDs name files (a document's attribute never makes a path).
    """
    systems = {
        value
        for node in document.root.iter()
        if isinstance(node.tag, str) and (value := node.get("codeSystem") or "") and _OID.match(value)
    }
    systems.add(profiles.UCUM_OID)
    return ruleset.documents(
        path for oid in sorted(systems) if (path := profiles.terminology_file(ruleset.tree, oid)).is_file()
    )


def _run_one(
    ruleset: LoadedRuleset,
    name: str,
    label: str,
    source: Any,
    document: CdaDocument,
    outcome: Outcome,
    documents: Any = None,
) -> None:
    try:
        executable = ruleset.executable(name)
        with ruleset.run_lock(name):
            if documents is not None:
                executable.set_parameter(DOCS_PARAM, documents)
            svrl = executable.transform_to_string(xdm_node=source)
        outcome.findings.extend(svrl_findings(svrl or "", label, document.tree))
        outcome.ran.append(label)
    except ProfileUnavailableError as exc:
        outcome.not_run.append(label)
        outcome.findings.append(rules.finding("system.ruleset-gap", profile=label, reason=str(exc)))
    except Exception as exc:  # a schematron that throws at run time (e.g. a missing value-set file)
        outcome.not_run.append(label)
        outcome.findings.append(
            rules.finding(
                "system.ruleset-gap",
                profile=label,
                reason="it failed on this document",  # fixed words (French report); Saxon's own words:
                evidence=saxon_message(exc),
            )
        )


def _run_volet(
    ruleset: LoadedRuleset, choice: VoletChoice, source: Any, document: CdaDocument, outcome: Outcome
) -> str:
    """Run the chosen volet; with several candidates, keep the one with the fewest errors (returned)."""
    assert choice.name is not None
    best: Outcome | None = None
    kept = choice.name
    for name in choice.alternatives or (choice.name,):
        attempt = Outcome()
        _run_one(ruleset, name, f"volet {name}", source, document, attempt)
        errors = sum(f.severity is Severity.ERROR for f in attempt.findings)
        if (
            best is None
            or (not attempt.not_run and errors < sum(f.severity is Severity.ERROR for f in best.findings))
            or (best.not_run and not attempt.not_run)
        ):
            best, kept = attempt, name
        if not attempt.not_run and errors == 0:
            break
    assert best is not None
    outcome.findings.extend(best.findings)
    outcome.ran.extend(best.ran)
    outcome.not_run.extend(best.not_run)
    return kept


def _terminology_gaps(document: CdaDocument, ruleset: LoadedRuleset) -> list[str]:
    """Code systems used by the document that the terminology profile could not check."""
    missing = {g["oid"]: g["detail"] for g in ruleset.version.gaps if g.get("kind") == "missing-terminology"}
    if not missing:
        return []
    used = {node.get("codeSystem") for node in document.root.iter(f"{{{HL7_NS}}}code", f"{{{HL7_NS}}}value")}
    return sorted(missing[oid] for oid in used if oid in missing)


def _entry_gaps(entry: dict[str, Any]) -> Iterable[str]:
    for gap in entry.get("gaps", []):
        if gap.get("effect") == "partial":
            yield f"{gap['kind']} {gap['detail']}"


def run(
    document: CdaDocument,
    ruleset: LoadedRuleset,
    ctx: CheckContext,
    profiles_to_run: Iterable[str] = TRANSVERSE_PROFILES,
) -> tuple[Outcome, CheckState]:
    outcome = Outcome()
    volets = ruleset.volets()
    choice = choose_volet(document, ruleset.volet_map())
    try:
        source = processor().parse_xml(xml_text=document.serialize().decode("utf-8"))
    except Exception as exc:  # Saxon's parser has its own limits (JAXP: 100 levels of elements)
        reason = f"Saxon could not read the document: {saxon_message(exc)}"
        outcome.findings.append(rules.finding("system.check-not-run", check="cda-schematron", reason=reason))
        return outcome, CheckState.NOT_RUN
    if choice.name is None and not document.is_level1:
        outcome.findings.append(rules.finding("cda.volet-unknown", reason=choice.reason))
    elif choice.name is not None:
        if choice.note:
            outcome.partial.append(choice.note)
        kept = _run_volet(ruleset, choice, source, document, outcome)
        gaps = list(_entry_gaps(volets.get(kept, {})))
        if gaps:
            outcome.partial.append(
                f"volet {kept}: {len(gaps)} rule file(s) missing from the ruleset "
                f"({'; '.join(gaps[:3])}{' ...' if len(gaps) > 3 else ''})"
            )
        reason = choice.reason
        if len(choice.alternatives) > 1:
            reason += f"; best fit (fewest errors) of {', '.join(choice.alternatives)}"
        outcome.findings.append(rules.finding("cda.volet", volet=kept, reason=reason))
    documents = _documents(document, ruleset)
    for profile in profiles_to_run:
        ctx.check_time()
        _run_one(ruleset, profile, profile, source, document, outcome, documents)
    if "terminologies" in outcome.ran:
        unchecked = _terminology_gaps(document, ruleset)
        if unchecked:
            outcome.partial.append(
                "terminology profile: codes of "
                + ", ".join(unchecked)
                + " not checked (terminology files absent from the ruleset)"
            )
    for what in outcome.partial:
        outcome.findings.append(rules.finding("cda.partial-coverage", what=what))
    if outcome.not_run and not outcome.ran:
        return outcome, CheckState.NOT_RUN
    if outcome.partial or outcome.not_run or any(f.rule == "cda.volet-unknown" for f in outcome.findings):
        return outcome, CheckState.PARTIAL
    return outcome, CheckState.RAN

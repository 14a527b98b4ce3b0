"""CDA conformity checks (issue 3): CI-SIS XSD, JDV_J66 document type, CI-SIS Schematron, level-1
documents and IHE_XDM archives, against a versioned ruleset synced from the ANS (see README.md here).

Three checks: ``cda`` (well-formedness and XML attacks, XSD, document type, embedded body),
``cda-schematron`` (volet + transverse profiles, separate so that a slow profile never hides the XSD
verdict) and ``cda-xdm`` (IHE_XDM zip archives).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from validators import rules
from validators.base import CheckContext, CheckResult, FileTooLargeError, ProofFile, Validator
from validators.cda import embedded, schematron, typecode, valuesets, xsd
from validators.cda.document import Loaded, load
from validators.cda.ruleset import LoadedRuleset, ProfileUnavailableError, latest
from validators.cda.valueset_sync import j66_in_force, j66_of
from validators.model import CheckState, Finding
from validators.safexml import RULES as SAFEXML_RULES
from validators.safexml import looks_like_xml
from validators.settings import EngineSettings

_XML_TYPES = ("text/xml", "application/xml")
_NOT_CDA_TYPES = ("text/html", "application/xhtml+xml")


def is_xml_candidate(file: ProofFile) -> bool:
    """XML proof files (by real type, or by extension with XML-looking content)."""
    media = file.media_type.split(";")[0].strip().lower()
    if media in _NOT_CDA_TYPES:
        return False
    if media in _XML_TYPES or media.endswith("+xml"):
        return True
    return file.extension in ("xml", "cda") and looks_like_xml(file.head(4096))


class _CdaCheck(Validator):
    rules: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = EngineSettings.coerce(settings)
        self.max_bytes = self.settings.xml_max_bytes
        self.max_depth = self.settings.xml_max_depth
        self.store_root: Path = self.settings.ruleset_store
        # The J66 used when the ruleset in force has none (resolved once: not per document).
        self.j66_snapshot = self.settings.j66 or valuesets.bundled_j66_path()

    def applies_to(self, file: ProofFile) -> bool:
        return is_xml_candidate(file)

    def ruleset(self, ctx: CheckContext) -> LoadedRuleset | None:
        if isinstance(ctx.ruleset, LoadedRuleset):
            return ctx.ruleset
        return latest(self.store_root)

    def load(self, file: ProofFile) -> Loaded | CheckResult:
        try:
            data = file.read(self.max_bytes)
        except FileTooLargeError:
            return CheckResult(
                findings=[
                    rules.finding(
                        "ssi.xml.limit", reason="the document is over the size limit",
                        evidence=f"{file.size} bytes, limit {self.max_bytes}",
                    )
                ],
                state=CheckState.NOT_RUN,
                detail="over the XML size limit",
            )
        return load(data, max_bytes=self.max_bytes, max_depth=self.max_depth)


def missing_ruleset(check: str) -> Finding:
    return rules.finding(
        "system.ruleset-missing",
        component="CDA ruleset",
        check=check,
        reason="no ruleset has been synced (run `proofcheck rulesets sync --from DIR_OR_URL`)",
    )


class CdaValidator(_CdaCheck):
    """Well-formedness and XML attacks, CI-SIS XSD, document type in J66, level-1 embedded body."""

    name: ClassVar[str] = "cda"
    rules: ClassVar[tuple[str, ...]] = (
        *SAFEXML_RULES,
        "cda.xsd",
        "cda.not-cda",
        *typecode.RULES,
        *embedded.RULES,
    )
    reads_settings: ClassVar[tuple[str, ...]] = (
        "xml_max_bytes", "xml_max_depth", "rulesets_dir", "j66", "cda_max_payloads"
    )
    reads_ruleset: ClassVar[tuple[str, ...]] = ("J66", "cda_xsd")
    timeout: ClassVar[float] = 60.0

    def components(self) -> Mapping[str, str]:
        loaded = latest(self.store_root)
        out = {"J66": j66_in_force(loaded.version if loaded is not None else None, self.j66_snapshot).version}
        if loaded is not None:
            out["cda_xsd"] = loaded.components().get("cda_xsd", "")
        return out

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        loaded = self.load(file)
        if isinstance(loaded, CheckResult):
            return loaded
        problem = loaded.parsed.problem
        if problem is not None:
            finding = rules.finding(
                problem.rule, _location(problem.line, problem.column), reason=problem.reason,
                evidence=problem.evidence,
            )
            return CheckResult(findings=[finding], state=CheckState.RAN, detail="document not parsed")
        document = loaded.document
        if document is None:
            if file.extension == "cda" or "ClinicalDocument" in loaded.root_name:
                return CheckResult(findings=[rules.finding("cda.not-cda", root=loaded.root_name)])
            return CheckResult(detail="XML document that is not a CDA document")
        ruleset = self.ruleset(ctx)
        # The J66 synced with this ruleset (validators/cda/valueset_sync.py), else the shipped snapshot.
        findings = typecode.check(document, j66_of(ruleset, self.store_root, self.j66_snapshot), ctx.expectations)
        children, body_findings = embedded.extract(
            document,
            max_payloads=self.settings.cda_max_payloads,
            check_time=ctx.check_time,
        )
        findings += body_findings
        if ruleset is None:
            findings.append(missing_ruleset("the CDA schema check"))
            return CheckResult(findings, CheckState.PARTIAL, "no ruleset: XSD not checked", children)
        try:
            findings += xsd.validate(ruleset.xsd(), document.tree)
        except ProfileUnavailableError as exc:
            findings.append(rules.finding("system.ruleset-gap", profile="CDA_extended.xsd", reason=str(exc)))
            return CheckResult(findings, CheckState.PARTIAL, "XSD not checked", children)
        return CheckResult(findings, CheckState.RAN, None, children)


class CdaSchematronValidator(_CdaCheck):
    """The document's CI-SIS volet and the transverse ANS profiles."""

    name: ClassVar[str] = "cda-schematron"
    rules: ClassVar[tuple[str, ...]] = schematron.RULES
    reads_settings: ClassVar[tuple[str, ...]] = ("xml_max_bytes", "xml_max_depth", "rulesets_dir", "cda_profiles")
    reads_ruleset: ClassVar[tuple[str, ...]] = ("TestContenuCDA", "cda_xsd", "JDV:*")
    timeout: ClassVar[float] = 180.0  # the first load of the largest profile takes seconds

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        loaded = self.load(file)
        if isinstance(loaded, CheckResult):
            return CheckResult(state=CheckState.NOT_RUN, detail="document not parsed (see the cda check)")
        if loaded.document is None:
            # Not parsed or not a CDA document: the cda check reports it; nothing to run here.
            return CheckResult(detail="no CDA document to check")
        ruleset = self.ruleset(ctx)
        if ruleset is None:
            return CheckResult(
                [missing_ruleset("the CI-SIS Schematron check")], CheckState.NOT_RUN, "no ruleset synced"
            )
        profiles = self.settings.cda_profiles
        outcome, state = schematron.run(
            loaded.document, ruleset, ctx, schematron.TRANSVERSE_PROFILES if profiles is None else profiles
        )
        detail = None
        if outcome.not_run:
            detail = "not run: " + ", ".join(outcome.not_run)
        return CheckResult(outcome.findings, state, detail)


def _location(line: int | None, column: int | None) -> Any:
    from validators.model import Location

    return Location(line=line, column=column)


def make_validators(settings: Mapping[str, Any]) -> list[Validator]:
    from validators.registry import family_validators

    return family_validators(__name__, settings)


def ruleset_info(settings: Mapping[str, Any] | None) -> Any:
    """The engine's RulesetInfo for the newest synced ruleset (None when nothing is synced)."""
    from validators.engine import RulesetInfo

    typed = EngineSettings.coerce(settings)
    loaded = latest(typed.ruleset_store)
    if loaded is None:
        return None
    components = dict(loaded.components())
    components["J66"] = j66_in_force(loaded.version, typed.j66 or valuesets.bundled_j66_path()).version
    return RulesetInfo(version=loaded.version.version, components=components, handle=loaded)

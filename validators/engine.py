"""Run validators over a package and roll the results up into a PackageVerdict.

Fail closed: a validator that raises or overruns its time limit becomes a ``system.*`` error finding
for that file, and the run goes on. Deterministic: files, findings and checks come out sorted.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from validators import __version__, rules, sniff
from validators.base import CheckContext, CheckResult, DeadlineExceededError, Embedded, ProofFile, Validator
from validators.model import (
    CheckRun,
    CheckState,
    FileVerdict,
    Finding,
    Location,
    PackageInfo,
    PackageVerdict,
    ProofVerdict,
    Provenance,
    Severity,
    sorted_findings,
    with_findings,
)
from validators.pii.mask import mask_identifiers
from validators.settings import EngineSettings

log = logging.getLogger(__name__)

MAX_CHILD_DEPTH = 4
MAX_CHILDREN_PER_FILE = 1000
# Checks that also run on the package file itself when the intake could not hand every byte of it to the
# file checks (a tar, 7z or RAR package, a zip with members left out): clamd unpacks those formats.
CONTAINER_CHECKS = frozenset({"antivirus"})
SYSTEM_RULES = frozenset(r for r in rules.catalogue() if r.startswith("system."))


@dataclass
class PackageContents:
    """What the intake hands the engine: the package facts, its files and what it found on the way."""

    info: PackageInfo
    files: list[ProofFile]
    ids_as_written: dict[str, str] = field(default_factory=dict)
    package_findings: list[Finding] = field(default_factory=list)
    proof_findings: dict[str, list[Finding]] = field(default_factory=dict)
    file_findings: dict[str, list[Finding]] = field(default_factory=dict)
    expectations: dict[str, dict[str, Any]] = field(default_factory=dict)
    container: ProofFile | None = None  # the package file, when CONTAINER_CHECKS must see it whole


@dataclass(frozen=True)
class RulesetInfo:
    version: str = "none"
    components: Mapping[str, str] = field(default_factory=dict)
    handle: Any = None  # the loaded ruleset, passed to checks through the context


ProgressCallback = Callable[[int, int, str], None]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _safe_member_name(name: str) -> str:
    """A member's relative path for display: no root, no "..", no empty or dot segments."""
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("/", ".", "..", "")]
    return "/".join(parts)


def make_child(parent: ProofFile, embedded: Embedded, index: int) -> ProofFile:
    """A ProofFile for content found inside ``parent``."""
    name = _safe_member_name(embedded.name) or f"embedded-{index}"
    try:
        media = sniff.media_type(embedded.data[: sniff.SNIFF_BYTES])
    except sniff.SnifferUnavailableError:
        media = sniff.UNKNOWN
    return ProofFile(
        path=f"{parent.path}!{index}:{name}",
        size=len(embedded.data),
        sha256=hashlib.sha256(embedded.data).hexdigest(),
        media_type=media,
        data=embedded.data,
        depth=parent.depth + 1,
        parent=parent.path,
        proof_id=parent.proof_id,
        origin=embedded.origin,
        own_name=name,
    )


# Families whose errors inside an embedded file are repeated on the file that holds it, so that the
# outer file a person would open carries the danger too (a zip holding malware, a CDA holding a NIR).
PROPAGATED_FAMILIES = {"ssi": "ssi.embedded-risk", "pii": "pii.embedded"}


def _risks_inside(children: Sequence[FileVerdict]) -> list[Finding]:
    out = []
    for family, rule_id in PROPAGATED_FAMILIES.items():
        hits = sorted(
            {(child.path, f.rule) for top in children for child in top.iter_files() for f in child.findings
             if f.family == family and f.severity is Severity.ERROR and f.rule != rule_id}
        )
        if hits:
            path, rule = hits[0]
            inner = path.rsplit("!", 1)[-1].split(":", 1)[-1]
            out.append(rules.finding(rule_id, Location(entry=inner), count=len(hits), rule=rule, entry=inner))
    return out


def _run_one(validator: Validator, file: ProofFile, ctx: CheckContext, timeout: float) -> CheckResult:
    """Run a check in a worker thread under its time limit; any failure becomes a system finding."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = validator.check(file, ctx)
        except BaseException as exc:  # fail closed on anything, including a RecursionError
            outcome["error"] = exc

    worker = threading.Thread(target=target, name=f"check-{validator.name}", daemon=True)
    worker.start()
    worker.join(max(0.0, ctx.deadline - time.monotonic()))
    if worker.is_alive():
        ctx.cancelled.set()
        log.warning("check %s overran %.1f s on a file; abandoned", validator.name, timeout)
        return CheckResult(
            findings=[rules.finding("system.timeout", check=validator.name, seconds=timeout)],
            state=CheckState.NOT_RUN,
            detail="time limit exceeded",
        )
    if "error" in outcome:
        exc = outcome["error"]
        if isinstance(exc, DeadlineExceededError):
            return CheckResult(
                findings=[rules.finding("system.timeout", check=validator.name, seconds=timeout)],
                state=CheckState.NOT_RUN,
                detail="time limit exceeded",
            )
        # The exception text may quote content: log only its type.
        log.warning("check %s crashed on a file: %s", validator.name, type(exc).__name__)
        return CheckResult(
            findings=[rules.finding("system.check-crashed", check=validator.name, error=type(exc).__name__)],
            state=CheckState.NOT_RUN,
            detail=f"crashed ({type(exc).__name__})",
        )
    result = outcome["result"]
    if not isinstance(result, CheckResult):
        return CheckResult(
            findings=[rules.finding("system.check-crashed", check=validator.name, error="bad result")],
            state=CheckState.NOT_RUN,
            detail="returned no result",
        )
    return result


class Engine:
    """Applies a fixed list of validators; reusable across packages (loaded rulesets stay warm)."""

    def __init__(
        self,
        validators: Sequence[Validator],
        ruleset: RulesetInfo | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.validators = list(validators)
        self.ruleset = ruleset or RulesetInfo()
        self.settings = EngineSettings.coerce(settings)
        # Per-check time limits from settings ({"timeouts": {"pdf": 10}}) override the validators' own.
        self.timeouts: Mapping[str, float] = self.settings.timeouts
        unknown = {r for v in self.validators for r in v.rules} - set(rules.catalogue())
        if unknown:
            raise rules.UnknownRuleError(f"validators declare uncatalogued rules: {sorted(unknown)}")

    def _start(
        self, validator: Validator, file: ProofFile, expectations: Mapping[str, Any] | None
    ) -> Callable[[], CheckResult]:
        """Start one check; the returned callable waits for its result (overlapping checks run meanwhile)."""
        timeout = float(self.timeouts.get(validator.name, validator.timeout))
        ctx = CheckContext(
            deadline=time.monotonic() + timeout,
            ruleset=self.ruleset.handle,
            settings=self.settings,
            expectations=expectations or {},
        )
        if not validator.overlaps:
            return lambda: _run_one(validator, file, ctx, timeout)
        outcome: list[CheckResult] = []
        waiter = threading.Thread(
            target=lambda: outcome.append(_run_one(validator, file, ctx, timeout)),
            name=f"overlap-{validator.name}",
            daemon=True,
        )
        waiter.start()

        def result() -> CheckResult:
            waiter.join()  # _run_one returns by the check's deadline: this join is bounded
            if not outcome:  # _run_one itself failed: fail closed like any crashed check
                return CheckResult(
                    findings=[rules.finding("system.check-crashed", check=validator.name, error="no result")],
                    state=CheckState.NOT_RUN,
                    detail="returned no result",
                )
            return outcome[0]

        return result

    def check_container(self, container: ProofFile) -> list[Finding]:
        """Findings of the container checks on the package file itself (fail closed if there are none)."""
        validators = [v for v in self.validators if v.name in CONTAINER_CHECKS]
        if not validators:
            reason = "no antivirus check in this engine: the package file itself was not scanned"
            return [rules.finding("system.check-not-run", check="antivirus", reason=reason)]
        return list(self.check_file(container, validators=validators).findings)

    def check_file(
        self,
        file: ProofFile,
        expectations: Mapping[str, Any] | None = None,
        validators: Sequence[Validator] | None = None,
    ) -> FileVerdict:
        checks: list[CheckRun] = []
        findings: list[Finding] = []
        embedded: list[Embedded] = []
        planned: list[tuple[Validator, Callable[[], CheckResult] | None]] = []
        for validator in self.validators if validators is None else validators:
            try:
                applies = validator.applies_to(file)
            except Exception as exc:  # fail closed: the check is reported as crashed, the run goes on
                log.warning("check %s crashed deciding whether it applies: %s", validator.name, type(exc).__name__)
                checks.append(CheckRun(validator.name, CheckState.NOT_RUN, "crashed"))
                findings.append(rules.finding("system.check-crashed", check=validator.name, error=type(exc).__name__))
                continue
            if applies:
                # Overlapping checks start now; the others start in order when their turn comes.
                planned.append((validator, self._start(validator, file, expectations) if validator.overlaps else None))
        # The others run one after the other while the overlapping ones proceed; then every result is
        # taken in the validators' order, so the verdict does not depend on which finished first.
        done = {i: self._start(v, file, expectations)() for i, (v, started) in enumerate(planned) if started is None}
        for i, (validator, started) in enumerate(planned):
            result = started() if started is not None else done[i]
            emitted = {f.rule for f in result.findings}
            undeclared = sorted(emitted - set(validator.rules) - SYSTEM_RULES)
            if undeclared:
                # A programming error, caught by the catalogue tests; at run time it must still fail closed.
                log.error("check %s emitted undeclared rules %s", validator.name, undeclared)
                result = CheckResult(
                    findings=[
                        rules.finding("system.check-crashed", check=validator.name, error="undeclared rule")
                    ],
                    state=CheckState.NOT_RUN,
                    detail="emitted an undeclared rule",
                )
            if result.state is CheckState.NOT_RUN and not any(f.is_system for f in result.findings):
                result.findings.append(
                    rules.finding("system.check-not-run", check=validator.name, reason=result.detail or "")
                )
            checks.append(CheckRun(validator.name, result.state, result.detail))
            findings.extend(result.findings)
            embedded.extend(result.children)
        children = self._check_children(file, embedded, findings, expectations)
        findings.extend(_risks_inside(children))
        return FileVerdict(
            path=mask_identifiers(file.path),  # a NIR in a file name is reported (pii.*), never repeated
            sha256=file.sha256,
            size=file.size,
            media_type=file.media_type,
            checks=tuple(sorted(checks, key=lambda c: c.name)),
            findings=sorted_findings(findings),
            children=children,
        )

    def _check_children(
        self,
        parent: ProofFile,
        embedded: list[Embedded],
        findings: list[Finding],
        expectations: Mapping[str, Any] | None,
    ) -> tuple[FileVerdict, ...]:
        if not embedded:
            return ()
        if parent.depth + 1 > MAX_CHILD_DEPTH:
            findings.append(
                rules.finding("system.nesting-limit", depth=MAX_CHILD_DEPTH, count=len(embedded))
            )
            return ()
        if len(embedded) > MAX_CHILDREN_PER_FILE:
            findings.append(
                rules.finding(
                    "system.nesting-limit", Location(), depth=parent.depth + 1, count=len(embedded)
                )
            )
            embedded = embedded[:MAX_CHILDREN_PER_FILE]
        # Children do not inherit the parent's document-type expectations, only its proof.
        child_expectations = {k: v for k, v in (expectations or {}).items() if k == "proof_id"}
        return tuple(
            self.check_file(make_child(parent, item, i), child_expectations)
            for i, item in enumerate(embedded, start=1)
        )

    def run(self, contents: PackageContents, progress: ProgressCallback | None = None) -> PackageVerdict:
        started = _now()
        by_proof: dict[str, list[FileVerdict]] = {}
        unmapped: list[FileVerdict] = []
        ordered = sorted(contents.files, key=lambda f: f.path)
        for index, file in enumerate(ordered, start=1):
            if progress is not None:
                progress(index, len(ordered), file.path)
            expectations = dict(contents.expectations.get(file.proof_id or "", {}))
            if file.proof_id:
                expectations["proof_id"] = file.proof_id
            verdict = self.check_file(file, expectations)
            extra = contents.file_findings.get(file.path)
            if extra:
                verdict = with_findings(verdict, extra)
            if file.proof_id:
                by_proof.setdefault(file.proof_id, []).append(verdict)
            else:
                unmapped.append(verdict)
        proof_ids = sorted(set(by_proof) | set(contents.proof_findings))
        proofs = tuple(
            ProofVerdict(
                id=proof_id,
                id_as_written=contents.ids_as_written.get(proof_id, proof_id),
                files=tuple(by_proof.get(proof_id, [])),
                findings=sorted_findings(contents.proof_findings.get(proof_id, [])),
            )
            for proof_id in proof_ids
        )
        package_findings = list(contents.package_findings)
        if contents.container is not None:
            package_findings += self.check_container(contents.container)
        components = dict(self.ruleset.components)
        antivirus: dict[str, str] = {}
        for validator in self.validators:
            components.update(validator.components())
            antivirus.update(validator.antivirus_provenance())
        return PackageVerdict(
            package=contents.info,
            provenance=Provenance(
                ruleset_version=self.ruleset.version,
                components=tuple(sorted(components.items())),
                engine_version=__version__,
                started_at=started,
                finished_at=_now(),
                antivirus=tuple(sorted(antivirus.items())),
            ),
            proofs=proofs,
            unmapped_files=tuple(unmapped),
            package_findings=sorted_findings(package_findings),
        )

"""Attach every file of a package to a proof of the referential, and check the package against it.

Precedence: the manifest wins over names; a file the manifest does not list is read from its names,
the folders first, then the file name. A file whose names disagree, name several proofs or an unknown
one gets a finding and is never attached by a guess. With the profiles applied for (manifest, else the
caller's, else the mandatory one) the expected proofs that are missing, duplicated or out of profile
are reported.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from validators import rules
from validators.manifest import Manifest, load_manifest
from validators.model import Finding, Location
from validators.referential import (
    DEFAULT_REFERENTIAL,
    Reading,
    Referential,
    ReferentialError,
    load_referential,
)


@dataclass
class MappingResult:
    info_overrides: dict[str, Any] = field(default_factory=dict)
    proof_of: dict[str, str | None] = field(default_factory=dict)
    ids_as_written: dict[str, str] = field(default_factory=dict)
    package_findings: list[Finding] = field(default_factory=list)
    proof_findings: dict[str, list[Finding]] = field(default_factory=dict)
    file_findings: dict[str, list[Finding]] = field(default_factory=dict)
    expectations: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class NameReading:
    """What a file's path says about its proof."""

    proof_id: str | None
    written: str | None = None
    folder: str | None = None  # the folder that carried the id, None when the file name did
    crosswalk: bool = False
    findings: tuple[Finding, ...] = ()


def _where(reading: Reading, path: str) -> str:
    segment = path[: reading.match.span[1]].count("/")
    return "folder name" if segment < path.count("/") else "file name"


def _reading_finding(reading: Reading, referential: Referential) -> Finding:
    if reading.state == "ambiguous":
        more = "..." if len(reading.candidates) > 6 else ""
        return rules.finding("package.ambiguous-proof-id", written=reading.written,
                             candidates=", ".join(reading.candidates[:6]) + more, reason=reading.reason)
    if reading.state == "malformed":
        return rules.finding("package.malformed-proof-id", written=reading.written, reason=reading.reason)
    return rules.finding("package.unknown-proof", written=reading.written, referential=referential.id,
                         reason=reading.reason)


def read_path(path: str, referential: Referential) -> NameReading:
    """The proof a path designates by its names (folders first, then the file name)."""
    readings = referential.find(path)
    if not readings:
        return NameReading(None)
    found = [r for r in readings if r.state == "proof"]
    problems = [r for r in readings if r.state != "proof"]
    distinct = list(dict.fromkeys(r.proof_id for r in found if r.proof_id))
    if not found:
        return NameReading(None, findings=tuple(_reading_finding(r, referential) for r in problems))
    in_folders = [r for r in found if _where(r, path) == "folder name"]
    in_file = [r for r in found if _where(r, path) == "file name"]
    # The innermost folder that names a proof wins over the file name.
    chosen = in_folders[-1] if in_folders else in_file[0]
    findings: list[Finding] = []
    if not in_folders and len({r.proof_id for r in in_file}) > 1:
        # A file name that names several proofs: no guess.
        return NameReading(None, findings=(rules.finding(
            "package.ambiguous-proof-id", written=" / ".join(r.written for r in in_file),
            candidates=", ".join(distinct), reason="the name holds several proof ids"),))
    for other in found:
        if other.proof_id != chosen.proof_id:
            findings.append(rules.finding(
                "package.conflicting-proof-id", chosen=chosen.proof_id, chosen_source=_where(chosen, path),
                other_source=_where(other, path), other=other.proof_id))
            break
    for problem in problems:
        if problem.state == "ambiguous" and chosen.proof_id in problem.candidates:
            continue  # "INS.41/INS.41.2.2_x.png": the requirement folder agrees with the proof
        findings.append(_reading_finding(problem, referential))
    folder = None
    if _where(chosen, path) == "folder name":
        # The folder up to the segment that carried the id ("a/INS.41.2.2" for "a/INS.41.2.2/x.png").
        folder = path[: path.index("/", chosen.match.span[1] - 1)]
    return NameReading(chosen.proof_id, chosen.written, folder, chosen.match.crosswalk, tuple(findings))


def _manifest_key(written: str, referential: Referential) -> tuple[str | None, list[Finding]]:
    readings = referential.find(written)
    location = Location(entry=written)
    if not readings:
        return None, [rules.finding("package.unknown-proof", location, written=written[:100],
                                    referential=referential.id, reason="it is not written as a proof id")]
    proofs = {r.proof_id for r in readings if r.state == "proof"}
    if len(readings) == 1 and len(proofs) == 1:
        return proofs.pop(), []
    if len(readings) > 1:
        return None, [rules.finding("package.ambiguous-proof-id", location, written=written[:100],
                                    candidates=", ".join(r.written for r in readings),
                                    reason="the manifest key holds several ids")]
    finding = _reading_finding(readings[0], referential)
    return None, [replace(finding, location=location)]


def _files_of(entry: str, base: str, paths: Sequence[str]) -> list[str]:
    target = posixpath.normpath(posixpath.join(base, entry)) if base else posixpath.normpath(entry)
    if entry.endswith("/") or target not in paths:
        prefix = target.rstrip("/") + "/"
        under = [p for p in paths if p.startswith(prefix)]
        if entry.endswith("/") or under:
            return under
        return []
    return [target]


@dataclass
class _Claim:
    proof_id: str
    written: str


def _manifest_claims(manifest: Manifest, paths: Sequence[str], referential: Referential,
                     out: MappingResult) -> dict[str, _Claim]:
    base = posixpath.dirname(manifest.path)
    claims: dict[str, _Claim] = {}
    claimed_by: dict[str, list[str]] = {}
    for proof in manifest.proofs:
        proof_id, findings = _manifest_key(proof.key, referential)
        out.package_findings.extend(findings)
        if not proof.files:
            out.package_findings.append(rules.finding(
                "package.manifest-empty-proof", Location(entry=proof.key[:100]), written=proof.key[:100]))
            continue
        for entry in proof.files:
            matched = _files_of(entry, base, paths)
            if not matched:
                out.package_findings.append(rules.finding(
                    "package.manifest-file-missing", Location(entry=entry[:1000]), path=entry[:1000],
                    written=proof.key[:100]))
            if proof_id is None:
                continue
            for path in matched:
                claimed_by.setdefault(path, [])
                if proof_id not in claimed_by[path]:
                    claimed_by[path].append(proof_id)
                claims.setdefault(path, _Claim(proof_id, proof.key))
    for path, proof_ids in sorted(claimed_by.items()):
        if len(proof_ids) > 1:
            out.package_findings.append(rules.finding(
                "package.file-claimed-twice", Location(entry=path), path=path, proofs=", ".join(proof_ids),
                chosen=claims[path].proof_id))
    return claims


def _select_referential(manifest: Manifest | None, out: MappingResult) -> Referential:
    wanted = manifest.referential if manifest and manifest.referential else DEFAULT_REFERENTIAL
    try:
        return load_referential(wanted)
    except ReferentialError:
        out.package_findings.append(rules.finding("package.unknown-referential", referential=wanted[:100],
                                                  used=DEFAULT_REFERENTIAL))
        return load_referential(DEFAULT_REFERENTIAL)


def _applied_profiles(
    referential: Referential, declared: Sequence[str], out: MappingResult
) -> tuple[str, ...]:
    for name in declared:
        if referential.profile_name(name) is None:
            out.package_findings.append(rules.finding(
                "package.unknown-profile", profile=name[:100], referential=referential.id,
                known=", ".join(p.name for p in referential.profiles)))
    return referential.applied_profiles(declared)


def _check_duplicates(sources: dict[str, list[NameReading]], out: MappingResult) -> None:
    for proof_id, readings in sorted(sources.items()):
        folders = sorted({r.folder for r in readings if r.folder})
        forms_kinds = {r.crosswalk for r in readings if r.written}
        if len(folders) > 1 or len(forms_kinds) > 1:
            forms = folders if len(folders) > 1 else sorted({r.written or "" for r in readings})
            out.proof_findings.setdefault(proof_id, []).append(rules.finding(
                "package.duplicate-proof", proof=proof_id, forms=", ".join(forms[:5])))


def _check_expected(
    referential: Referential, applied: Sequence[str], complete: bool, out: MappingResult
) -> None:
    present = {p for p in out.proof_of.values() if p}
    expected = referential.expected_proofs(applied)
    missing = [proof for proof in expected if proof.id not in present]
    if missing and not complete:
        # A partial package: one reminder, not one line per absent proof drowning the report.
        by_section = sorted(Counter(proof.section for proof in missing).items())
        out.package_findings.append(rules.finding(
            "package.partial-submission", count=len(missing), expected=len(expected),
            profiles=", ".join(applied), missing=", ".join(f"{s} {n}" for s, n in by_section)))
    for proof in missing if complete else ():
        out.package_findings.append(rules.finding(
            "package.missing-proof", Location(entry=proof.id), proof=proof.id,
            title=proof.title, profiles=", ".join(p for p in proof.profiles if p in applied)))
    for proof_id in sorted(present):
        proof = referential.proofs[proof_id]
        if not set(proof.profiles) & set(applied):
            out.proof_findings.setdefault(proof_id, []).append(rules.finding(
                "package.out-of-profile-proof", proof=proof_id, profiles=", ".join(proof.profiles),
                applied=", ".join(applied)))


def _check_natures(referential: Referential, out: MappingResult) -> None:
    for path, proof_id in sorted(out.proof_of.items()):
        if proof_id is None:
            continue
        proof = referential.proofs[proof_id]
        extension = posixpath.splitext(path)[1].lstrip(".").lower()
        if proof.natures and extension not in referential.extensions_for(proof):
            out.file_findings.setdefault(path, []).append(rules.finding(
                "package.unexpected-nature", extension=extension or "(none)", proof=proof_id,
                natures=" or ".join(proof.natures)))


def map_package(
    paths: Sequence[str],
    manifest_path: str | None,
    read_file: Callable[[str], bytes],
    profiles: Sequence[str] | None,
) -> MappingResult:
    """Map every path to a canonical proof id (or None) and report on the package as a whole.

    ``paths`` are the package's files, '/'-separated, relative to the package root; the manifest, if
    any, is read through ``read_file`` and is not itself a proof file.
    """
    out = MappingResult()
    manifest: Manifest | None = None
    if manifest_path is not None:
        manifest, findings = load_manifest(manifest_path, read_file)
        out.package_findings.extend(findings)
    referential = _select_referential(manifest, out)
    if manifest is not None and manifest.profiles is not None:
        declared: Sequence[str] = manifest.profiles
    else:
        declared = profiles or ()
    applied = _applied_profiles(referential, declared, out)
    files = sorted(p for p in dict.fromkeys(paths) if p != manifest_path)
    claims = _manifest_claims(manifest, files, referential, out) if manifest else {}

    sources: dict[str, list[NameReading]] = {}
    for path in files:
        named = read_path(path, referential)
        claim = claims.get(path)
        if claim is not None:
            out.proof_of[path] = claim.proof_id
            out.ids_as_written.setdefault(claim.proof_id, claim.written)
            if named.proof_id is not None and named.proof_id != claim.proof_id:
                out.file_findings.setdefault(path, []).append(rules.finding(
                    "package.conflicting-proof-id", chosen=claim.proof_id, chosen_source="manifest",
                    other_source="name", other=named.proof_id))
            continue
        out.proof_of[path] = named.proof_id
        if named.findings:
            out.file_findings.setdefault(path, []).extend(named.findings)
        if named.proof_id is not None and named.written is not None:
            out.ids_as_written.setdefault(named.proof_id, named.written)
            sources.setdefault(named.proof_id, []).append(named)

    _check_duplicates(sources, out)
    _check_expected(referential, applied, manifest.complete if manifest else False, out)
    _check_natures(referential, out)
    for proof_id in sorted({p for p in out.proof_of.values() if p}):
        out.expectations[proof_id] = referential.expectations(proof_id)
    out.info_overrides = {
        "referential": referential.id,
        "profiles": list(applied),
        "complete": manifest.complete if manifest else False,
    }
    if manifest is not None:
        out.info_overrides.update(
            publisher=manifest.publisher, software=manifest.software, software_version=manifest.version)
    return out


__all__ = ["MappingResult", "NameReading", "map_package", "read_path"]

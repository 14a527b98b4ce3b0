"""Stored verdicts for the index and pipeline tests: a status, an S3 object, a ruleset, nothing else.

Each status comes from a real catalogued finding (the model derives it), so the documents are what the
pipeline stores and what ``validators.verdict_io`` reads back.
"""

from __future__ import annotations

import re
from typing import Any

from fixtures.builders import nir_key
from validators import rules
from validators.model import (
    CheckRun,
    CheckState,
    FileVerdict,
    Finding,
    PackageInfo,
    PackageVerdict,
    ProofVerdict,
    Provenance,
)
from validators.verdict_io import StoredVerdict

# Digits written one after the other or in groups (spaces, dashes), as a NIR is printed.
_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d)*")


def looks_like_nir(text: str) -> bool:
    """Whether ``text`` holds 15 consecutive digits that are a NIR body and its valid key."""
    for run in _DIGIT_RUN.findall(text):
        digits = re.sub(r"[ -]", "", run)
        for start in range(len(digits) - 14):
            body, key = digits[start : start + 13], digits[start + 13 : start + 15]
            if body[0] in "1234578" and nir_key(body) == int(key):
                return True
    return False

_FINDINGS: dict[str, tuple[Finding, ...]] = {
    "pass": (),
    "warning": (rules.finding("package.missing-proof", proof="INS.41.3.1", title="Recherche INS",
                              profiles="Général"),),
    "fail": (rules.finding("format.empty"),),
    "error": (rules.finding("system.check-not-run", check="antivirus", reason="clamd is not reachable"),),
}


def package_verdict(
    status: str = "pass",
    *,
    name: str = "p.zip",
    ruleset: str = "rs-1",
    quarantine: bool = False,
    publisher: str | None = "acme",
    engine_version: str = "0.1",
) -> PackageVerdict:
    findings = _FINDINGS[status] + ((rules.finding("ssi.malware", signature="Eicar-Test-Signature"),)
                                    if quarantine else ())
    checks = (CheckRun("filetype", CheckState.RAN),)
    file = FileVerdict("INS.41.2.2/capture.png", "ab" * 32, 10, "image/png", checks, findings)
    return PackageVerdict(
        package=PackageInfo(name, "0" * 64, "dry-run", "REM-MDV-LGC-SF-Va1", publisher=publisher),
        provenance=Provenance(ruleset, (("J66", ruleset),), engine_version, "2026-11-27T00:00:00+00:00",
                              "2026-11-27T00:00:01+00:00"),
        proofs=(ProofVerdict("INS.41.2.2", "INS.41.2.2", (file,)),),
    )


def stored_verdict(
    key: str,
    status: str = "pass",
    ruleset: str = "rs-1",
    *,
    area: str = "inbox",
    version_id: str | None = "v1",
    uploaded_at: str | None = None,
    stored_at: str = "2026-11-27T03:00:00+00:00",
    name: str | None = None,
    quarantine: bool = False,
    **sections: Any,
) -> StoredVerdict:
    """The verdict of the package object ``key`` as the pipeline stores it (``object`` section and more)."""
    verdict = package_verdict(status, name=name or key.rsplit("/", 1)[-1], ruleset=ruleset, quarantine=quarantine)
    obj = {"bucket": "proofcheck", "key": key, "version_id": version_id, "etag": "e", "size": 10,
           "uploaded_at": uploaded_at, "area": area, "publisher": "acme", "stored_at": stored_at}
    return StoredVerdict.new(verdict, object=obj, **sections)

"""Helpers for the value-set sync and re-validation tests (no test here).

J66 versions A/B/C are generated from the project's own snapshot (``jdv/``), never copied from
``../shared``: A = the snapshot's concepts under a newer version, B = A without one document type
(LOINC 11369-6, vaccination), C = A again under a newer version. A minimal ruleset base (no CI-SIS
tree, just a manifest and a J07 file in ``jeuxDeValeurs``) stands for a synced CDA ruleset where the
tests only exercise the sync.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from validators.cda.store import RulesetStore, RulesetVersion, version_name
from validators.cda.valuesets import FHIR_SYSTEMS, J66_NAME, ValueSet, load, shipped_j66_path
from validators.valueset_source import to_svs

VERSION_A = "20250115120000"
VERSION_B = "20250215120000"
VERSION_C = "20250315120000"
RETIRED = ("2.16.840.1.113883.6.1", "11369-6")  # the vaccination document type
J07_NAME = "JDV_J07-XdsTypeCode-CISIS"
J07_OID = "1.2.250.1.213.1.1.5.471"


def shipped_j66() -> ValueSet:
    return load(shipped_j66_path())


def j66(version: str, *, drop: tuple[tuple[str, str], ...] = (), oid: str | None = None) -> ValueSet:
    base = shipped_j66()
    concepts = {key: display for key, display in base.concepts.items() if key not in drop}
    return ValueSet(oid or base.oid, version, base.name, concepts)


def as_fhir(valueset: ValueSet) -> bytes:
    """A NOS-like FHIR ValueSet resource (compose.include per code system)."""
    urls = {oid: url for url, oid in FHIR_SYSTEMS.items()}
    by_system: dict[str, list[dict[str, str]]] = {}
    for (system, code), display in sorted(valueset.concepts.items()):
        by_system.setdefault(system, []).append({"code": code, "display": display})
    resource: dict[str, Any] = {
        "resourceType": "ValueSet",
        "id": "JDV-J66-TypeCode-DMP",
        "name": valueset.name,
        "version": valueset.version,
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{valueset.oid}"}],
        "compose": {
            "include": [
                {"system": urls.get(system, f"urn:oid:{system}"), "concept": concepts}
                for system, concepts in by_system.items()
            ]
        },
    }
    return json.dumps(resource, ensure_ascii=False).encode("utf-8")


def publish(folder: Path, valueset: ValueSet, *, name: str = J66_NAME, fhir: bool = False) -> Path:
    """Write ``valueset`` into a source folder (flat layout), replacing any other form of it."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in (folder / f"{name}.xml", folder / f"{name}.json"):
        old.unlink(missing_ok=True)
    target = folder / (f"{name}.json" if fhir else f"{name}.xml")
    target.write_bytes(as_fhir(valueset) if fhir else to_svs(valueset))
    return target


def j07(version: str, codes: tuple[str, ...] = ("11488-4", "11369-6")) -> ValueSet:
    return ValueSet(J07_OID, version, "JDV_J07_XdsTypeCode_CISIS", {("2.16.840.1.113883.6.1", c): c for c in codes})


def minimal_base(root: Path) -> RulesetStore:
    """A store holding one ruleset version with no CI-SIS tree: enough to exercise the sync itself."""
    store = RulesetStore(root)
    staging = store.new_staging()
    tree = staging / "tree"
    (tree / "jeuxDeValeurs").mkdir(parents=True)
    (tree / "jeuxDeValeurs" / "JDV_J07_XdsTypeCode_CISIS.xml").write_bytes(to_svs(j07("20240101000000")))
    digest = hashlib.sha256(b"minimal base").hexdigest()
    imported = datetime(2025, 1, 1, tzinfo=UTC)
    store.publish(
        staging,
        {
            "version": version_name(digest, imported),
            "digest": digest,
            "imported_at": imported.isoformat(),
            "components": {"TestContenuCDA": digest[:12], "cda_xsd": "x" * 64, "J66": shipped_j66().version},
            "schematrons": {},
            "gaps": [],
        },
    )
    return store


def latest(store: RulesetStore) -> RulesetVersion:
    version = store.latest()
    assert version is not None
    return version


@contextmanager
def http_folder(folder: Path) -> Iterator[str]:
    """A local HTTP server over ``folder`` on 127.0.0.1 in a thread; yields its base URL."""

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serve(Handler) as url:
        yield url


@contextmanager
def serve(handler: type) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()

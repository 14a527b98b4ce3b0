"""Shared by the workbench tests: packages uploaded to a bucket (moto, in process), their verdicts built with
the engine's own model and rules, stored and indexed as the pipeline does, and the app over them."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

pytest.importorskip("starlette")
pytest.importorskip("moto")

import warnings

from conftest_flows import fixed_zip, mocked_store

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2; the httpx transport works the same
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from flows import verdicts as vd
from flows.index import VerdictIndex
from flows.storage import PackageRef, Store
from flows.web.app import create_app
from flows.web.config import WebConfig
from validators import __version__, rules
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
)
from validators.report.html import render
from validators.verdict_io import read_verdict

PASSWORD = "mot-de-passe-solide-42"
_CHECKS = (CheckRun("filetype", CheckState.RAN), CheckRun("antivirus", CheckState.RAN), CheckRun("pii", CheckState.RAN))


def nir(masked: str = "1 ** ** ** *** *** 96", line: int = 3) -> Finding:
    return rules.finding("pii.nir", Location(line=line), evidence=masked, occurrences=1, explanation="clé valide")


@dataclass(frozen=True)
class Proof:
    """One proof of a package: files (path -> text) and the findings of each file (path -> findings)."""

    id: str
    files: dict[str, str]
    findings: dict[str, Sequence[Finding]] = field(default_factory=dict)
    not_run: bool = False


def verdict(name: str, proofs: Sequence[Proof], *, ruleset: str = "rs-1", package_findings: Sequence[Finding] = ()
            ) -> PackageVerdict:
    checks = _CHECKS
    built = []
    for proof in proofs:
        files = []
        for path, text in proof.files.items():
            own = (CheckRun("antivirus", CheckState.NOT_RUN),) if proof.not_run else checks
            files.append(FileVerdict(path=path, sha256=hashlib.sha256(text.encode()).hexdigest(), size=len(text),
                                     media_type="text/plain", checks=own,
                                     findings=tuple(proof.findings.get(path, ()))))
        built.append(ProofVerdict(id=proof.id, id_as_written=proof.id, files=tuple(files)))
    return PackageVerdict(
        package=PackageInfo(name=name, sha256="0" * 64, source="", referential=vd.REFERENTIAL),
        provenance=Provenance(ruleset_version=ruleset, engine_version=__version__, started_at="2026-12-01T08:00:00",
                              finished_at="2026-12-01T08:00:01"),
        proofs=tuple(built),
        package_findings=tuple(package_findings),
    )


@dataclass
class World:
    store: Store
    index: VerdictIndex
    app: Any
    tmp: Path

    def upload(self, publisher: str, name: str, proofs: Sequence[Proof], *, area: str = "inbox") -> PackageRef:
        members = {path: text for proof in proofs for path, text in proof.files.items()}
        key = f"{area}/{publisher}/{name}"
        answer = self.store.client.put_object(Bucket=self.store.bucket, Key=key, Body=fixed_zip(members))
        head = self.store.head(key, answer.get("VersionId"))
        return PackageRef(self.store.bucket, key, str(answer["ETag"]).strip('"'), answer.get("VersionId"),
                          head.size, head.last_modified)

    def submit(self, publisher: str, name: str, proofs: Sequence[Proof], *, ruleset: str = "rs-1",
               area: str = "inbox", package_findings: Sequence[Finding] = (), quarantine: bool = False
               ) -> tuple[str, dict[str, Any]]:
        """Upload a package version and store + index its verdict as the pipeline does: (json key, doc)."""
        ref = self.upload(publisher, name, proofs, area=area)
        return self.store_verdict(ref, verdict(name, proofs, ruleset=ruleset, package_findings=package_findings),
                                  area=area, publisher=publisher, quarantine=quarantine)

    def store_verdict(self, ref: PackageRef, built: PackageVerdict, *, area: str = "inbox",
                      publisher: str = "acme", quarantine: bool = False) -> tuple[str, dict[str, Any]]:
        if quarantine:  # what quarantines a package: an ssi.* error (the verdict derives its quarantine flag)
            malware = rules.finding("ssi.malware", signature="Eicar-Test-Signature")
            built = replace(built, package_findings=(*built.package_findings, malware))
        doc = vd.mark_checked(vd.document(vd.with_source(built, ref), ref, area=area, publisher=publisher))
        json_key, html_key = self.store.layout.verdict_keys(ref.key, ref.token, doc["ruleset"]["version"])
        self.store.put_bytes(json_key, vd.document_bytes(doc), "application/json")
        stored = read_verdict(doc)
        self.store.put_bytes(html_key, render(stored.verdict).encode(), "text/html; charset=utf-8")
        self.index.record(stored, json_key)
        return json_key, doc

    def add_account(self, username: str, role: str = "instructor", publisher: str | None = None) -> None:
        self.app.state.workbench.auth.add_account(username, role, password=PASSWORD, publisher=publisher,
                                                  display_name=username.capitalize())

    def client(self, username: str | None = None) -> TestClient:
        client = TestClient(self.app, base_url="http://testserver", follow_redirects=False)
        if username is not None:
            sign_in(client, username)
        return client


def token_of(page: str, action: str) -> str:
    """The form token of the form posting to ``action`` in an HTML page."""
    found = re.search(r'<form method="post" action="' + re.escape(action) + r'">\s*<input type="hidden" name="jeton" '
                      r'value="([^"]+)"', page)
    assert found, f"no form to {action}"
    return found.group(1)


def hidden(page: str, name: str) -> str:
    found = re.search(r'name="' + re.escape(name) + r'" value="([^"]*)"', page)
    assert found, name
    return found.group(1).replace("&#34;", '"').replace("&amp;", "&")


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> None:
    page = client.get("/connexion")
    answer = client.post("/connexion", data={"jeton": token_of(page.text, "/connexion"), "identifiant": username,
                                             "mot_de_passe": password, "suite": "/paquets"})
    assert answer.status_code == 303, answer.text[:500]


# Argon2id still, with a cheap cost: the library's defaults take about a second a hash on this machine.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@contextmanager
def world(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    # A bucket of its own: moto keeps its state while any mock is active (a module's world and a test's).
    with mocked_store(monkeypatch, f"proofcheck-web-{uuid.uuid4().hex[:12]}") as store:
        index = VerdictIndex(f"sqlite:///{tmp / 'index.sqlite3'}")
        config = WebConfig.from_env({"PROOFCHECK_WEB_SECRET": "s" * 40})
        try:
            yield World(store, index, create_app(store, index, config, hasher=FAST_HASHER), tmp)
        finally:
            index.close()


def stored_doc(store: Store, json_key: str) -> dict[str, Any]:
    return dict(json.loads(store.get_bytes(json_key)))

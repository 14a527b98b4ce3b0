"""The labelled evaluation set, snippet by snippet, through the real engine (ids only, never values)."""

from __future__ import annotations

import hashlib
import json

import pytest

from fixtures.pii_snippets import Snippet, snippets
from validators import sniff
from validators.base import ProofFile
from validators.engine import Engine
from validators.mail.check import MailValidator
from validators.model import FileVerdict, Severity
from validators.pii import make_validators

SNIPPETS = snippets()


@pytest.fixture(scope="module")
def engine() -> Engine:
    # With the e-mail check: an e-mail's bodies are its children (validators/mail), read by PII each.
    return Engine([*make_validators({}), MailValidator()])


def check(engine: Engine, snippet: Snippet) -> FileVerdict:
    data = snippet.content
    file = ProofFile(
        path=snippet.filename,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        media_type=sniff.media_type(data),
        data=data,
    )
    return engine.check_file(file)


def test_the_set_is_large_and_balanced() -> None:
    kinds = {s.kind for s in SNIPPETS}
    assert len(SNIPPETS) >= 150
    assert 60 <= sum(s.positive for s in SNIPPETS) <= len(SNIPPETS) - 60
    for expected in (
        "compact",
        "grouped",
        "dots",
        "hyphens",
        "nbsp",
        "narrow-nbsp",
        "key-field",
        "split-lines",
        "mssante",
        "url",
        "hl7-ins-production",
        "oid",
        "rpps",
        "adeli",
        "finess",
        "siret",
        "siren",
        "iban",
        "phone",
        "cip13",
        "date",
        "order-number",
        "invoice-number",
        "local-patient-id",
    ):
        assert expected in kinds


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.case_id for s in SNIPPETS])
def test_snippet_is_classified_as_labelled(engine: Engine, snippet: Snippet) -> None:
    verdict = check(engine, snippet)
    pii = [f for file in verdict.iter_files() for f in file.findings if f.rule.startswith("pii.")]
    errors = [f for f in pii if f.severity is Severity.ERROR]
    assert bool(errors) == snippet.positive, f"{snippet.kind}: got {[f.rule for f in pii]}"
    if snippet.rule is not None:
        assert snippet.rule in {f.rule for f in pii}, f"{snippet.kind}: got {[f.rule for f in pii]}"
    elif not snippet.positive:
        assert pii == [], f"{snippet.kind}: got {[f.rule for f in pii]}"
    rendered = json.dumps(verdict.to_dict(), ensure_ascii=False)
    for secret in snippet.secrets:
        assert secret not in rendered and secret[:13] not in rendered, f"{snippet.kind}: identifier leaked"

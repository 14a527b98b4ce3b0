"""Stored verdicts read back: the same model and bytes, older documents upgraded, broken ones refused whole."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest_verdicts import looks_like_nir

from fixtures.builders import make_log, make_nir, make_pdf
from validators import rules, schemas
from validators.attest.seal import seal
from validators.dryrun import dry_run
from validators.model import Location, PackageVerdict
from validators.report.json_report import document_bytes, render, to_document
from validators.verdict_io import (
    UPGRADE_PARAMS,
    StoredVerdict,
    VerdictDocumentError,
    iter_document_findings,
    parse_params,
    read_verdict,
)


@pytest.fixture(scope="module")
def engine_verdict(tmp_path_factory: pytest.TempPathFactory) -> PackageVerdict:
    """A real dry run with clamd down (a check not run too): NIR, empty file, nested zip, PDF."""
    root = tmp_path_factory.mktemp("package") / "paquet"
    files = {
        "INS.41.2.2/journal.log": make_log([f"patient NIR {make_nir()}", "fin"]),
        "INS.41.2.2/vide.txt": b"",
        "DOC.3.1.2/compte-rendu.pdf": make_pdf(["Compte rendu fictif"]),
        "notes.txt": b"notes sans preuve\n",
    }
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("dedans.txt", "texte fictif\n")
    files["DOC.3.1.2/annexes.zip"] = inner.getvalue()
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return dry_run(root, settings={"clamd": f"unix:{root.parent / 'no-clamd.sock'}"})  # clamd down


# -- round trip ---------------------------------------------------------------------------------------------


def test_an_engine_verdict_reads_back_as_the_same_model_and_bytes(engine_verdict: PackageVerdict) -> None:
    rules_found = {f.rule for f in engine_verdict.iter_findings()}
    assert {"pii.nir", "format.empty", "system.check-not-run"} <= rules_found  # a real, varied verdict
    stored = render(engine_verdict).encode("utf-8")
    read = read_verdict(stored)
    assert read.verdict == engine_verdict and read.upgraded == ()
    assert read.to_bytes() == stored
    assert read_verdict(read.to_document()).verdict == engine_verdict  # from a parsed document too


def test_findings_keep_their_parameters_and_a_french_message_in_json(engine_verdict: PackageVerdict) -> None:
    doc = to_document(engine_verdict)
    jsonschema.validate(doc, schemas.load("verdict.schema.json"))
    [empty] = [f for f in iter_document_findings(doc) if f["rule"] == "format.empty"]
    assert empty["params"] == {} and empty["message_fr"] == "Le fichier est vide (0 octet) : il n'y a rien à examiner."
    not_run = next(f for f in iter_document_findings(doc) if f["rule"] == "system.check-not-run")
    assert set(not_run["params"]) == {"check", "reason"} and not_run["params"]["check"] == "antivirus"
    assert not_run["message_fr"].startswith("La vérification antivirus ne s'est pas exécutée")


def test_only_the_parameters_a_template_shows_are_kept() -> None:
    finding = rules.finding("format.empty", nir=make_nir(), size=0)  # a careless caller
    assert finding.params == ()


def test_the_nir_test_of_the_trigger_test_sees_a_nir_in_any_spacing() -> None:
    nir = make_nir()
    spaced = f"{nir[0]} {nir[1:3]} {nir[3:5]} {nir[5:7]} {nir[7:10]} {nir[10:13]} {nir[13:]}"
    assert looks_like_nir(nir) and looks_like_nir(f"NIR {spaced}.") and looks_like_nir(f"a{nir}b")
    assert not looks_like_nir("1 ** ** ** *** *** 36") and not looks_like_nir("LOINC (2.16.840.1.113883.6.1)")
    assert not looks_like_nir(nir[:13] + "00")  # 15 digits with a wrong key


def test_pipeline_sections_come_back_unchanged_and_typed(engine_verdict: PackageVerdict) -> None:
    doc = to_document(engine_verdict)
    doc["object"] = {"bucket": "b", "key": "inbox/acme/paquet.zip", "version_id": "v1", "etag": "e", "size": 9,
                     "uploaded_at": "2026-11-27T00:00:00+00:00", "area": "inbox", "publisher": "acme",
                     "stored_at": "2026-11-27T00:00:01+00:00"}  # fmt: skip
    doc["checked"] = {"in_full": False, "not_run": ["antivirus"], "rules": ["system.check-not-run"], "attempt": 0,
                      "next_try_after": "2026-11-27T00:05:00+00:00"}  # fmt: skip
    doc["revalidation"] = {"run": "r1", "mode": "rerun", "reason": "why", "report": "reports/changes/v/r1.html",
                           "previous": {"json_key": "k", "status": "pass", "ruleset": "v0"}, "diff": {"x": 1}}
    stored = seal(doc, None).verdict  # attestation and chain, as the pipeline stores it
    read = read_verdict(stored)
    assert read.to_bytes() == stored  # the signed bytes, reproduced exactly
    assert read.object is not None and (read.object.key, read.object.size, read.area) == (
        "inbox/acme/paquet.zip", 9, "inbox")
    assert read.checked is not None and read.checked.not_run == ("antivirus",) and read.checked.attempt == 0
    assert read.revalidation is not None and (read.revalidation.report, read.revalidation.previous_status) == (
        "reports/changes/v/r1.html", "pass")
    assert read.sections["attestation"]["signed"] is False
    with pytest.raises(TypeError):
        read.sections["object"]["key"] = "elsewhere"  # type: ignore[index]  # a read is for reading


def test_a_new_stored_verdict_writes_its_sections_after_the_contract(engine_verdict: PackageVerdict) -> None:
    stored = StoredVerdict.new(engine_verdict, object={"key": "inbox/a.zip", "area": "inbox"}, checked=None)
    doc = stored.with_section("revalidation", {"run": "r", "mode": "carried", "report": "x.html"}).to_document()
    assert list(doc)[-2:] == ["object", "revalidation"] and "checked" not in doc
    assert read_verdict(document_bytes(doc)).verdict == engine_verdict


# -- older documents, upgraded -------------------------------------------------------------------------------


def _older(doc: dict[str, Any]) -> dict[str, Any]:
    """The document as proofcheck wrote it before findings kept their parameters."""
    old = copy.deepcopy(doc)
    for finding in iter_document_findings(old):
        del finding["params"], finding["message_fr"]
    return old


def test_a_document_without_parameters_is_upgraded_with_french_messages(engine_verdict: PackageVerdict) -> None:
    read = read_verdict(_older(to_document(engine_verdict)))
    assert read.upgraded == (UPGRADE_PARAMS,)
    for old, new in zip(engine_verdict.iter_findings(), read.verdict.iter_findings(), strict=True):
        assert (new.rule, new.message, new.location) == (old.rule, old.message, old.location)
        assert new.message_fr == old.message_fr  # parsed back from the English message, rendered in French
        assert dict(new.params) == {k: str(v) for k, v in old.params}  # parameters come back as text


def test_an_older_message_that_no_longer_matches_its_template_stays_english() -> None:
    finding = rules.finding("cda.typecode", Location(line=3), code="X", code_system="1.2", version="A")
    assert parse_params("cda.typecode", finding.message) == {"code": "X", "code_system": "1.2", "version": "A"}
    assert parse_params("cda.typecode", "The document type X is not allowed (wording of an older release).") is None
    assert parse_params("no.such-rule", "anything") is None


def test_an_ambiguous_older_message_is_not_guessed() -> None:
    # Two placeholders around " of ": "a of b of c" reads two ways; the reader keeps neither.
    message = rules.finding("ssi.archive.more-findings", count="3 of 4", rule="x").message
    assert parse_params("ssi.archive.more-findings", message) == {"count": "3 of 4", "rule": "x"}
    assert parse_params("cda.schematron", "p: a (rule r (rule s), role t), role u)") is None


# -- broken documents, refused -------------------------------------------------------------------------------


def _broken(doc: dict[str, Any], where: str) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    if where == "missing-package":
        del out["package"]
    elif where == "size-as-text":
        out["proofs"][0]["files"][0]["size"] = "12"
    elif where == "unknown-status":
        out["proofs"][0]["status"] = "maybe"
    elif where == "unknown-severity":
        next(iter_document_findings(out))["severity"] = "fatal"
    elif where == "status-says-pass":
        out["status"] = "pass"
    elif where == "quarantine-hidden":
        out["quarantine"] = True
    elif where == "wrong-count":
        out["summary"]["files"] += 1
    elif where == "newer-schema":
        out["schema_version"] = "2"
    elif where == "no-schema":
        del out["schema_version"]
    return out


@pytest.mark.parametrize(
    ("case", "where", "words"),
    [
        ("missing-package", "", "package"),
        ("size-as-text", "proofs[0].files[0].size", "integer"),
        ("unknown-status", "proofs[0].status", "must be"),
        ("unknown-severity", "", "must be one of"),
        ("status-says-pass", "status", "findings and checks make it"),
        ("quarantine-hidden", "quarantine", "findings and checks make it"),
        ("wrong-count", "summary.files", "does not agree"),
        ("newer-schema", "schema_version", "not a version this proofcheck reads"),
        ("no-schema", "schema_version", "missing"),
    ],
)
def test_a_broken_document_is_refused_with_where_and_why(
    engine_verdict: PackageVerdict, case: str, where: str, words: str
) -> None:
    with pytest.raises(VerdictDocumentError) as refused:
        read_verdict(_broken(to_document(engine_verdict), case))
    assert refused.value.where.startswith(where) and words in str(refused.value), str(refused.value)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b'{"schema_version": "1", "package": {', "not JSON (line 1"),
        (b"[1, 2]", "JSON object, not an array"),
        ("é".encode("latin-1"), "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
    ids=["truncated", "array", "latin-1", "deep"],
)
def test_what_is_not_a_document_is_refused(data: bytes, words: str) -> None:
    with pytest.raises(VerdictDocumentError, match=words.replace("(", r"\(")):
        read_verdict(data)


def test_files_nested_far_deeper_than_the_engine_nests_them_are_refused(engine_verdict: PackageVerdict) -> None:
    doc = to_document(engine_verdict)
    entry = doc["unmapped_files"][0]
    for _ in range(2000):
        entry["children"] = [copy.deepcopy({**entry, "children": []})]
        entry = entry["children"][0]
    with pytest.raises(VerdictDocumentError, match="nested too deeply"):
        read_verdict(doc)


def test_a_truncated_stored_verdict_is_refused(engine_verdict: PackageVerdict) -> None:
    stored = render(engine_verdict).encode("utf-8")
    with pytest.raises(VerdictDocumentError, match="not JSON"):
        read_verdict(stored[: len(stored) // 2])


def test_a_refusal_never_quotes_a_long_value(engine_verdict: PackageVerdict) -> None:
    doc = to_document(engine_verdict)
    doc["proofs"][0]["files"][0]["size"] = make_nir()  # a value that must never reach a log
    with pytest.raises(VerdictDocumentError) as refused:
        read_verdict(doc)
    assert make_nir() not in str(refused.value)
    doc = to_document(engine_verdict)
    doc["summary"]["proofs"] = int(make_nir())
    with pytest.raises(VerdictDocumentError) as refused:
        read_verdict(doc)
    assert make_nir() not in str(refused.value) and "a number" in str(refused.value)


def test_the_schema_validators_agree_on_every_single_defect() -> None:
    """fastjsonschema (the reader) and jsonschema (the reference) judge the schema alike, leaf by leaf."""
    from conftest_reports import sample_verdict

    from validators.verdict_io import _validator

    checker = jsonschema.validators.validator_for(schemas.load("verdict.schema.json"))(
        schemas.load("verdict.schema.json")
    )
    sample = sample_verdict()
    with_params = rules.finding("ssi.archive.ratio", Location(entry="a", time=1.5), ratio=120, limit=100.5)
    doc = to_document(replace(sample, package_findings=(*sample.package_findings, with_params)))
    doc["object"] = {"key": "inbox/p.zip", "area": "inbox", "size": 3}
    doc["checked"] = {"in_full": True, "not_run": [], "rules": [], "attempt": None, "next_try_after": None}

    def paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
        yield at
        children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, child in children:
            yield from paths(child, (*at, key))

    verdicts, shapes = 0, set()
    for path in list(paths(doc))[1:]:
        shape = tuple("*" if isinstance(key, int) else key for key in path)
        if shape in shapes:
            continue  # the same place in the schema (another proof, file or finding): judged once
        shapes.add(shape)
        for replacement in (None, "x", 7, -1, 1.5, [], {}, True):
            mutated = copy.deepcopy(doc)
            parent = mutated
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = replacement
            expected = checker.is_valid(mutated)
            try:
                _validator()(mutated)
                fast = True
            except Exception:
                fast = False
            assert fast == expected, (path, replacement)
            verdicts += 1
    assert verdicts > 500


def test_a_stored_file_with_json_numbers_is_read(tmp_path: Path, engine_verdict: PackageVerdict) -> None:
    from validators.verdict_io import read_verdict_file

    path = tmp_path / "verdict.json"
    path.write_bytes(json.dumps(to_document(engine_verdict)).encode())  # another writer's formatting
    assert read_verdict_file(str(path)).verdict == engine_verdict


def test_proofcheck_report_renders_a_stored_verdict_or_refuses_it_in_one_line(
    tmp_path: Path, engine_verdict: PackageVerdict, capsys: pytest.CaptureFixture[str]
) -> None:
    from validators.cli import main
    from validators.report import html

    stored = tmp_path / "verdict.json"
    stored.write_bytes(document_bytes(_older(to_document(engine_verdict))))
    assert main(["report", str(stored), "-o", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_text(encoding="utf-8") == html.render(engine_verdict)  # French, upgraded
    assert "older document read" in capsys.readouterr().err
    stored.write_bytes(render(engine_verdict).encode("utf-8")[:-40])
    assert main(["report", str(stored)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "verdict document refused: not JSON" in err

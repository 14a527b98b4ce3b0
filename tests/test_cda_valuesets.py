"""The J66 snapshot the project ships, the value-set loaders (SVS XML, FHIR JSON) and XSD message masking."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

from fixtures.ans import ANS_J66
from validators.cda import valuesets
from validators.cda.xsd import mask_values

REPO = Path(__file__).resolve().parents[1]
SHARED_J66 = ANS_J66


def test_shipped_j66_has_the_published_facts() -> None:
    j66 = valuesets.j66()
    assert (j66.oid, j66.version, len(j66.concepts)) == ("1.2.250.1.213.1.1.5.7", "20240927120000", 108)
    systems = [system for system, _ in j66.concepts]
    assert (
        systems.count("1.2.250.1.213.1.1.4.12"),
        systems.count("2.16.840.1.113883.6.1"),
        systems.count("ASTM"),
    ) == (31, 76, 1)
    assert j66.display("2.16.840.1.113883.6.1", "60591-5") == "Synthèse médicale"
    assert j66.display("2.16.840.1.113883.6.1", "51851-4") is None  # in J07, not in J66


def test_manifest_and_package_mirror_match_the_snapshot() -> None:
    manifest = json.loads((REPO / "jdv" / "manifest.json").read_text("utf-8"))["JDV_J66-TypeCode-DMP"]
    data = (REPO / "jdv" / manifest["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == manifest["sha256"]
    assert manifest["version"] == "20240927120000" and manifest["concepts"] == 108
    assert (REPO / "validators" / "cda" / "data" / manifest["file"]).read_bytes() == data


def test_generator_reproduces_the_snapshot(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("generate_j66", REPO / "jdv" / "generate_j66.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = module.write(tmp_path)
    assert written.read_bytes() == (REPO / "jdv" / written.name).read_bytes()


@pytest.mark.skipif(not SHARED_J66.is_file(), reason=f"published J66 file absent ({SHARED_J66})")
def test_snapshot_equals_the_published_file_concept_for_concept() -> None:
    published = valuesets.load(SHARED_J66)
    assert published.concepts == valuesets.j66().concepts
    assert published.version == valuesets.j66().version


def test_fhir_json_form_is_loaded_with_oids(tmp_path: Path) -> None:
    resource = {
        "resourceType": "ValueSet",
        "id": "JDV-J66-TypeCode-DMP",
        "version": "20240927120000",
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:oid:1.2.250.1.213.1.1.5.7"}],
        "compose": {
            "include": [
                {
                    "system": "http://loinc.org",
                    "concept": [{"code": "60591-5", "display": "Synthèse médicale"}],
                },
                {
                    "system": "https://mos.esante.gouv.fr/NOS/TRE_A05-TypeDocComplementaire/FHIR/"
                    "TRE-A05-TypeDocComplementaire",
                    "concept": [{"code": "SYNTH", "display": "Synthèse"}],
                },
            ]
        },
    }
    path = tmp_path / "j66.json"
    path.write_text(json.dumps(resource), "utf-8")
    loaded = valuesets.load(path)
    assert loaded.oid == "1.2.250.1.213.1.1.5.7" and loaded.version == "20240927120000"
    assert ("1.2.250.1.213.1.1.4.12", "SYNTH") in loaded
    assert loaded.display("2.16.840.1.113883.6.1", "60591-5") == "Synthèse médicale"


@pytest.mark.parametrize(
    "data", [b"{not json", b'{"resourceType": "Patient"}', b"<a/>", b"<!DOCTYPE a [<!ENTITY x 'y'>]><a/>"]
)
def test_unreadable_value_sets_raise_value_set_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "vs"
    path.write_bytes(data)
    with pytest.raises(valuesets.ValueSetError):
        valuesets.load(path)


def test_xsd_messages_keep_names_and_mask_document_values() -> None:
    message = (
        "Element '{urn:hl7-org:v3}value', attribute 'value': '279035121518989' is not a valid value "
        "of the atomic type 'ts'."
    )
    masked = mask_values(message)
    assert "279035121518989" not in masked
    assert "'{urn:hl7-org:v3}value'" in masked and "attribute 'value'" in masked and "type 'ts'" in masked

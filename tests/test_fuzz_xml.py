"""Fuzzing of the CDA intake: the safe XML parser and the CDA checks' parse path.

Inputs: a small synthetic CDA document (level 1, with a base64 body), a generated structured document
(fixtures/cda_docs.py) and, when the ANS tree is present (fixtures/ans.py), a real ANS example, each
mutated (bit flips, XML tokens written over it, cuts), truncated, re-encoded,
prefixed with DOCTYPE and entity declarations, or nested thousands of levels deep.
Properties: nothing raises, each example stays under its deadline, every problem is one of the safe
parser's catalogued rules, and the checks only emit rules they declare (or ``system.*``).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_support import assert_catalogued, fuzz_settings, mutated

from fixtures import cda_docs
from fixtures.ans import ANS_EXAMPLES
from validators.base import CheckContext, CheckResult, ProofFile, Validator
from validators.cda import CdaSchematronValidator, CdaValidator, ruleset_info
from validators.safexml import RULES as SAFEXML_RULES
from validators.safexml import parse_xml

SHARED_EXAMPLE = ANS_EXAMPLES / "CSE-MDE_2023.01.xml"
SYNTHETIC_CDA = f"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <templateId root="1.3.6.1.4.1.19376.1.2.20"/>
  <id root="1.2.250.1.999.1" extension="DOC-1"/>
  <code code="11488-4" codeSystem="2.16.840.1.113883.6.1" displayName="Note de consultation"/>
  <title>Compte rendu</title>
  <effectiveTime value="20240301120000+0100"/>
  <recordTarget><patientRole><id root="1.2.250.1.213.1.4.10" extension="248098765432112"/>
    <patient><name><given>Test</given><family>FICTIF</family></name></patient></patientRole></recordTarget>
  <component><nonXMLBody><text mediaType="text/plain" representation="B64">{
      base64.b64encode(b"compte rendu fictif").decode()}</text></nonXMLBody></component>
</ClinicalDocument>
""".encode()
SEEDS = [SYNTHETIC_CDA, cda_docs.vaccination_history()] + (
    [SHARED_EXAMPLE.read_bytes()] if SHARED_EXAMPLE.is_file() else []
)
XML_TOKENS = (
    b"<", b">", b"/>", b"</", b"&", b"&amp;", b"&#0;", b"&#x110000;", b"<![CDATA[", b"]]>", b"<!--", b"-->",
    b"<?", b"?>", b'"', b"'", b"=", b"xmlns=", b'xmlns:x="urn:x"', b"x:", b"\x00", b"\xff\xfe", b"\xef\xbb\xbf",
    b"<!DOCTYPE a>", b'<!ENTITY e "x">', b"&e;", b'SYSTEM "file:///etc/passwd"', b'encoding="UTF-16"',
    b'representation="B64"', b'mediaType="application/pdf"', b"nonXMLBody", b"ClinicalDocument",
)
PROLOGS = [
    b"",
    b'<?xml version="1.0" encoding="ISO-8859-1"?>\n',
    b'<?xml version="1.0" encoding="EBCDIC-inconnu"?>\n',
    b'<?xml version="1.1"?>\n',
    b"<!DOCTYPE ClinicalDocument>\n",
    b'<!DOCTYPE ClinicalDocument [<!ENTITY e "x">]>\n',
    b'<!DOCTYPE ClinicalDocument SYSTEM "http://127.0.0.1:9/cda.dtd">\n',
    b'<!DOCTYPE a [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x"> %p;]>\n',
    b'<?xml-stylesheet type="text/xsl" href="http://127.0.0.1:9/x.xsl"?>\n',
]


def _without_declaration(data: bytes) -> bytes:
    return data.split(b"?>", 1)[1] if data.startswith(b"<?xml") else data


@st.composite
def hostile_xml(draw: st.DrawFn) -> bytes:
    seed = draw(st.sampled_from(SEEDS))
    shape = draw(st.sampled_from(["mutated", "truncated", "prolog", "utf16", "deep"]))
    if shape == "mutated":
        return draw(mutated(seed, XML_TOKENS))
    if shape == "truncated":
        return seed[: draw(st.integers(0, len(seed)))]
    if shape == "prolog":
        return draw(st.sampled_from(PROLOGS)) + _without_declaration(seed)
    if shape == "utf16":
        text = _without_declaration(seed).decode("utf-8")
        head = draw(st.sampled_from(['<?xml version="1.0" encoding="UTF-16"?>', "", '<?xml version="1.0"?>']))
        return (head + text).encode(draw(st.sampled_from(["utf-16", "utf-16-le", "utf-16-be"])))
    depth = draw(st.integers(1, 3000))
    tag = draw(st.sampled_from([b"a", b"component", b"x:y"]))
    inner = draw(st.sampled_from([b"", b"texte", b"<b/>", b"&amp;"]))
    closed = draw(st.sampled_from([depth, max(0, depth - 1)]))  # one level left open: not well-formed
    nested = (b"<" + tag + b">") * depth + inner + (b"</" + tag + b">") * closed
    return b'<ClinicalDocument xmlns="urn:hl7-org:v3">' + nested + b"</ClinicalDocument>"


def proof(data: bytes, name: str = "document.xml") -> ProofFile:
    return ProofFile(path=name, size=len(data), sha256=hashlib.sha256(data).hexdigest(), media_type="text/xml",
                     data=data)


def check_declared(validator: Validator, result: CheckResult) -> None:
    assert_catalogued(result.findings)
    for finding in result.findings:
        assert finding.rule in validator.rules or finding.is_system, f"{validator.name} emitted {finding.rule}"


@fuzz_settings(deadline_ms=2000, share=2.0)
@given(hostile_xml(), st.sampled_from([256, 40]))
def test_safe_parser(data: bytes, max_depth: int) -> None:
    result = parse_xml(data, max_bytes=1 << 20, max_depth=max_depth)
    if result.problem is None:
        assert result.ok and result.root is not None
    else:
        assert result.tree is None and result.problem.rule in SAFEXML_RULES
        assert len(result.problem.reason) <= 200


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("no-ruleset")


@fuzz_settings(deadline_ms=3000)
@given(data=hostile_xml(), name=st.sampled_from(["document.xml", "document.cda"]))
def test_cda_check_without_a_ruleset(empty_store: Path, data: bytes, name: str) -> None:
    validator = CdaValidator({"rulesets_dir": str(empty_store)})
    file = proof(data, name)
    if validator.applies_to(file):
        check_declared(validator, validator.check(file, CheckContext()))


@pytest.fixture(scope="module")
def synced(ruleset_settings: dict[str, str]) -> Iterator[tuple[dict[str, str], CheckContext]]:
    """The synced ANS ruleset, warmed up on the seeds so that loading stylesheets is not timed."""
    ctx = CheckContext(ruleset=ruleset_info(ruleset_settings).handle)
    for seed in SEEDS:
        CdaSchematronValidator(ruleset_settings).check(proof(seed), ctx)
    yield ruleset_settings, ctx


# A mutated templateId may select a volet whose stylesheet was not loaded yet: loading one takes seconds.
@fuzz_settings(deadline_ms=60000, share=0.2)
@given(data=hostile_xml())
def test_cda_checks_with_the_synced_ruleset(synced: tuple[dict[str, str], CheckContext], data: bytes) -> None:
    settings, ctx = synced
    for validator in (CdaValidator(settings), CdaSchematronValidator(settings)):
        file = proof(data)
        if validator.applies_to(file):
            check_declared(validator, validator.check(file, ctx))


# --- crashes the fuzzing found ----------------------------------------------------------------------------


def test_a_cda_deeper_than_saxon_accepts_is_reported_not_run(synced: tuple[dict[str, str], CheckContext]) -> None:
    """Found by the test above: a well-formed document 101 elements deep parses with lxml (limit 256) but
    Saxon's parser (JAXP, limit 100) raised PySaxonApiError out of the Schematron check."""
    settings, ctx = synced
    data = b'<ClinicalDocument xmlns="urn:hl7-org:v3">' + b"<a>" * 120 + b"</a>" * 120 + b"</ClinicalDocument>"
    result = CdaSchematronValidator(settings).check(proof(data), ctx)
    assert result.state.value == "not_run"
    assert [f.rule for f in result.findings] == ["system.check-not-run"]

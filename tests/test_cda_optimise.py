"""The compiled-Schematron optimisation (validators/cda/optimise.py): same SVRL, less work."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from fixtures.ans import ANS_EXAMPLES
from validators.cda import schematron
from validators.cda.compiler import SchematronCompiler, processor
from validators.cda.document import load
from validators.cda.optimise import DOCS_PARAM, MARKER, optimise, selection, split_top
from validators.cda.ruleset import latest

EXAMPLES = ANS_EXAMPLES  # read only after synced_rulesets (which skips without the tree)
HL7: dict[str | None, str] = {"cda": "urn:hl7-org:v3"}
OTHER: dict[str | None, str] = {"o": "urn:other"}


def test_split_top_respects_brackets_literals_and_refuses_unbalanced_text() -> None:
    assert split_top("a[b='|'] | c(d|e) | //f", "|") == ["a[b='|'] ", " c(d|e) ", " //f"]
    for bad in ("a[b", "a['x", "a]b[", "a(: comment :)"):
        assert split_top(bad, "|") is None


def test_selection_of_relative_absolute_and_templateid_patterns() -> None:
    assert selection("cda:entry[x]", HL7) == "//cda:entry[x]"
    assert selection("/ | //cda:code", HL7) == "/ | //cda:code"
    keyed = selection("*[cda:templateId/@root = '1.2' and not(cda:x)]/cda:act", HL7)
    assert keyed == (
        "key('proofcheck-template-id', '1.2')/parent::*[cda:templateId/@root = '1.2' and not(cda:x)]/cda:act"
    )
    # "A or B" does not imply A: no key lookup, a plain scan.
    assert selection("*[cda:templateId/@root='1.2' or @x]", HL7) == "//*[cda:templateId/@root='1.2' or @x]"
    # A prefix that is not HL7's is not looked up in the templateId key.
    assert "key(" not in (selection("*[o:templateId/@root='1']", OTHER) or "")


# A stylesheet of the skeleton's shape (iso_svrl_for_xslt2): two patterns, rules with priorities,
# one rule that matches comments, the default-mode walk and the fallback templates.
SKELETON = """<?xml version="1.0" encoding="UTF-8"?>
<xsl:stylesheet version="2.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
  xmlns:svrl="http://purl.oclc.org/dsdl/svrl" xmlns:cda="urn:hl7-org:v3">
  <xsl:template match="text()" priority="-1"/>
  <xsl:template match="/">
    <svrl:schematron-output>
      <svrl:active-pattern><xsl:attribute name="id">P1</xsl:attribute><xsl:apply-templates/></svrl:active-pattern>
      <xsl:apply-templates select="/" mode="M1"/>
      <svrl:active-pattern><xsl:attribute name="id">P2</xsl:attribute><xsl:apply-templates/></svrl:active-pattern>
      <xsl:apply-templates select="/" mode="M2"/>
    </svrl:schematron-output>
  </xsl:template>
  <xsl:template match="*[cda:templateId/@root='1.1']" priority="1001" mode="M1">
    <svrl:fired-rule context="tid"/>
    <xsl:if test="not(cda:code)"><svrl:failed-assert location="{name()}{count(preceding::*)}"/></xsl:if>
    <xsl:apply-templates select="*" mode="M1"/>
  </xsl:template>
  <xsl:template match="cda:section" priority="1000" mode="M1">
    <svrl:fired-rule context="section"/>
    <xsl:apply-templates select="*" mode="M1"/>
  </xsl:template>
  <xsl:template match="text()" priority="-1" mode="M1"/>
  <xsl:template match="@*|node()" priority="-2" mode="M1"><xsl:apply-templates select="*" mode="M1"/></xsl:template>
  <xsl:template match="comment() | cda:entry[1]" priority="1000" mode="M2">
    <svrl:fired-rule context="{name()}-{string(.)}"/>
    <xsl:apply-templates select="*|comment()|processing-instruction()" mode="M2"/>
  </xsl:template>
  <xsl:template match="text()" priority="-1" mode="M2"/>
  <xsl:template match="@*|node()" priority="-2" mode="M2">
    <xsl:apply-templates select="*|comment()|processing-instruction()" mode="M2"/>
  </xsl:template>
</xsl:stylesheet>
"""

DOCUMENT = """<?xml version="1.0"?><!--top--><ClinicalDocument xmlns="urn:hl7-org:v3">
<templateId root="1.1"/><code/><!--inner-->
<section><templateId root="1.1"/><entry/><entry><templateId root="1.1"/></entry></section>
<section><entry><section><templateId root="1.1"/><code/></section></entry></section>
</ClinicalDocument>"""


def transform(xsl: Path, document: Any) -> str:
    executable = processor().new_xslt30_processor().compile_stylesheet(stylesheet_file=str(xsl))
    return str(executable.transform_to_string(xdm_node=document))


def test_optimised_skeleton_gives_the_same_report(tmp_path: Path) -> None:
    plain = tmp_path / "plain.xsl"
    plain.write_text(SKELETON, "utf-8")
    data, stats = optimise(SKELETON.encode())
    assert stats.modes == 2 and stats.default_walks == 2 and stats.keyed == 1
    fast = tmp_path / "fast.xsl"
    fast.write_bytes(data)
    assert MARKER.encode() in data[:200]
    document = processor().parse_xml(xml_text=DOCUMENT)
    expected = transform(plain, document)
    assert expected.count("fired-rule") == 9 and expected.count("failed-assert") == 2
    assert transform(fast, document) == expected
    assert optimise(data)[0] == data  # already optimised: left alone


def test_stylesheets_of_another_shape_are_left_alone() -> None:
    other = SKELETON.replace(
        '<xsl:apply-templates select="*" mode="M1"/>\n  </xsl:template>\n  <xsl:template match="cda:section"',
        '<xsl:next-match/>\n  </xsl:template>\n  <xsl:template match="cda:section"',
    )
    _, stats = optimise(other.encode())
    assert stats.skipped == 1 and stats.modes == 1
    assert optimise(b"<not-a-stylesheet/>")[0] == b"<not-a-stylesheet/>"
    assert optimise(b"<broken")[0] == b"<broken"


def _svrl(text: str) -> str:
    return re.sub(r'dateHeure="[^"]*"', "", text)


SAMPLE = (
    "BIO-CR-BIO_2024.01_TSH_1.xml",
    "LDL-SES_2022.01.xml",
    "CANCER-D2LM-FIN_2022.01.xml",
    "IMG-DA-IMG_2024.01_Radiographie_IRM_Genou.xml",
    "VAC_2023.01.xml",
)


@contextmanager
def plain_and_fast(tree: Path, rel: str) -> Iterator[tuple[Any, Any]]:
    """The profile compiled without the optimisation (next to its .sch: relative paths stay valid) and
    as the sync compiled it (optimised)."""
    sch = tree / rel
    plain = sch.with_name("plain-test.xsl")
    fast = sch.with_suffix(".xsl")
    assert MARKER.encode() in fast.read_bytes()[:4096], "the sync did not optimise the profile"
    try:
        SchematronCompiler(tree / "schematrons" / "moteur").compile(sch, plain, optimised=False)
        yield tuple(
            processor().new_xslt30_processor().compile_stylesheet(stylesheet_file=str(xsl)) for xsl in (plain, fast)
        )
    finally:
        plain.unlink(missing_ok=True)


def assert_same_report(plain: Any, fast: Any, document: Any, name: str) -> int:
    expected = _svrl(plain.transform_to_string(xdm_node=document))
    assert _svrl(fast.transform_to_string(xdm_node=document)) == expected, name
    return expected.count("<svrl:failed-assert")


@pytest.mark.parametrize(
    "profile",
    ["schematrons/profils/IHE.sch", "schematrons/profils/CI-SIS_Modeles_ANS.sch"],
    ids=["IHE", "Modeles_ANS"],
)
def test_ans_profiles_report_the_same_before_and_after(synced_rulesets: Path, profile: str) -> None:
    tree = next(synced_rulesets.glob("*/tree"))
    failures = 0
    with plain_and_fast(tree, profile) as (plain, fast):
        for name in SAMPLE:
            data = (EXAMPLES / name).read_text("utf-8")
            # A mutation that breaks section rules, so that failed assertions are compared too.
            broken = re.sub(r'(<code\b[^>]*\bcode=")[^"]*"', r'\g<1>0000-0"', data)
            for text in (data, broken):
                failures += assert_same_report(plain, fast, processor().parse_xml(xml_text=text), name)
    assert failures > 0


def test_terminology_profile_reads_preparsed_files_with_the_same_verdicts(synced_rulesets: Path) -> None:
    ruleset = latest(synced_rulesets)
    assert ruleset is not None
    failures = 0
    with plain_and_fast(ruleset.tree, "schematrons/profils/terminologies/schematron/terminologie.sch") as (
        plain,
        fast,
    ):
        for name in ("AVC-AUNV_2022.01.xml", "TLM-DA_2022.01_TCG.xml", "eP-MED-DM_2024.01_PosoStruct.xml"):
            data = (EXAMPLES / name).read_bytes()
            # Codes that are not in terminologies the tree holds (CIM-10, CCAM, ATC): failed assertions.
            data = re.sub(
                rb'(<[^>]*\bcode=")([^"]*)("[^>]*codeSystem="(?:2\.16\.840\.1\.113883\.6\.3|'
                rb'1\.2\.250\.1\.213\.2\.5|2\.16\.840\.1\.113883\.6\.73)")',
                rb"\1ZZ\2\3",
                data,
            )
            loaded = load(data, max_bytes=1 << 26, max_depth=256)
            assert loaded.document is not None
            documents = schematron._documents(loaded.document, ruleset)
            assert documents is not None
            fast.set_parameter(DOCS_PARAM, documents)
            node = processor().parse_xml(xml_text=loaded.document.serialize().decode("utf-8"))
            failures += assert_same_report(plain, fast, node, name)
    assert failures > 0

"""The safe XML parser: attacks are refused and classified, bad XML is reported, good XML parses."""

from __future__ import annotations

import pytest

from validators import rules
from validators.safexml import parse_xml

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz>&lol3;</lolz>"""
XXE_FILE = b'<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>'
XXE_PARAMETER = b'<!DOCTYPE foo [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd"> %remote;]><foo/>'
EXTERNAL_DTD = b'<!DOCTYPE ClinicalDocument SYSTEM "http://127.0.0.1:9/cda.dtd"><ClinicalDocument/>'
UTF16_ENTITY = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>'.encode(
    "utf-16"
)


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (BILLION_LAUGHS, "ssi.xml.entity"),
        (XXE_FILE, "ssi.xml.entity"),
        (XXE_PARAMETER, "ssi.xml.entity"),
        (UTF16_ENTITY, "ssi.xml.entity"),
        (EXTERNAL_DTD, "ssi.xml.external-dtd"),
        (b"<a>" * 10_000 + b"</a>" * 10_000, "ssi.xml.limit"),
        (b"<ClinicalDocument><code></ClinicalDocument>", "cda.xml"),
        (b'<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3"><title>tr', "cda.xml"),
        (b"   ", "cda.xml"),
        (b"\x00\x01binary", "cda.xml"),
    ],
    ids=[
        "billion-laughs",
        "xxe-file",
        "xxe-parameter-entity",
        "utf16-entity",
        "external-dtd",
        "deep-10000",
        "mismatched-tag",
        "truncated",
        "blank",
        "binary",
    ],
)
def test_hostile_or_broken_xml_is_refused_with_its_rule(data: bytes, rule: str) -> None:
    result = parse_xml(data)
    assert not result.ok
    assert result.tree is None
    assert result.problem is not None and result.problem.rule == rule
    assert result.problem.rule in rules.catalogue()


def test_entities_are_never_expanded_into_the_reason() -> None:
    result = parse_xml(XXE_FILE)
    assert result.problem is not None and "root:" not in result.problem.reason


def test_size_limit_is_checked_before_parsing() -> None:
    result = parse_xml(b"<a>" + b"x" * 2000 + b"</a>", max_bytes=1000)
    assert result.problem is not None and result.problem.rule == "ssi.xml.limit"
    assert "size limit" in result.problem.reason and result.problem.evidence == "2007 bytes, limit 1000"


def test_depth_limit_below_libxml2_default_is_enforced() -> None:
    nested = b"<a>" * 30 + b"</a>" * 30
    assert parse_xml(nested).ok
    limited = parse_xml(nested, max_depth=10)
    assert limited.problem is not None and limited.problem.rule == "ssi.xml.limit"


def test_not_well_formed_carries_line_and_column() -> None:
    result = parse_xml(b"<a>\n<b>\n</a>")
    assert result.problem is not None and result.problem.line == 3 and result.problem.column


def test_plain_and_bare_doctype_documents_parse() -> None:
    plain = parse_xml(
        b'<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3"><id root="1"/></ClinicalDocument>'
    )
    assert plain.ok and not plain.doctype and plain.root.tag == "{urn:hl7-org:v3}ClinicalDocument"
    bare = parse_xml(b"<!DOCTYPE a><a/>")
    assert bare.ok and bare.doctype


def test_an_entity_word_in_the_body_is_not_a_declaration() -> None:
    result = parse_xml(b"<a><!-- <!ENTITY is only text here --><b>&lt;!ENTITY</b></a>")
    assert result.ok


def test_text_node_over_libxml2_limit_parses_within_our_byte_limit() -> None:
    # A level-1 CDA body: an 8 MB PDF is an 11 MB base64 text node (libxml2 stops at 10 MB by default).
    result = parse_xml(b"<a>" + b"x" * 12_000_000 + b"</a>")
    assert result.ok and len(result.root.text or "") == 12_000_000
    refused = parse_xml(b"<a>" + b"x" * 12_000_000 + b"</a>", max_bytes=11_000_000)
    assert refused.problem is not None and refused.problem.rule == "ssi.xml.limit"


@pytest.mark.parametrize("depth", [300, 3000, 10_000])
def test_huge_text_node_does_not_lift_the_depth_limit(depth: int) -> None:
    # The huge parser allows 2048 levels: our own limit (256) still applies on that path.
    data = b"<a>" + b"x" * 11_000_000 + b"<b>" * depth + b"</b>" * depth + b"</a>"
    result = parse_xml(data)
    assert result.problem is not None and result.problem.rule == "ssi.xml.limit"


def test_huge_text_node_does_not_let_entities_in() -> None:
    data = b'<!DOCTYPE a [<!ENTITY x "y">]><a>' + b"x" * 11_000_000 + b"&x;</a>"
    result = parse_xml(data)
    assert result.problem is not None and result.problem.rule == "ssi.xml.entity"

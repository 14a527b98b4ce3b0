"""Dangerous link targets (issue 12 item 7 and the CDA narrative of item 2): what a link would do when
followed, judged after the obfuscation a browser undoes, in HTML, SVG, XML/CDA and PDF."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures import hostile, hostile_content
from validators.base import CheckContext, ProofFile
from validators.ssi import links, markup, pdf

ANS_EXAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "ans" / "TestContenuCDA-3-0" / "ExemplesCDA"


def _file(name: str, data: bytes, media_type: str) -> ProofFile:
    return ProofFile(path=name, size=len(data), sha256="0" * 64, media_type=media_type, data=data)


@pytest.mark.parametrize(
    ("url", "kind", "scheme"),
    [
        ("javascript:alert(1)", "script", "javascript"),
        ("  JavaScript:alert(1)", "script", "javascript"),
        ("jav\tasc\nript:alert(1)", "script", "javascript"),
        ("\x01javascript:alert(1)", "script", "javascript"),
        ("javascript&colon;alert(1)", "script", "javascript"),
        ("vbscript:MsgBox(1)", "script", "vbscript"),
        ("ms-msdt:/id PCWDiagnostic", "script", "ms-msdt"),
        ("search-ms:query=x&crumb=location:\\\\host\\s", "script", "search-ms"),
        ("data:text/html;base64,PHNjcmlwdD4=", "script", "data:text/html"),
        ("data:image/svg+xml,<svg onload=alert(1)>", "script", "data:image/svg+xml"),
        ("data:,du texte", "data", "data:text/plain"),
        ("data:image/png;base64,iVBORw0KGgo=", "data", "data:image/png"),
        ("file:///C:/Windows/System32/calc.exe", "file", "file"),
        ("\\\\203.0.113.9\\partage\\x.exe", "file", "UNC path"),
        ("//203.0.113.9/partage/x.pdf", "file", "UNC path"),
        ("/\\203.0.113.9\\partage", "file", "UNC path"),
        ("C:\\Windows\\System32\\calc.exe", "file", "local path"),
        ("smb://203.0.113.9/partage", "file", "smb"),
    ],
)
def test_dangerous_targets(url: str, kind: str, scheme: str) -> None:
    assert links.classify(url) == links.DangerousLink(kind, scheme)


@pytest.mark.parametrize(
    "url",
    [
        "https://esante.gouv.fr/produits-services/segur",
        "http://www.example.org/wado?requestType=WADO&studyUID=1.2.250",
        "mailto:secretariat@exemple.fr",
        "tel:+33-142515151",
        "#doc-1",
        "documentsAnnexes/AVK.pdf",
        "javascript-guide.html",
        "/chemin/absolu.html",
        "",
    ],
)
def test_ordinary_targets(url: str) -> None:
    assert links.classify(url) is None


def test_a_shown_target_keeps_the_scheme_and_host_but_never_the_path_or_query() -> None:
    assert links.shown("https://exfil.example/?nir=185057800608436") == "https://exfil.example/…"
    assert links.shown("\\\\serveur\\patients\\DUPONT Marie\\cr.pdf") == "\\\\serveur\\…"
    assert links.shown("javascript:alert(document.cookie)") == "javascript:…"
    assert links.shown("data:text/html;base64,PHNjcmlwdD4=") == "data:text/html;base64,…"
    assert links.shown("C:\\Users\\dupont\\x.exe") == "C:\\…"


def _markup_rules(name: str, data: bytes, media_type: str) -> list[str]:
    result = markup.MarkupValidator().check(_file(name, data, media_type), CheckContext())
    return sorted(f.rule for f in result.findings)


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        ('<a><set attributeName="href" to="javascript:alert(1)"/><text>x</text></a>', "ssi.markup.javascript-url"),
        ('<a><animate attributeName="xlink:href" values="#a;javascript:alert(1);x" dur="1s"/></a>',
         "ssi.markup.javascript-url"),
        ('<a><set attributeName="href" to="\\\\203.0.113.9\\s\\x.lnk"/></a>', "ssi.markup.file-link"),
        ('<a href="file:///etc/passwd"><text>x</text></a>', "ssi.markup.file-link"),
        ('<a xlink:href="data:application/octet-stream;base64,TVo="><text>x</text></a>',
         "ssi.markup.javascript-url"),
        ('<a href="data:,bonjour"><text>x</text></a>', "ssi.markup.data-link"),
        ('<rect style="fill:url(javascript:alert(1))"/>', "ssi.markup.javascript-url"),
    ],
)
def test_svg_links(body: str, rule: str) -> None:
    assert rule in _markup_rules("a.svg", hostile_content.svg(body), "image/svg+xml")


@pytest.mark.parametrize(
    "body",
    [
        '<a href="https://esante.gouv.fr"><text>x</text></a>',
        '<a href="#r"><set attributeName="href" to="https://esante.gouv.fr"/><text>x</text></a>',
        '<set attributeName="fill" to="red"/>',
        '<image href="data:image/png;base64,iVBORw0KGgo=" width="1" height="1"/>',
    ],
)
def test_svg_ordinary_links_raise_nothing(body: str) -> None:
    assert _markup_rules("a.svg", hostile_content.svg(body), "image/svg+xml") == []


@pytest.mark.parametrize(
    ("html", "rule"),
    [
        (b'<a href="jav&#x09;ascript:alert(1)">x</a>', "ssi.markup.javascript-url"),
        (b'<a href="&#106;&#97;vascript:alert(1)">x</a>', "ssi.markup.javascript-url"),
        (b'<a href="javascript&colon;alert(1)">x</a>', "ssi.markup.javascript-url"),
        (b'<form><button formaction="javascript:alert(1)">ok</button></form>', "ssi.markup.javascript-url"),
        (b'<meta http-equiv="refresh" content="0; URL=\'javascript:alert(1)\'">', "ssi.markup.javascript-url"),
        (b'<iframe src="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>',
         "ssi.markup.javascript-url"),
        (b'<a href="\\\\203.0.113.9\\share\\x.exe">x</a>', "ssi.markup.file-link"),
        (b'<img src="file://203.0.113.9/share/pixel.png">', "ssi.markup.file-link"),
        (b'<a href="ms-msdt:/id PCWDiagnostic">x</a>', "ssi.markup.javascript-url"),
        (b'<div style="background:url(\'vbscript:x\')">x</div>', "ssi.markup.javascript-url"),
        (b'<meta http-equiv="Refresh" content="0; javascript:alert(1)">', "ssi.markup.javascript-url"),
        (b'<iframe srcdoc="&lt;a href=&quot;file:///etc/passwd&quot;&gt;x&lt;/a&gt;"></iframe>',
         "ssi.markup.file-link"),
    ],
)
def test_html_links(html: bytes, rule: str) -> None:
    assert rule in _markup_rules("a.html", b"<html><body>" + html + b"</body></html>", "text/html")


def test_html_inline_images_and_web_links_raise_nothing() -> None:
    page = (
        b'<html><body><img src="data:image/png;base64,iVBORw0KGgo="><a href="https://esante.gouv.fr">x</a>'
        b'<a href="javascript-guide.html">guide</a><video poster="data:image/jpeg;base64,/9j/"></video></body></html>'
    )
    assert _markup_rules("a.html", page, "text/html") == []


def test_cda_narrative_links_are_judged() -> None:
    for case in hostile_content.CONTENT_GROUPS[0]():
        if not case.name.startswith(("cda-link", "cda-reference", "cda-media-reference")):
            continue
        found = _markup_rules(case.name, case.data, "text/xml")
        assert any(rule.startswith(case.rule) for rule in found), (case.name, found)


def test_a_cda_with_an_image_and_a_web_link_raises_no_link_finding() -> None:
    assert _markup_rules("cda.xml", hostile_content.benign_cda(), "text/xml") == []


@pytest.mark.skipif(not ANS_EXAMPLES.is_dir(), reason="ANS reference tree absent")
def test_no_ans_example_has_a_dangerous_link() -> None:
    """The ANS's published examples (auto-présentable ones with data: images included) are all benign."""
    flagged = {}
    for path in sorted(ANS_EXAMPLES.glob("*.xml")):
        found = [r for r in _markup_rules(path.name, path.read_bytes(), "text/xml") if r != "ssi.markup.xslt-script"]
        if found:
            flagged[path.name] = found
    assert flagged == {}


def _pdf_rules(data: bytes) -> list[tuple[str, str]]:
    result = pdf.PdfValidator().check(_file("a.pdf", data, "application/pdf"), CheckContext())
    return sorted((f.rule, f.severity.value) for f in result.findings)


@pytest.mark.parametrize(
    "uri",
    [
        "javascript:app.alert(1)",
        " JAVA\tSCRIPT:app.alert(1)",
        "file:///C:/Windows/System32/calc.exe",
        "\\\\203.0.113.9\\partage\\x.exe",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:x",
    ],
)
def test_pdf_links_to_scripts_files_and_shares_are_errors(uri: str) -> None:
    assert _pdf_rules(hostile_content.pdf_link(uri)) == [("ssi.pdf.dangerous-link", "error")]


@pytest.mark.parametrize("uri", ["https://esante.gouv.fr/", "http://exemple.fr/a?b=c", "mailto:a@exemple.fr"])
def test_pdf_web_links_stay_information(uri: str) -> None:
    assert _pdf_rules(hostile_content.pdf_link(uri)) == [("ssi.pdf.uri", "info")]


def test_many_dangerous_pdf_links_give_a_bounded_number_of_findings() -> None:
    annots = tuple(
        f"<< /Type /Annot /Subtype /Link /Rect [0 0 1 1] /A << /S /URI /URI (\\\\\\\\host{i}\\\\s) >> >>"
        for i in range(200)
    )
    findings = pdf.PdfValidator().check(_file("a.pdf", hostile.pdf("", annots), "application/pdf"), CheckContext())
    dangerous = [f for f in findings.findings if f.rule == "ssi.pdf.dangerous-link"]
    assert 1 < len(dangerous) <= pdf.MAX_LINK_TARGETS + 1

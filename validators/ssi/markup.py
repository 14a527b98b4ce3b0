"""SVG, HTML and XML active content: scripts, event handlers, dangerous links, external references.

SVG and XML are parsed with ``validators.safexml`` (no DTD, no entities, no network); a document it
refuses (XXE, billion laughs) is reported by the XML check (``ssi.xml.*``) and not re-reported here.
HTML is parsed with lxml's HTML parser (libxml2, no network). Generic XML (CDA documents) is judged on
what a browser would do with it: a remote stylesheet, XInclude, scripts an embedded XSLT outputs, and
links of the narrative (``linkHtml/@href``, ``reference/@value``, the ED references that
``renderMultiMedia`` shows) that run code or open local files. Link targets are judged by
``validators.ssi.links`` (obfuscation undone as a browser would), in URL attributes, in SMIL animations
that rewrite an ``href`` (``<set>``/``<animate>``), in ``<meta http-equiv=refresh>`` and in CSS ``url()``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any, ClassVar

from lxml import etree, html

from validators import rules
from validators.base import CheckContext, CheckResult, FileTooLargeError, ProofFile, Validator
from validators.model import CheckState, Finding, Location
from validators.safexml import looks_like_xml, parse_xml
from validators.ssi.links import DangerousLink, classify, shown

MAX_MARKUP_BYTES = 64 * 1024 * 1024
MAX_FINDINGS_PER_RULE = 20
XSLT_NS = "http://www.w3.org/1999/XSL/Transform"
XINCLUDE_NS = "http://www.w3.org/2001/XInclude"
_REMOTE = re.compile(r"^\s*(?:[a-z][a-z0-9+.\-]*:|//|\\\\)", re.IGNORECASE)
_HARMLESS_SCHEMES = re.compile(r"^\s*(?:#|data:image/(?:png|jpeg|gif|webp);)", re.IGNORECASE)
_URL_ATTRIBUTES = frozenset(
    {
        "href",
        "src",
        "action",
        "formaction",
        "data",
        "xlink:href",
        "background",
        "poster",
        "codebase",
        "cite",
        "longdesc",
        "lowsrc",
        "dynsrc",
        "archive",
        "classid",
        "ping",
        "manifest",
        "icon",
        "usemap",
        "profile",
    }
)
# Attributes followed as links (navigation). Elsewhere (src, poster, CSS url()...) a URL is loaded as a
# resource, where inline data: pictures are normal; scripts and local files are dangerous everywhere.
_NAVIGATION = frozenset({"href", "xlink:href", "action", "formaction"})
_PICTURES = frozenset({"image", "feimage", "img"})  # their href is loaded as a picture, not followed
# CDA (and other XML) attributes holding link targets: the narrative's linkHtml/@href, ED and narrative
# reference/@value (what renderMultiMedia shows), telecom/@value (rendered as links by some stylesheets).
_XML_VALUE_LINKS = frozenset({"reference", "telecom"})
_SMIL = frozenset({"set", "animate"})
_SMIL_VALUES = ("to", "from", "by", "values")
# <meta http-equiv=refresh content="0; URL='x'">: after the delay, "URL=" is optional (HTML, 4.2.5.3).
_REFRESH_URL = re.compile(r"^\s*[\d.]*\s*[;,]?\s*(?:url\s*=\s*)?['\"]?([^'\"]*)", re.IGNORECASE)
_CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]*)", re.IGNORECASE)
# Elements that fetch or embed what they point at when the document is displayed.
_SVG_FETCHING = frozenset({"image", "use", "feimage", "script", "foreignobject", "iframe", "audio", "video"})
_HTML_EMBEDDING = frozenset({"iframe", "frame", "object", "embed", "applet", "base", "form", "portal"})
_PSEUDO_HREF = re.compile(r"href\s*=\s*[\"']([^\"']*)[\"']", re.IGNORECASE)


def markup_kind(file: ProofFile) -> str | None:
    media = file.media_type.split(";")[0].strip().lower()
    if media == "image/svg+xml" or file.extension in ("svg", "svgz"):
        return "svg"
    if media in ("text/html", "application/xhtml+xml") or file.extension in ("html", "htm", "xhtml", "mht"):
        return "html"
    if (
        media in ("text/xml", "application/xml")
        or media.endswith("+xml")
        or file.extension in ("xml", "xsl", "cda")
    ):
        return "xml" if looks_like_xml(file.head(4096)) else None
    return None


def _local(name: object) -> str:
    text = str(name)
    return text.rsplit("}", 1)[-1].lower()


def _attribute_name(name: str) -> str:
    return "xlink:href" if name == "{http://www.w3.org/1999/xlink}href" else _local(name)


def _where(element: etree._Element) -> Location:
    line: Any = element.sourceline
    return Location(line=line if isinstance(line, int) else None)


_LINK_RULES = {
    "script": "ssi.markup.javascript-url",
    "file": "ssi.markup.file-link",
    "data": "ssi.markup.data-link",
}


def _link_finding(
    value: str, attribute: str, element: str, where: Location, *, navigation: bool = True
) -> Finding | None:
    """A finding when following (or loading) ``value`` runs code, opens a local file or inline data."""
    danger: DangerousLink | None = classify(value)
    if danger is None or (danger.kind == "data" and not navigation):
        return None  # inline data loaded as a resource (a picture) is what data: URLs are for
    target = shown(value)
    return rules.finding(
        _LINK_RULES[danger.kind],
        where,
        scheme=danger.scheme,
        target=target,
        attribute=attribute,
        element=element,
        evidence=target,
    )


def _value(raw: Any) -> str:
    return raw if isinstance(raw, str) else bytes(raw).decode("utf-8", "replace")


def _animated_links(element: etree._Element, tag: str, where: Location) -> Iterator[Finding]:
    """SMIL ``<set>``/``<animate>`` rewriting an href: the link followed is the animated value, not the static one."""
    animated = _value(element.get("attributeName") or element.get("attributename") or "").strip().lower()
    if animated.rsplit(":", 1)[-1] != "href":
        return
    for name in _SMIL_VALUES:
        raw = element.get(name)
        if raw is None:
            continue
        # values="#a;javascript:alert(1)" lists the values in turn; a script URL may itself hold ';'.
        for candidate in (_value(raw), *_value(raw).split(";")):
            # The attribute as written in the markup: the same words in any language.
            finding = _link_finding(candidate, f"{name}[attributeName={animated}]", tag, where)
            if finding is not None:
                yield finding
                break


def _css_links(css: str, attribute: str, tag: str, where: Location) -> Iterator[Finding]:
    for url in _CSS_URL.findall(css):
        finding = _link_finding(url, attribute, tag, where, navigation=False)
        if finding is not None:
            yield finding


def _srcdoc(document: str, where: Location) -> Iterator[Finding]:
    """An iframe's srcdoc is a whole HTML document displayed in the page: judged like one (one level deep)."""
    try:
        root = html.fromstring(document.encode("utf-8"), parser=html.HTMLParser(no_network=True))
    except (etree.ParserError, ValueError):
        return
    for finding in _active_content(root, "html", nested=True):
        yield dataclasses.replace(finding, location=where)


def _attribute_findings(
    element: etree._Element, tag: str, kind: str, where: Location, nested: bool
) -> Iterator[Finding]:
    for name, raw_value in element.attrib.items():
        attribute = _attribute_name(str(name))
        value = _value(raw_value)
        if attribute.startswith("on"):
            yield rules.finding("ssi.markup.event-handler", where, attribute=attribute, element=tag)
        elif attribute == "style":
            yield from _css_links(value, "style", tag, where)
        elif attribute == "srcdoc" and kind == "html" and not nested:
            yield from _srcdoc(value, where)
        elif attribute in _URL_ATTRIBUTES:
            finding = _link_finding(
                value, attribute, tag, where, navigation=attribute in _NAVIGATION and tag not in _PICTURES
            )
            if finding is not None:
                yield finding
            elif (
                kind == "svg"
                and tag in _SVG_FETCHING
                and _REMOTE.match(value)
                and not _HARMLESS_SCHEMES.match(value)
            ):
                # The target's scheme and host only (links.shown): a path may name a patient.
                yield rules.finding("ssi.markup.external-reference", where, detail=f"<{tag}> {shown(value)}")


def _active_content(root: etree._Element, kind: str, nested: bool = False) -> Iterator[Finding]:
    """Scripts, handlers, dangerous links and external references of an SVG or HTML tree."""
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        tag = _local(element.tag)
        where = _where(element)
        if tag == "script":
            yield rules.finding("ssi.markup.script", where, element="script")
        elif tag == "style":
            yield from _css_links(element.text or "", "url()", tag, where)
        elif tag in _SMIL:
            yield from _animated_links(element, tag, where)
        if kind == "html" and tag in _HTML_EMBEDDING:
            target = (
                element.get("src")
                or element.get("data")
                or element.get("href")
                or element.get("action")
                or ""
            )
            if tag != "form" or _REMOTE.match(target):
                yield rules.finding("ssi.markup.external-reference", where, detail=f"<{tag}>")
        if kind == "html" and tag == "meta" and (element.get("http-equiv") or "").lower() == "refresh":
            yield rules.finding("ssi.markup.external-reference", where, detail="<meta http-equiv=refresh>")
            refresh = _REFRESH_URL.search(_value(element.get("content") or ""))
            if refresh is not None:
                finding = _link_finding(refresh[1], "content (refresh)", tag, where)
                if finding is not None:
                    yield finding
        yield from _attribute_findings(element, tag, kind, where, nested)


def _xml_links(root: etree._Element) -> Iterator[Finding]:
    """Link targets of an XML document: the CDA narrative's linkHtml/@href, reference/@value (narrative
    references and the ED references renderMultiMedia shows), telecom/@value, and href/src anywhere."""
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        tag = _local(element.tag)
        for name, raw_value in element.attrib.items():
            attribute = _attribute_name(str(name))
            if attribute in ("href", "src", "xlink:href") or (attribute == "value" and tag in _XML_VALUE_LINKS):
                display = etree.QName(element).localname
                finding = _link_finding(
                    _value(raw_value), attribute, display, _where(element),
                    navigation=attribute != "src" and tag not in _PICTURES,
                )
                if finding is not None:
                    yield finding


def _xml_document(root: etree._Element) -> Iterator[Finding]:
    """What a browser would do with an XML document: fetch its stylesheet, include, run XSLT output,
    follow its links."""
    for node in root.itersiblings(preceding=True):
        if isinstance(node, etree._ProcessingInstruction) and node.target == "xml-stylesheet":
            href = _PSEUDO_HREF.search(node.text or "")
            if href is not None and _REMOTE.match(href[1]):
                yield rules.finding("ssi.markup.external-reference", detail="remote xml-stylesheet")
    for element in root.iter(f"{{{XINCLUDE_NS}}}include"):
        yield rules.finding("ssi.markup.external-reference", _where(element), detail="XInclude")
    stylesheets = list(root.iter(f"{{{XSLT_NS}}}stylesheet", f"{{{XSLT_NS}}}transform"))
    for sheet in stylesheets:
        if any(_local(e.tag) == "script" for e in sheet.iter() if isinstance(e.tag, str)):
            yield rules.finding("ssi.markup.xslt-script", _where(sheet))
            break
    if not stylesheets:
        yield from (f for f in _active_content(root, "svg") if f.rule == "ssi.markup.script")
    yield from _xml_links(root)


def _capped(findings: Iterator[Finding]) -> list[Finding]:
    out, counts = [], {}  # type: list[Finding], dict[str, int]
    for finding in findings:
        counts[finding.rule] = counts.get(finding.rule, 0) + 1
        if counts[finding.rule] <= MAX_FINDINGS_PER_RULE:
            out.append(finding)
    return out


class MarkupValidator(Validator):
    name: ClassVar[str] = "ssi-markup"
    rules: ClassVar[tuple[str, ...]] = (
        "ssi.markup.script",
        "ssi.markup.event-handler",
        "ssi.markup.javascript-url",
        "ssi.markup.file-link",
        "ssi.markup.data-link",
        "ssi.markup.external-reference",
        "ssi.markup.xslt-script",
        "system.check-not-run",
    )
    reads_settings: ClassVar[tuple[str, ...]] = ()
    reads_ruleset: ClassVar[tuple[str, ...]] = ()
    timeout: ClassVar[float] = 60.0

    def applies_to(self, file: ProofFile) -> bool:
        return markup_kind(file) is not None

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        kind = markup_kind(file)
        try:
            data = file.read(MAX_MARKUP_BYTES)
        except FileTooLargeError:
            return CheckResult(
                state=CheckState.NOT_RUN, detail="over the size limit: not inspected"
            )
        if kind == "html":
            try:
                root = html.fromstring(data, parser=html.HTMLParser(no_network=True, remove_comments=True))
            except (etree.ParserError, ValueError):
                return CheckResult(state=CheckState.NOT_RUN, detail="HTML could not be parsed")
            return CheckResult(findings=_capped(_active_content(root, "html")))
        parsed = parse_xml(data)
        if not parsed.ok:
            # The XML check reports why (ssi.xml.* for entities, cda.xml when not well-formed).
            return CheckResult(state=CheckState.NOT_RUN, detail="not parsed (see the XML check)")
        root = parsed.root
        if kind == "svg" or _local(root.tag) == "svg":
            return CheckResult(findings=_capped(_active_content(root, "svg")))
        return CheckResult(findings=_capped(_xml_document(root)))

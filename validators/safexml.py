"""The project's one XML parser for untrusted bytes: lxml with no network, no DTD, no entities, limits.

Use ``parse_xml(data)``: it never raises on bad input, it returns a ``SafeParseResult`` holding either
the tree or the one problem that stopped it, already classified as a catalogued rule:

- ``ssi.xml.entity``: the document declares entities (XXE, billion laughs); nothing is expanded.
- ``ssi.xml.external-dtd``: the document points at an external DTD (a network or file fetch attempt).
- ``ssi.xml.limit``: over the size or depth limit (hostile or not, it was not parsed).
- ``cda.xml``: not well-formed (truncated, bad encoding...).

A text node over libxml2's 10 MB limit (the base64 body of a level-1 CDA carrying an 8 MB PDF) is read:
the input is within our own byte limit and has no entity, so the document is parsed again with
XML_PARSE_HUGE and our depth limit is checked by a walk of the tree.

A bare ``<!DOCTYPE x>`` with no declarations is harmless and parsed; ``result.doctype`` tells callers.
Problems carry a line and column and a libxml2 message cut short (it names elements, never text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lxml import etree

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
# libxml2 refuses more than 256 levels without XML_PARSE_HUGE (2048 with it, set only to read a text node
# over 10 MB); a smaller limit, or any limit on the huge path, is checked by a walk of the tree, which
# costs about as much as the parse itself.
LIBXML2_MAX_DEPTH = 256
DEFAULT_MAX_DEPTH = LIBXML2_MAX_DEPTH

RULE_ENTITY = "ssi.xml.entity"
RULE_EXTERNAL_DTD = "ssi.xml.external-dtd"
RULE_LIMIT = "ssi.xml.limit"
RULE_NOT_WELL_FORMED = "cda.xml"

RULES = (RULE_ENTITY, RULE_EXTERNAL_DTD, RULE_LIMIT, RULE_NOT_WELL_FORMED)

_MESSAGE_MAX = 160
# The document prolog: everything before the root element (a DOCTYPE can only sit there).
_PROLOG_SCAN_BYTES = 64 * 1024
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)
_ROOT_START = re.compile(rb"<[A-Za-z_:]")
_DOCTYPE_EXTERNAL = re.compile(rb"<!DOCTYPE[^>\[]*\b(SYSTEM|PUBLIC)\b", re.IGNORECASE)


@dataclass(frozen=True)
class XmlProblem:
    """Why a document was not parsed: a catalogued rule id and a short, content-free reason."""

    rule: str
    reason: str
    line: int | None = None
    column: int | None = None
    evidence: str | None = None  # the numbers behind a limit (the reason is fixed words)


@dataclass(frozen=True)
class SafeParseResult:
    tree: etree._ElementTree | None
    problem: XmlProblem | None = None
    doctype: bool = False

    @property
    def ok(self) -> bool:
        return self.tree is not None and self.problem is None

    @property
    def root(self) -> etree._Element:
        if self.tree is None:
            raise ValueError("the document was not parsed")
        return self.tree.getroot()


class _RefuseAll(etree.Resolver):
    """Belt and braces: even if something asked for an external resource, it gets nothing."""

    def resolve(self, system_url: str, public_id: str, context: Any = None) -> Any:
        resolver: Any = self
        return resolver.resolve_empty(context)


def make_parser(*, huge: bool = False) -> etree.XMLParser:
    """A fresh hardened lxml parser (parsers are not thread-safe: one per call).

    ``huge`` lifts libxml2's 10 MB text-node limit (and its depth limit to 2048): only for input already
    within our own byte limit, with entities refused before parsing and our depth limit checked after.
    """
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        huge_tree=huge,
        collect_ids=False,
    )
    parser.resolvers.add(_RefuseAll())
    return parser


def _decoded_prolog(data: bytes) -> bytes:
    """The start of the document as ASCII-compatible bytes, so that UTF-16 cannot hide a DOCTYPE."""
    head = data[:_PROLOG_SCAN_BYTES]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(head) > 1 and (head[0] == 0 or head[1] == 0)):
        for codec in ("utf-16", "utf-16-le", "utf-16-be"):
            try:
                return head[: len(head) & ~1].decode(codec).encode("utf-8", "replace")
            except UnicodeDecodeError:
                continue
    return head


def _prolog_problem(data: bytes) -> XmlProblem | None:
    """Declarations refused before parsing, found by a scan of the prolog (cheap, encoding-aware).

    Refusing before the parse matters for parameter entities, which libxml2 reads while parsing.
    """
    prolog = _decoded_prolog(data)
    root_start = _ROOT_START.search(prolog)
    if root_start is not None:
        # Every declaration starts with "<!" before any "<name": cutting here never hides the first one.
        prolog = prolog[: root_start.start()]
    if b"<!" not in prolog:
        return None
    if _ENTITY_DECL.search(prolog):
        return XmlProblem(RULE_ENTITY, "the document declares XML entities (XXE / entity expansion)")
    if _DOCTYPE_EXTERNAL.search(prolog):
        return XmlProblem(RULE_EXTERNAL_DTD, "the document refers to an external DTD")
    return None


def _docinfo_problem(tree: etree._ElementTree) -> XmlProblem | None:
    """The same checks on what the parser saw (covers encodings the byte scan does not read)."""
    info: Any = tree.docinfo  # lxml-stubs lack most DocInfo/DTD members
    dtd = info.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        return XmlProblem(RULE_ENTITY, "the document declares XML entities (XXE / entity expansion)")
    if info.system_url or info.public_id:
        return XmlProblem(RULE_EXTERNAL_DTD, "the document refers to an external DTD")
    return None


def _short(message: str) -> str:
    message = " ".join(message.split())
    return message if len(message) <= _MESSAGE_MAX else message[: _MESSAGE_MAX - 1] + "…"


def _needs_huge(exc: etree.XMLSyntaxError) -> bool:
    """libxml2 refused a text node or buffer over 10 MB (not the depth): XML_PARSE_HUGE would read it."""
    message = exc.msg or ""
    return "XML_PARSE_HUGE" in message and "Excessive depth" not in message


def _syntax_problem(exc: etree.XMLSyntaxError) -> XmlProblem:
    line, column = (exc.position if exc.position else (exc.lineno, None))
    message = exc.msg or "not well-formed"
    log: Any = exc.error_log
    type_name = getattr(log.last_error, "type_name", "") if log else ""
    if type_name == "ERR_RESOURCE_LIMIT" or "Excessive depth" in message or "XML_PARSE_HUGE" in message:
        return XmlProblem(RULE_LIMIT, _short(f"parser limit reached: {message}"), line, column)
    if "Entity" in message and ("not defined" in message or "loop" in message):
        return XmlProblem(RULE_ENTITY, _short(message), line, column)
    return XmlProblem(RULE_NOT_WELL_FORMED, _short(message), line, column)


def _depth_over(tree: etree._ElementTree, max_depth: int) -> bool:
    depth = 0
    for event, _ in etree.iterwalk(tree, events=("start", "end")):
        depth += 1 if event == "start" else -1
        if depth > max_depth:
            return True
    return False


def parse_xml(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> SafeParseResult:
    """Parse untrusted XML bytes; never raises for bad input, never fetches or expands anything."""
    if len(data) > max_bytes:
        return SafeParseResult(
            None, XmlProblem(RULE_LIMIT, "the document is over the size limit",
                             evidence=f"{len(data)} bytes, limit {max_bytes}")
        )
    if not data or data.isspace():  # (strip() would copy the whole document)
        return SafeParseResult(None, XmlProblem(RULE_NOT_WELL_FORMED, "the document is empty"))
    problem = _prolog_problem(data)
    if problem is not None:
        return SafeParseResult(None, problem)
    huge = False
    try:
        try:
            tree = etree.ElementTree(etree.fromstring(data, make_parser()))
        except etree.XMLSyntaxError as exc:
            if not _needs_huge(exc):
                raise
            # A level-1 CDA carrying an 8 MB PDF has a 11 MB base64 text node: legitimate. The input is
            # within max_bytes and declares no entity (checked above), so the huge parser is safe here.
            huge = True
            tree = etree.ElementTree(etree.fromstring(data, make_parser(huge=True)))
    except etree.XMLSyntaxError as exc:
        return SafeParseResult(None, _syntax_problem(exc))
    except (ValueError, MemoryError) as exc:  # e.g. an unsupported encoding declaration
        return SafeParseResult(None, XmlProblem(RULE_NOT_WELL_FORMED, _short(type(exc).__name__)))
    problem = _docinfo_problem(tree)
    if problem is not None:
        return SafeParseResult(None, problem)
    # The huge parser allows 2048 levels: our limit is then checked by a walk (only on this rare path).
    if (huge or max_depth < LIBXML2_MAX_DEPTH) and _depth_over(tree, max_depth):
        return SafeParseResult(
            None, XmlProblem(RULE_LIMIT, "the elements are nested too deeply", evidence=f"over {max_depth} levels")
        )
    info: Any = tree.docinfo
    return SafeParseResult(tree, None, doctype=bool(info.doctype))


def looks_like_xml(head: bytes) -> bool:
    """Whether the first bytes look like an XML document (BOM, declaration or a tag)."""
    text = _decoded_prolog(head[:4096]).lstrip(b"\xef\xbb\xbf \t\r\n")
    return text.startswith(b"<")


def local_name(tag: object) -> str:
    """An element's or attribute's name without its namespace (``{ns}text`` -> ``text``); "" for the tag of
    a comment or processing instruction (not a string)."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "RULES",
    "SafeParseResult",
    "XmlProblem",
    "local_name",
    "looks_like_xml",
    "make_parser",
    "parse_xml",
]

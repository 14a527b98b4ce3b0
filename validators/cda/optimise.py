"""Make a compiled Schematron (ISO skeleton ``iso_svrl_for_xslt2``) fast without changing what it reports.

The skeleton runs each pattern as its own mode and, for every pattern, walks the whole document twice:
once in the default mode (``<xsl:apply-templates/>`` inside ``svrl:active-pattern``, which outputs
nothing: the only default-mode template discards text) and once in the pattern's mode, testing every
element against the pattern's rules. IHE has 237 patterns, so a 10 000-element document costs millions
of template dispatches although a handful of rules fire.

Two rewrites, each applied only where its preconditions are checked (otherwise the part is left as is):

1. the empty default-mode walk is removed;
2. a pattern's walk ``apply-templates select="/" mode="M"`` becomes a selection of the nodes its rules
   match, in document order, and the rules stop recursing into children. XSLT 2.0 defines "node N
   matches pattern P" as "N is in ``root(N)//(P)``" (``P`` itself for a pattern starting with ``/``), so
   the union of those expressions, kept to the nodes the walk visits (the document node, its children and
   every element), selects exactly the nodes that fired a rule, each still handled by its
   highest-priority rule, in the walk's (document) order. Rules of the form
   ``*[cda:templateId/@root = 'X' ...]`` (most of IHE and the CI-SIS models) are looked up by an
   ``xsl:key`` on templateId instead of a scan, with the original predicate kept as a filter.

The SVRL output is unchanged; ``tests/test_cda_optimise.py`` compares it on every ANS example.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise

from lxml import etree

from validators.safexml import parse_xml

XSL_NS = "http://www.w3.org/1999/XSL/Transform"
SVRL_NS = "http://purl.oclc.org/dsdl/svrl"
HL7_NS = "urn:hl7-org:v3"
KEY_NAME = "proofcheck-template-id"
MAX_XSL_BYTES = 256 * 1024 * 1024
# Marks an optimised stylesheet (so that a store compiled before this step is optimised on load).
MARKER = "proofcheck-optimised-2"

_X = f"{{{XSL_NS}}}"
_TID_PREDICATE = re.compile(r"""^\s*([\w.-]+):templateId\s*/\s*@root\s*=\s*(?:'([^']*)'|"([^"]*)")\s*""")
_OR = re.compile(r"\bor\b")
# doc() and doc-available() re-read and re-parse their file on every transformation (a 3.4 MB terminology
# per document). Rewritten, they first look in DOCS_PARAM: a map from absolute path to a document the
# caller parsed once per process (validators/cda/ruleset.py); anything not in the map is read as before.
DOCS_PARAM = "proofcheck-docs"
_FN = "urn:proofcheck"
_DOC_CALL = re.compile(r"(?<![\w:.$}-])(doc|doc-available)\s*\(")
_MAP_CONTAINS = "Q{http://www.w3.org/2005/xpath-functions/map}contains"
_PATH_OF = "replace(string(resolve-uri($uri, static-base-uri())), '^file:/+', '/')"
_DOC_FUNCTIONS = (
    ("doc", f"if ({_MAP_CONTAINS}(${DOCS_PARAM}, $path)) then ${DOCS_PARAM}($path) else doc($uri)"),
    ("doc-available", f"{_MAP_CONTAINS}(${DOCS_PARAM}, $path) or doc-available($uri)"),
)


@dataclass
class OptimiseStats:
    modes: int = 0  # patterns whose walk became a selection
    skipped: int = 0  # patterns left as the skeleton wrote them
    keyed: int = 0  # rule branches looked up by templateId
    default_walks: int = 0  # empty default-mode walks removed
    doc_calls: int = 0  # doc()/doc-available() calls that first look in the pre-parsed documents


_LITERAL = -(2**31)  # not a depth: brackets never nest that deep, nor below zero in valid text


def _scan(text: str) -> Iterator[tuple[int, str, int]]:
    """(index, char, nesting depth) for each character; depth ``_LITERAL`` inside string literals.

    Brackets count at the depth outside them (a closing bracket reports the depth it returns to). A final
    ``(len(text), "", depth)`` tells the state at the end (``_LITERAL`` for an unterminated literal).
    """
    depth = 0
    quote = ""
    for index, char in enumerate(text):
        if quote or char in "'\"":
            quote = "" if char == quote else (quote or char)
            yield index, char, _LITERAL
        elif char in "([{":
            yield index, char, depth
            depth += 1
        elif char in ")]}":
            depth -= 1
            yield index, char, depth
        else:
            yield index, char, depth
    yield len(text), "", _LITERAL if quote else depth


def _balanced(text: str) -> bool:
    """No XPath comment, every bracket closed in order, every literal terminated."""
    states = [depth for _, char, depth in _scan(text) if depth != _LITERAL or not char]
    return "(:" not in text and states[-1] == 0 and min(states) >= 0


def split_top(expression: str, separator: str) -> list[str] | None:
    """Split at ``separator`` characters outside brackets, parentheses and string literals.

    None when the expression holds an XPath comment or is unbalanced (the caller then leaves it alone).
    """
    if not _balanced(expression):
        return None
    cuts = [index for index, char, depth in _scan(expression) if char == separator and depth == 0 and char]
    bounds = [-1, *cuts, len(expression)]
    return [expression[a + 1 : b] for a, b in pairwise(bounds)]


def _first_predicate(branch: str) -> tuple[str, str] | None:
    """For ``*[PRED]REST``: (PRED, REST); None for any other shape."""
    if not branch.startswith("*[") or not _balanced(branch):
        return None
    for index, char, depth in _scan(branch):
        if char == "]" and depth == 0:
            return branch[2:index], branch[index + 1 :]
    return None


def _has_top_level_or(text: str) -> bool:
    masked = "".join(char if depth == 0 and char not in "()[]{}" else " " for _, char, depth in _scan(text))
    return bool(_OR.search(masked))


def _keyed(branch: str, nsmap: dict[str | None, str]) -> str | None:
    """``*[p:templateId/@root = 'X' (and ...)]REST`` as a key lookup keeping the predicate; else None."""
    split = _first_predicate(branch)
    if split is None:
        return None
    predicate, rest = split
    match = _TID_PREDICATE.match(predicate)
    if match is None or nsmap.get(match.group(1)) != HL7_NS:
        return None
    remainder = predicate[match.end() :]
    if remainder:
        # Only "A and B" (no top-level "or") guarantees that every match has templateId/@root = X.
        if not remainder.startswith("and") or remainder[3:4] not in (" ", "\n", "\t", "("):
            return None
        if not _balanced(remainder) or _has_top_level_or(remainder):
            return None  # unbalanced, or "A and B or C"
    if rest and not rest.startswith("/"):
        return None
    value = match.group(2) if match.group(2) is not None else match.group(3)
    literal = f"'{value}'" if "'" not in value else f'"{value}"'
    return f"key('{KEY_NAME}', {literal})/parent::*[{predicate}]{rest}"


def selection(match: str, nsmap: dict[str | None, str], stats: OptimiseStats | None = None) -> str | None:
    """The expression selecting, from the document node, the nodes a match pattern matches."""
    branches = split_top(match, "|")
    if branches is None:
        return None
    out = []
    for raw in branches:
        branch = raw.strip()
        if not branch or re.search(r"\bunion\b", branch):
            return None
        keyed = _keyed(branch, nsmap)
        if keyed is not None:
            if stats is not None:
                stats.keyed += 1
            out.append(keyed)
        elif branch.startswith("/") or re.match(r"^(id|key|doc|element-with-id)\s*\(", branch):
            out.append(branch)
        else:
            out.append(f"//{branch}" if re.match(r"^[\w*@.-]", branch) else f"//({branch})")
    return " | ".join(out)


# The skeleton's recursion into children (two variants of the skeleton), and the nodes its walk from
# the document node visits: the walk only ever reaches the selected kinds of children.
_WALKS = {
    "*": "[self::* or not(parent::*)]",
    "*|comment()|processing-instruction()": (
        "[self::* or self::comment() or self::processing-instruction() or not(parent::node())]"
    ),
}


def _walk_kind(node: etree._Element, mode: str) -> str | None:
    """The select of ``<xsl:apply-templates select="..." mode="M"/>`` if it is a skeleton walk."""
    if node.tag != f"{_X}apply-templates" or node.get("mode") != mode or len(node):
        return None
    select = "".join((node.get("select") or "").split())
    return select if select in _WALKS else None


def _defaults(template: etree._Element, mode: str) -> bool:
    """The skeleton's two fallback templates of a pattern mode."""
    match = (template.get("match") or "").replace(" ", "")
    if match == "text()" and template.get("priority") == "-1":
        return len(template) == 0
    if match == "@*|node()" and template.get("priority") == "-2":
        return len(template) == 1 and _walk_kind(template[0], mode) is not None
    return False


def _optimise_mode(
    walk: etree._Element,
    templates: list[etree._Element],
    root_nsmap: dict[str | None, str],
    stats: OptimiseStats,
) -> bool:
    mode = walk.get("mode") or ""
    rules = [t for t in templates if not _defaults(t, mode)]
    kinds: set[str] = set()
    for template in templates:
        if len(template) == 1 and template not in rules:
            kinds.add(_walk_kind(template[0], mode) or "?")
    if len(kinds) > 1:
        return False
    if not rules:
        walk.getparent().remove(walk)  # type: ignore[union-attr]  # a pattern with no rule fires nothing
        return True
    selects = []
    for rule in rules:
        children = [c for c in rule if isinstance(c.tag, str)]
        kind = _walk_kind(children[-1], mode) if children else None
        if kind is None:
            return False
        kinds.add(kind)
        for node in rule.iter(f"{_X}apply-templates", f"{_X}next-match", f"{_X}apply-imports"):
            if node is not children[-1] and (node.get("mode") in (mode, "#current", None)):
                return False
        nsmap = dict(rule.nsmap)
        if any(root_nsmap.get(prefix) != uri for prefix, uri in nsmap.items()):
            return False
        expression = selection(rule.get("match") or "", nsmap, stats)
        if expression is None:
            return False
        selects.append(expression)
    if len(kinds) != 1:
        return False  # rules and fallbacks that walk different kinds of children: leave it alone
    for rule in rules:
        last = [c for c in rule if isinstance(c.tag, str)][-1]
        _remove_keeping_tail(last)
    # Only the nodes the walk visits (the document node and the kinds of children it descends into).
    walk.set("select", "(" + " | ".join(selects) + ")" + _WALKS[kinds.pop()])
    return True


def _remove_keeping_tail(node: etree._Element) -> None:
    parent = node.getparent()
    assert parent is not None
    previous = node.getprevious()
    tail = node.tail or ""
    if previous is not None:
        previous.tail = (previous.tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail
    parent.remove(node)


def optimise(xsl: bytes) -> tuple[bytes, OptimiseStats]:
    """The optimised stylesheet (unchanged bytes when its shape is not the skeleton's) and what changed."""
    stats = OptimiseStats()
    parsed = parse_xml(xsl, max_bytes=MAX_XSL_BYTES)
    if not parsed.ok:
        return xsl, stats
    stylesheet = parsed.root
    if stylesheet.tag not in (f"{_X}stylesheet", f"{_X}transform") or is_optimised(stylesheet):
        return xsl, stats
    if any(n.get("xpath-default-namespace") is not None for n in stylesheet.iter()):
        return xsl, stats
    top = [t for t in stylesheet if t.tag == f"{_X}template"]
    roots = [t for t in top if t.get("match") == "/" and t.get("mode") is None]
    if len(roots) != 1:
        return xsl, stats
    root = roots[0]
    by_mode: dict[str, list[etree._Element]] = {}
    for template in top:
        for mode in (template.get("mode") or "").split():
            by_mode.setdefault(mode, []).append(template)
    default_mode = [t for t in top if t.get("mode") is None and t is not root]
    if all((t.get("match") or "").strip() == "text()" and len(t) == 0 for t in default_mode):
        for pattern in root.iter(f"{{{SVRL_NS}}}active-pattern"):
            for child in list(pattern):
                if child.tag == f"{_X}apply-templates" and not child.attrib and len(child) == 0:
                    _remove_keeping_tail(child)
                    stats.default_walks += 1
    if "#all" in by_mode:
        return _serialise(parsed.tree, stylesheet, stats, xsl), stats
    root_nsmap = dict(root.nsmap)
    for walk in list(root.iter(f"{_X}apply-templates")):
        mode = walk.get("mode") or ""
        if (walk.get("select") or "").strip() != "/" or not mode or len(walk):
            continue
        if _optimise_mode(walk, by_mode.get(mode, []), root_nsmap, stats):
            stats.modes += 1
        else:
            stats.skipped += 1
    _route_documents(stylesheet, stats)
    if stats.keyed:
        key = etree.Element(f"{_X}key")
        key.set("name", KEY_NAME)
        key.set("match", f"Q{{{HL7_NS}}}templateId")  # an EQName: no prefix to declare
        key.set("use", "@root")
        key.tail = "\n"
        stylesheet.insert(0, key)
    return _serialise(parsed.tree, stylesheet, stats, xsl), stats


def _route_documents(stylesheet: etree._Element, stats: OptimiseStats) -> None:
    """Rewrite doc()/doc-available() calls to look in DOCS_PARAM first (see above)."""
    for node in stylesheet.iter(f"{_X}*"):
        for name in ("select", "test"):
            value = node.get(name)
            if value and _DOC_CALL.search(value):
                rewritten, count = _DOC_CALL.subn(lambda m: f"Q{{{_FN}}}{m.group(1)}(", value)
                node.set(name, rewritten)
                stats.doc_calls += count
    if not stats.doc_calls:
        return
    param = etree.Element(f"{_X}param", name=DOCS_PARAM, select="map{}")
    param.tail = "\n"
    declarations = [param]
    for name, body in _DOC_FUNCTIONS:
        function = etree.Element(f"{_X}function", name=f"Q{{{_FN}}}{name}")
        etree.SubElement(function, f"{_X}param", name="uri")
        etree.SubElement(function, f"{_X}variable", name="path", select=_PATH_OF)
        etree.SubElement(function, f"{_X}sequence", select=body)
        function.tail = "\n"
        declarations.append(function)
    for declaration in reversed(declarations):
        stylesheet.insert(0, declaration)


def is_optimised(stylesheet: etree._Element) -> bool:
    previous = stylesheet.getprevious()
    return isinstance(previous, etree._Comment) and previous.text == MARKER


def _serialise(tree: etree._ElementTree | None, stylesheet: etree._Element, stats: OptimiseStats, xsl: bytes) -> bytes:
    if not (stats.modes or stats.default_walks or stats.doc_calls) or tree is None:
        return xsl
    # Before the root element, so that a look at the file's first bytes finds it.
    stylesheet.addprevious(etree.Comment(MARKER))
    return bytes(etree.tostring(tree, xml_declaration=True, encoding="UTF-8"))

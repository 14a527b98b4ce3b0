"""Compile ISO Schematron (queryBinding xslt2) to XSLT with saxonche, by the ANS's own pipeline.

``iso_dsdl_include.xsl`` -> ``iso_abstract_expand.xsl`` -> [our message step] -> ``iso_svrl_for_xslt2.xsl``,
the three stylesheets taken from the synced tree's ``schematrons/moteur/``. The compiled ``.xsl`` is
written next to its ``.sch`` because value-set paths inside the rules are relative to it.

Our step between expansion and compilation replaces every ``value-of`` inside an assertion's message
by the expression it would evaluate (string literals are kept): SVRL messages then describe the rule and
never copy document content (names, codes, free text) into a report.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

from validators.cda import optimise
from validators.safexml import parse_xml

SCH_NS = "http://purl.oclc.org/dsdl/schematron"
PIPELINE = ("iso_dsdl_include.xsl", "iso_abstract_expand.xsl", "iso_svrl_for_xslt2.xsl")
_LITERAL = re.compile(r"""^\s*(?:'[^']*'|"[^"]*")\s*$""")
_lock = threading.Lock()


class SchematronCompileError(RuntimeError):
    """A schematron that the pipeline could not turn into XSLT (message: the first line of Saxon's)."""


@cache
def processor() -> Any:
    """The process's one SaxonC processor (it hosts the Java runtime; creating several is wasteful)."""
    from saxonche import PySaxonProcessor

    return PySaxonProcessor(license=False)


def saxon_message(exc: BaseException) -> str:
    """First meaningful line of a Saxon error, without paths of the machine."""
    for line in str(exc).splitlines():
        line = line.strip()
        if line:
            return re.sub(r"file:/\S*/(tree/)?", "", line)[:240]
    return type(exc).__name__


def neutralise_messages(concrete_schema: bytes) -> bytes:
    """Replace non-literal ``value-of`` in assert/report messages by the expression text."""
    parsed = parse_xml(concrete_schema, max_bytes=256 * 1024 * 1024)
    if not parsed.ok or parsed.tree is None:
        raise SchematronCompileError("the expanded schematron is not readable XML")
    for tag in ("assert", "report"):
        for assertion in parsed.root.iter(f"{{{SCH_NS}}}{tag}"):
            for value_of in list(assertion.iter(f"{{{SCH_NS}}}value-of")):
                select = value_of.get("select") or ""
                if _LITERAL.match(select):
                    continue
                parent = value_of.getparent()
                if parent is None:
                    continue
                placeholder = "{" + " ".join(select.split()) + "}"
                _replace_with_text(value_of, placeholder)
    return bytes(etree.tostring(parsed.tree, xml_declaration=True, encoding="UTF-8"))


def _replace_with_text(node: etree._Element, text: str) -> None:
    parent = node.getparent()
    assert parent is not None
    tail = node.tail or ""
    previous = node.getprevious()
    if previous is not None:
        previous.tail = (previous.tail or "") + text + tail
    else:
        parent.text = (parent.text or "") + text + tail
    parent.remove(node)


@dataclass(frozen=True)
class CompileOutcome:
    xsl: Path
    seconds: float


class SchematronCompiler:
    """The three pipeline stylesheets compiled once, applied to any number of schematrons."""

    def __init__(self, moteur: Path) -> None:
        missing = [name for name in PIPELINE if not (moteur / name).is_file()]
        if missing:
            raise SchematronCompileError(f"the ruleset has no schematron engine ({', '.join(missing)})")
        compiler = processor().new_xslt30_processor()
        with _lock:
            self._steps = [compiler.compile_stylesheet(stylesheet_file=str(moteur / n)) for n in PIPELINE]

    def compile(self, sch: Path, target: Path | None = None, *, optimised: bool = True) -> CompileOutcome:
        """Compile ``sch`` to ``target`` (default ``sch.with_suffix('.xsl')``); raises SchematronCompileError.

        ``optimised=False`` keeps the skeleton's stylesheet as is (tests compare both).
        """
        started = time.monotonic()
        proc = processor()
        target = target or sch.with_suffix(".xsl")
        try:
            with _lock:
                document = proc.parse_xml(xml_file_name=str(sch))
                included = self._steps[0].transform_to_value(xdm_node=document).head
                expanded = self._steps[1].transform_to_string(xdm_node=included)
                neutral = neutralise_messages(expanded.encode("utf-8"))
                concrete = proc.parse_xml(xml_text=neutral.decode("utf-8"))
                self._steps[2].transform_to_file(xdm_node=concrete, output_file=str(target))
        except SchematronCompileError:
            raise
        except Exception as exc:  # saxonche raises PySaxonApiError and friends
            target.unlink(missing_ok=True)
            raise SchematronCompileError(saxon_message(exc)) from None
        if not target.is_file() or target.stat().st_size == 0:
            raise SchematronCompileError("the compiler produced no stylesheet")
        if optimised:
            optimise_file(target)
        return CompileOutcome(target, time.monotonic() - started)


def optimise_file(xsl: Path) -> bool:
    """Rewrite a compiled schematron in place with ``optimise`` (same SVRL, a fraction of the time).

    False when the file is left as it is (already optimised, not the skeleton's shape, or read-only).
    """
    try:
        with xsl.open("rb") as stream:
            if optimise.MARKER.encode() in stream.read(4096):
                return False
        data, stats = optimise.optimise(xsl.read_bytes())
        if not (stats.modes or stats.default_walks or stats.doc_calls):
            return False
        temp = xsl.with_name(xsl.name + ".tmp")
        temp.write_bytes(data)
        temp.replace(xsl)  # atomic: a concurrent loader reads the old or the new stylesheet, never half
    except OSError:
        return False
    return True

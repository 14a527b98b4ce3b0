"""Text out of Office documents: OOXML (docx, xlsx, pptx and their macro/template variants), ODF
(odt, ods, odp, odg) and, as raw strings, the legacy binary formats (doc, xls, ppt).

A word-processing document, a spreadsheet or a slide deck holds text like any other proof: an
instructor opening it sees the NIR a publisher typed or pasted into it. OOXML and ODF are zip files of
XML parts: every part that holds text (body, headers and footers, notes, comments, shared strings and
cells, slides, document properties) is read through the project's safe XML parser, each one a
segment located by its part name. Words a writer split across runs (``<w:r>``) are joined, paragraphs
and cells end a record. Numbers stored as spreadsheet values (``1.85057800604822E+14``) are written
back as the integer they are. Pictures and embedded documents inside become child files, so that OCR,
the antivirus and every other check read them; what is over a limit is named as not inspected.

The legacy binary formats keep text in OLE streams, in records this check does not decode: it reads
the printable runs of every stream (cp1252 and UTF-16LE) and says that the reading is partial.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import Any

from validators.model import Location
from validators.pii.segments import Anchor, Extraction, TextSegment
from validators.safexml import local_name, parse_xml

CheckTime = Callable[[], None]

MAX_MEMBERS = 10_000
MAX_PART_BYTES = 64 * 1024 * 1024  # one XML part, decompressed
MAX_TOTAL_BYTES = 256 * 1024 * 1024  # all parts read, decompressed
MAX_CHILDREN = 64  # pictures and embedded documents handed to the other checks
MAX_CHILD_BYTES = 64 * 1024 * 1024
MAX_OLE_STREAM_BYTES = 64 * 1024 * 1024
MIN_RUN = 4  # printable characters in a row that make a string in a legacy binary stream

OOXML_EXTENSIONS = frozenset({"docx", "docm", "dotx", "dotm", "xlsx", "xlsm", "xltx", "xltm", "xlam",
                              "pptx", "pptm", "potx", "potm", "ppsx", "ppsm", "thmx"})
ODF_EXTENSIONS = frozenset({"odt", "ott", "ods", "ots", "odp", "otp", "odg", "otg", "odf", "odc", "odb"})
LEGACY_EXTENSIONS = frozenset({"doc", "dot", "xls", "xlt", "xla", "ppt", "pot", "pps"})
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

# Elements that end a record (paragraph, cell, row, list item, shared string): a number does not run
# across them, and words in one do not describe a number in the next.
_BLOCKS = frozenset({"p", "h", "tc", "tr", "c", "row", "si", "list-item", "table-cell", "table-row",
                     "comment", "annotation", "note", "footnote", "endnote", "txbxContent", "sp"})
_TABS = frozenset({"tab", "s"})  # w:tab, text:tab, text:s (spaces)
_BREAKS = frozenset({"br", "cr", "line-break"})
# Parts of an OOXML package that are layout, not content: skipped without a word (styles, themes...).
_OOXML_NO_TEXT = re.compile(
    r"(^|/)(styles|stylesWithEffects|fontTable|webSettings|settings|numbering|theme\d*|tableStyles|presProps|"
    r"viewProps|calcChain|vbaData|customXml/itemProps\d*)\.xml$|\.rels$|^\[Content_Types\]\.xml$",
    re.IGNORECASE,
)
# Pictures and embedded documents: child files for the other checks (OCR reads a pasted screenshot).
_MEDIA = re.compile(r"(^|/)(media|embeddings|Pictures)/", re.IGNORECASE)
_TEXT_PART = re.compile(r"\.(xml|vml)$", re.IGNORECASE)
_SCIENTIFIC = re.compile(r"^\s*-?\d(?:\.\d+)?[eE]\+?\d{1,2}\s*$")


def is_office_zip(extension: str, head: bytes) -> bool:
    return head.startswith(b"PK") and (extension in OOXML_EXTENSIONS or extension in ODF_EXTENSIONS)


def is_legacy_office(extension: str, head: bytes) -> bool:
    return head.startswith(OLE_MAGIC) and extension in LEGACY_EXTENSIONS


def _number_text(value: str) -> str:
    """A spreadsheet value as a person reads it: ``1.85057800604822E+14`` -> ``185057800604822``."""
    if _SCIENTIFIC.match(value):
        try:
            number = float(value)
        except ValueError:
            return value
        if number.is_integer() and abs(number) < 1e18:
            return str(int(number))
    return value


def _part_text(root: Any, check_time: CheckTime) -> Iterator[tuple[str, int | None]]:
    """(piece, source line) of an Office XML part in reading order, with record ends and tabs."""
    stack: list[tuple[Any, bool]] = [(root, False)]
    count = 0
    while stack:
        node, closing = stack.pop()
        count += 1
        if count % 2000 == 0:
            check_time()
        name = local_name(node.tag)
        if closing:
            if name in _BLOCKS:
                yield "\n", None
            if node.tail and node.getparent() is not None and local_name(node.getparent().tag) != "sheetData":
                yield node.tail, node.sourceline
            continue
        if not isinstance(node.tag, str):  # comments, processing instructions
            if node.tail:
                yield node.tail, node.sourceline
            continue
        if name in _TABS:
            yield "\t", None
        elif name in _BREAKS:
            yield "\n", None
        # ODF cells carry the value they display in an attribute (office:value), OOXML in <v>.
        for key, value in node.attrib.items():
            if local_name(key) in ("value", "string-value", "date-value", "time-value"):
                yield _number_text(value) + "\t", node.sourceline
        if node.text:  # tracked deletions (w:delText) too: they are in the file, and Word still shows them
            text = _number_text(node.text) if name == "v" else node.text
            yield text, node.sourceline
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(node))


def _segment(part: str, root: Any, check_time: CheckTime) -> TextSegment:
    pieces: list[str] = []
    anchors: list[Anchor] = []
    length = 0
    last_line: int | None = -1
    for piece, line in _part_text(root, check_time):
        if line is not None and line != last_line:
            anchors.append(Anchor(length, Location(entry=part, line=line)))
            last_line = line
        pieces.append(piece)
        length += len(piece)
    if not anchors or anchors[0].offset != 0:
        anchors.insert(0, Anchor(0, Location(entry=part)))
    return TextSegment("".join(pieces), Location(entry=part), anchors, record_breaks="\n")


def _properties(root: Any) -> str:
    """Document properties (author, title, company, custom fields): one field per line."""
    lines = []
    for node in root.iter():
        if isinstance(node.tag, str) and node.text and node.text.strip():
            lines.append(f"{local_name(node.tag)}: {node.text.strip()}")
        for key, value in (node.attrib.items() if isinstance(node.tag, str) else ()):
            if local_name(key) == "name":
                lines.append(f"{local_name(node.tag)} {value}")
    return "\n".join(lines) + "\n"


def _is_properties(part: str) -> bool:
    lower = part.lower()
    return lower.startswith("docprops/") or lower == "meta.xml"


def read_office_zip(data: bytes, check_time: CheckTime) -> Extraction:
    """Text of every content part of an OOXML or ODF package, pictures and embedded files as children."""
    ext = Extraction()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        ext.not_inspected.append(f"the Office document could not be opened as a zip package ({type(exc).__name__})")
        return ext
    if len(members) > MAX_MEMBERS:
        ext.not_inspected.append(f"parts beyond the first {MAX_MEMBERS} of {len(members)}")
        members = members[:MAX_MEMBERS]
    total = 0
    skipped_children = 0
    for info in members:
        check_time()
        part = info.filename
        if info.is_dir() or part == "mimetype":
            continue
        if info.flag_bits & 0x1:
            ext.not_inspected.append(f"part {_shown(part)} (encrypted)")
            continue
        media = bool(_MEDIA.search(part))
        if not media and (not _TEXT_PART.search(part) or _OOXML_NO_TEXT.search(part)):
            continue  # layout, fonts, macro storage (the SSI checks read those), thumbnails: no text of their own
        limit = MAX_CHILD_BYTES if media else MAX_PART_BYTES
        if info.file_size > limit or total + info.file_size > MAX_TOTAL_BYTES:
            ext.not_inspected.append(f"part {_shown(part)} ({info.file_size} bytes, over the size limit)")
            continue
        try:
            with archive.open(info) as stream:
                body = stream.read(limit + 1)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as exc:
            ext.not_inspected.append(f"part {_shown(part)} could not be read ({type(exc).__name__})")
            continue
        if len(body) > limit:  # the declared size lied
            ext.not_inspected.append(f"part {_shown(part)} (over the size limit once decompressed)")
            continue
        total += len(body)
        if media:
            if not body:
                continue
            if len(ext.children) >= MAX_CHILDREN:
                skipped_children += 1
                continue
            ext.children.append((part, body))
            continue
        parsed = parse_xml(body, max_bytes=MAX_PART_BYTES)
        if not parsed.ok or parsed.tree is None:
            # Not parseable: its raw text is still scanned, never skipped.
            text = body.decode("utf-8", "replace")
            ext.segments.append(TextSegment(text, Location(entry=part), record_breaks="\n"))
            continue
        root = parsed.tree.getroot()
        if _is_properties(part):
            ext.segments.append(TextSegment(_properties(root), Location(entry=part), count_lines=False, fields=True))
        else:
            ext.segments.append(_segment(part, root, check_time))
    if skipped_children:
        ext.not_inspected.append(f"{skipped_children} picture(s) or embedded file(s) beyond the first {MAX_CHILDREN}")
    return ext


def _shown(part: str) -> str:
    name = PurePosixPath(part).name or part
    return repr(name[:80])


_CP1252_RUN = re.compile(rb"[\x20-\x7e\x80-\xff\t]{%d,}" % MIN_RUN)
_UTF16_RUN = re.compile(rb"(?:[\x20-\x7e\xa0-\xff\t]\x00){%d,}" % MIN_RUN)


def read_legacy_office(data: bytes, check_time: CheckTime) -> Extraction:
    """Printable runs of every stream of an OLE compound file (Word 97-2003, Excel, PowerPoint)."""
    import olefile

    ext = Extraction()
    try:
        ole = olefile.OleFileIO(io.BytesIO(data))
    except Exception as exc:  # olefile raises many types on hostile input
        ext.not_inspected.append(f"the legacy Office file could not be opened ({type(exc).__name__})")
        return ext
    try:
        streams = ole.listdir(streams=True, storages=False)
        for path in streams[:MAX_MEMBERS]:
            check_time()
            name = "/".join(path)
            try:
                size = ole.get_size(name)
                if size > MAX_OLE_STREAM_BYTES:
                    ext.not_inspected.append(f"stream {name[:80]!r} ({size} bytes, over the size limit)")
                    continue
                raw = ole.openstream(name).read(MAX_OLE_STREAM_BYTES)
            except Exception as exc:
                ext.not_inspected.append(f"stream {name[:80]!r} could not be read ({type(exc).__name__})")
                continue
            lines = [m.group().decode("cp1252", "replace") for m in _CP1252_RUN.finditer(raw)]
            lines += [m.group().decode("utf-16-le", "replace") for m in _UTF16_RUN.finditer(raw)]
            if lines:
                ext.segments.append(TextSegment("\n".join(lines) + "\n", Location(entry=name), count_lines=False))
    finally:
        ole.close()
    ext.not_inspected.append(
        "legacy binary Office format: its text was read as raw strings (records not decoded); "
        "a number cut across formatting runs may be missed"
    )
    return ext


__all__ = ["is_legacy_office", "is_office_zip", "read_legacy_office", "read_office_zip"]

"""Text out of files that hold it: plain text/CSV/logs, XML/CDA, PDF text layer and metadata, e-mail.

Every extractor is bounded (bytes, pages, parts, time) and returns what it could not cover in
``Extraction.not_inspected`` so that the verdict can say it. XML goes through the project's safe
parser (no network, no DTD, no entities); PDFs through pypdf (no rendering, no JavaScript).
"""

from __future__ import annotations

import codecs
import email.parser
import email.policy
import itertools
from collections.abc import Callable
from typing import Any

from validators.model import NO_LOCATION, Location
from validators.pii import pdfimages, pdfnotes, pdfrevisions
from validators.pii.htmltext import html_extraction, html_text, html_text_lines
from validators.pii.segments import Anchor, Extraction, TextSegment
from validators.pii.tables import ColumnLabel, xml_cell_words
from validators.safexml import local_name

MAX_TEXT_CHARS = 256 * 1024 * 1024
MAX_PDF_PAGES = 500
MAX_EML_HEADER_BYTES = 4 * 1024 * 1024
# Past this much content on one page, pypdf's per-operator extraction takes minutes: raw strings instead.
MAX_LAYOUT_BYTES = 1024 * 1024
MAX_B64_SKIP = "B64"

CheckTime = Callable[[], None]


# UTF-32's byte order marks start like UTF-16's: they are tried first.
_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
              (codecs.BOM_UTF16_BE, "utf-16"))


def wide_codec(data: bytes) -> str | None:
    """The codec of UTF-16 or UTF-32 text: by its byte order mark, else (none written) by where the zero
    bytes of ASCII text fall; None for any other text."""
    for bom, codec in _WIDE_BOMS:
        if data.startswith(bom):
            return codec
    sample = data[:4096]
    if len(sample) < 16 or sample.count(0) < len(sample) // 3:
        return None
    quarter = len(sample) // 4
    zeros = [sample[i::4].count(0) for i in range(4)]
    if zeros[1] > 0.8 * quarter and zeros[2] > 0.8 * quarter and zeros[3] > 0.8 * quarter and zeros[0] < quarter // 2:
        return "utf-32-le"
    if zeros[0] > 0.8 * quarter and zeros[1] > 0.8 * quarter and zeros[2] > 0.8 * quarter and zeros[3] < quarter // 2:
        return "utf-32-be"
    odd, even = sample[1::2].count(0), sample[0::2].count(0)
    half = len(sample) // 2
    if odd > 0.6 * half and even < 0.1 * half:
        return "utf-16-le"
    if even > 0.6 * half and odd < 0.1 * half:
        return "utf-16-be"
    return None


def decode_text(data: bytes) -> str:
    """Bytes to text: BOMs honoured (UTF-8, UTF-16, UTF-32), UTF-16/32 without one recognised, UTF-8 first,
    then Windows-1252, then Latin-1 (never fails)."""
    if data.startswith(codecs.BOM_UTF8):
        return data.decode("utf-8-sig", errors="replace")
    wide = wide_codec(data)
    if wide is not None:
        return data[: len(data) - len(data) % (4 if "32" in wide else 2)].decode(wide, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def plain_text(data: bytes, base: Location = NO_LOCATION) -> Extraction:
    text = decode_text(data)
    out = Extraction()
    if len(text) > MAX_TEXT_CHARS:
        out.not_inspected.append(f"text beyond the first {MAX_TEXT_CHARS} characters")
        text = text[:MAX_TEXT_CHARS]
    out.segments.append(TextSegment(text, base, delimited=True))
    return out


def html_source(data: bytes, base: Location = NO_LOCATION) -> Extraction:
    """HTML as two segments: the text between tags and the tags themselves (``htmltext.py``)."""
    return html_extraction(decode_text(data), base)


# ---------------------------------------------------------------- XML


def xpath_of(node: Any) -> str:
    """A readable XPath with local names (``/ClinicalDocument/recordTarget/patientRole/id[2]``)."""
    steps: list[str] = []
    while node is not None:
        parent = node.getparent()
        if not isinstance(node.tag, str):
            steps.append("comment()")
        else:
            name = local_name(node.tag)
            same = [s for s in parent if s.tag == node.tag] if parent is not None else [node]
            steps.append(name if len(same) == 1 else f"{name}[{same.index(node) + 1}]")
        node = parent
    return "/" + "/".join(reversed(steps))


def xml_text(data: bytes, base: Location, check_time: CheckTime) -> Extraction | None:
    """Element text, tails, comments, processing instructions and attributes of an XML document (the
    prolog's and epilogue's too); None if it cannot be parsed.

    Text nodes and attributes go to two segments: text nodes joined so that a number cut across
    table cells is still seen; each element's attributes on one line, so that an INS OID in ``root``
    is read together with the ``extension`` beside it.
    """
    from validators.safexml import parse_xml

    parsed = parse_xml(data)
    if not parsed.ok or parsed.tree is None:
        return None
    tree = parsed.tree
    texts: list[str] = []
    text_anchors: list[Anchor] = []
    column_labels: list[ColumnLabel] = []
    attrs: list[str] = []
    attr_anchors: list[Anchor] = []
    text_len = attr_len = 0
    # Narrative table cells under a header that names a NIR (``tables.py``).
    under_header = xml_cell_words(tree.getroot())
    node: Any
    root = tree.getroot()
    # Comments and processing instructions before and after the root element are read too.
    nodes = itertools.chain(reversed(list(root.itersiblings(preceding=True))), root.iter(), root.itersiblings())
    for count, node in enumerate(nodes):
        if count % 2000 == 0:
            check_time()
        parent = node.getparent()
        is_element = isinstance(node.tag, str)
        if is_element and node.attrib:
            line = "<" + " ".join(f'{local_name(k)}="{v}"' for k, v in node.attrib.items()) + ">\n"
            attr_anchors.append(Anchor(attr_len, Location(line=node.sourceline), node))
            attrs.append(line)
            attr_len += len(line)
        skip_text = is_element and local_name(node.tag) == "text" and node.get("representation") == MAX_B64_SKIP
        for owner, piece in ((node, node.text if not skip_text else None), (parent, node.tail)):
            if not piece or owner is None or (owner is parent and not piece.strip()):
                continue
            text_anchors.append(Anchor(text_len, Location(line=node.sourceline), owner))
            words = under_header.get(owner)
            if words is not None:
                column_labels.append(ColumnLabel(text_len, text_len + len(piece), words))
            texts.append(piece + "\n")
            text_len += len(piece) + 1

    out = Extraction()
    out.segments.append(TextSegment("".join(texts), base, text_anchors, xpath_of=xpath_of,
                                    column_labels=column_labels, record_breaks=""))
    out.segments.append(TextSegment("".join(attrs), base, attr_anchors, xpath_of=xpath_of))
    return out


# ---------------------------------------------------------------- PDF


def pdf_text(data: bytes, base: Location, check_time: CheckTime) -> Extraction:
    """Text layer of each page (bounded), document metadata and form field values."""
    import io

    from pypdf import PdfReader

    out = Extraction()
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            out.not_inspected.append("the PDF is encrypted")
            return out
    except Exception as exc:  # a PDF pypdf cannot open: say it was not inspected
        out.not_inspected.append(f"the PDF could not be parsed ({type(exc).__name__})")
        return out
    try:
        meta = pdfnotes.info_text(reader)
        fields = reader.get_fields() or {}
        values = "\n".join(f"{name}: {field.get('/V', '')}" for name, field in fields.items())
    except Exception as exc:
        meta, values = "", ""
        out.not_inspected.append(f"PDF metadata or form fields ({type(exc).__name__})")
    out.segments.append(TextSegment(meta, Location(entry="PDF metadata"), fields=True))
    if values:
        out.segments.append(TextSegment(values, Location(entry="PDF form fields"), fields=True))
    xmp, problem = _xmp_text(reader)
    if xmp:
        out.segments.append(TextSegment(xmp, Location(entry="PDF XMP metadata"), fields=True))
    if problem:
        out.not_inspected.append(problem)
    try:
        pages = len(reader.pages)  # resolves the page tree: a broken or looping one raises here
    except Exception as exc:
        out.not_inspected.append(f"the PDF's pages could not be listed ({type(exc).__name__})")
        return out
    textless: list[int] = []
    images = pdfimages.ImageBudget()
    for index in range(min(pages, MAX_PDF_PAGES)):
        check_time()
        try:
            page = reader.pages[index]
            text = _page_text(page, index + 1, out)
        except Exception as exc:
            out.not_inspected.append(f"page {index + 1} could not be read ({type(exc).__name__})")
            continue
        # The page's pictures (a report's screenshots) go to OCR as files of their own.
        if not pdfimages.page_images(page, index + 1, images, out) and not text.strip() and _has_images(page):
            textless.append(index + 1)
        out.segments.append(TextSegment(text, Location(page=index + 1)))
    pdfimages.said(images, out)
    if pages > MAX_PDF_PAGES:
        out.not_inspected.append(f"pages {MAX_PDF_PAGES + 1} to {pages} (page limit)")
    pdfnotes.read_annotations(reader, min(pages, MAX_PDF_PAGES), check_time, out)
    pdfnotes.read_bookmarks(reader, out)
    pdfrevisions.read_earlier(data, [segment.text for segment in out.segments], check_time, out)
    if textless:
        shown = ", ".join(str(p) for p in textless[:10]) + (" ..." if len(textless) > 10 else "")
        out.not_inspected.append(f"page(s) {shown} hold images but no text layer, and not all of them were OCR'd")
    return out


MAX_XMP_BYTES = 4 * 1024 * 1024


def _xmp_text(reader: Any) -> tuple[str, str | None]:
    """The text of the XMP metadata packet (tags read as line breaks), and what could not be read.

    Read from the catalogue's ``/Metadata`` stream as text, never parsed as XML (no entities, no DTD);
    a packet larger than ``MAX_XMP_BYTES`` once decoded is reported as not inspected.
    """
    try:
        stream = reader.trailer["/Root"].get_object().get("/Metadata")
        if stream is None:
            return "", None
        data = stream.get_object().get_data()
    except Exception as exc:
        return "", f"the PDF's XMP metadata ({type(exc).__name__})"
    if len(data) > MAX_XMP_BYTES:
        return "", f"the PDF's XMP metadata ({len(data)} bytes, over the size limit)"
    return html_text_lines(decode_text(data)), None


def _page_text(page: Any, number: int, out: Extraction) -> str:
    """A page's text: pypdf's extraction, or for a huge content stream its raw strings (linear time)."""
    contents = page.get_contents()
    data = contents.get_data() if contents is not None else b""
    if len(data) <= MAX_LAYOUT_BYTES:
        return str(page.extract_text() or "")
    from validators.pii.pdfraw import strings_text

    out.not_inspected.append(
        f"the layout of page {number} ({len(data)} bytes of content, read from its raw strings: text in fonts "
        "with their own encoding is not decoded)"
    )
    return strings_text(data)


def _has_images(page: Any) -> bool:
    try:
        resources: Any = page.get("/Resources")
        if resources is None:
            return False
        xobjects: Any = resources.get_object().get("/XObject")
        if xobjects is None:
            return False
        xobjects = xobjects.get_object()
        return any(xobjects[name].get_object().get("/Subtype") == "/Image" for name in xobjects)
    except Exception:
        return True  # unknown: assume the page may show something unread


# ---------------------------------------------------------------- e-mail


def eml_headers(data: bytes, base: Location) -> Extraction:
    """The header fields of an e-mail source, decoded (its parts are read as children of the e-mail check)."""
    out = Extraction()
    message = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(data[:MAX_EML_HEADER_BYTES])
    headers = "\n".join(f"{name}: {_header(value)}" for name, value in message.items())
    out.segments.append(TextSegment(headers, Location(entry="e-mail headers"), fields=True))
    return out


def _header(value: Any) -> str:
    """A header decoded from RFC 2047 words (names and subjects are often encoded)."""
    from email.header import decode_header, make_header

    try:
        return str(make_header(decode_header(str(value))))
    except Exception:
        return str(value)


__all__ = ["decode_text", "eml_headers", "html_source", "html_text", "pdf_text", "plain_text", "xml_text"]

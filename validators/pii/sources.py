"""Which extractor reads a file: by its sniffed media type first, its extension second, its bytes last.

A type that cannot hold readable text (or that this check does not know) is left to the format check.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from validators.model import Location
from validators.pii import metatext, ocr, office, textsources, video
from validators.pii.segments import Extraction

CheckTime = Callable[[], None]
TimeLeft = Callable[[], float]


class Kind(StrEnum):
    TEXT = "text"
    HTML = "html"
    XML = "xml"
    PDF = "pdf"
    EML = "eml"
    IMAGE = "image"
    VIDEO = "video"
    OFFICE = "office"  # OOXML and ODF packages
    LEGACY_OFFICE = "legacy-office"  # Word/Excel/PowerPoint 97-2003 (OLE compound files)


_XML_EXTENSIONS = frozenset({"xml", "cda", "svg", "xsl", "xhtml"})
_HTML_EXTENSIONS = frozenset({"html", "htm"})
_IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp"})
_VIDEO_EXTENSIONS = frozenset({"mp4", "m4v", "mov", "avi", "mkv", "webm", "wmv", "mpg", "mpeg", "ogv", "flv"})
_NOT_TEXT_MEDIA = ("application/zip", "application/x-", "application/vnd.", "application/octet-stream")


def _looks_textual(head: bytes) -> bool:
    """Mostly printable bytes and no NUL: a text file whatever its name (or UTF-16/32, NULs and all)."""
    if not head:
        return False
    if textsources.wide_codec(head) is not None:
        return True  # UTF-16 or UTF-32, with or without a byte order mark
    if b"\x00" in head:
        return False
    printable = sum(1 for b in head if b >= 0x20 or b in (9, 10, 13))
    return printable / len(head) > 0.95


def _textual_kind(extension: str) -> Kind:
    if extension in _XML_EXTENSIONS:
        return Kind.XML
    return Kind.HTML if extension in _HTML_EXTENSIONS else Kind.TEXT


def kind_of(media_type: str, extension: str, head: bytes) -> Kind | None:
    media = media_type.split(";", 1)[0].strip().lower()
    # Office documents first: their sniffed type may be a plain zip or OLE container.
    if office.is_office_zip(extension, head):
        return Kind.OFFICE
    if office.is_legacy_office(extension, head):
        return Kind.LEGACY_OFFICE
    if media == "message/rfc822" or extension == "eml":
        return Kind.EML
    if media == "application/pdf":
        return Kind.PDF
    if media in ("image/svg+xml",) or media.endswith("+xml") or media in ("text/xml", "application/xml"):
        return Kind.XML
    if media.startswith("image/"):
        return Kind.IMAGE
    if media.startswith("video/") or (media.startswith("application/") and extension in _VIDEO_EXTENSIONS):
        return Kind.VIDEO
    if media == "text/html":
        return Kind.HTML
    if media.startswith("text/") or media in ("application/json", "application/csv", "application/x-empty"):
        return _textual_kind(extension)
    if media.startswith(_NOT_TEXT_MEDIA) or not media:
        # libmagic may not recognise a log with odd bytes; trust the bytes over the name.
        if _looks_textual(head):
            return _textual_kind(extension)
        if media in ("application/octet-stream", "") and extension in _IMAGE_EXTENSIONS:
            return Kind.IMAGE
        return None
    return None


def extract(
    kind: Kind,
    data: bytes,
    base: Location,
    check_time: CheckTime,
    time_left: TimeLeft,
    path: Path | None = None,
) -> Extraction:
    """Text of ``data`` read as ``kind`` (an e-mail: its headers; its parts are children)."""
    if kind is Kind.TEXT:
        return textsources.plain_text(data, base)
    if kind is Kind.HTML:
        return textsources.html_source(data, base)
    if kind is Kind.XML:
        parsed = textsources.xml_text(data, base, check_time)
        # Not parseable (hostile or broken): the raw text is still scanned, never skipped.
        return parsed if parsed is not None else textsources.plain_text(data, base)
    if kind is Kind.PDF:
        return textsources.pdf_text(data, base, check_time)
    if kind is Kind.IMAGE:
        # What the image shows (OCR, codes), and what it carries unseen (comments, metadata chunks, trailing data).
        seen = ocr.ocr_image(data, base, timeout=max(1.0, min(ocr.OCR_TIMEOUT, time_left() - 1)))
        return metatext.merge(seen, metatext.image_metadata(data))
    if kind is Kind.VIDEO:
        return video.video_text(path if path is not None else data, base, check_time, time_left)
    if kind is Kind.OFFICE:
        return office.read_office_zip(data, check_time)
    if kind is Kind.LEGACY_OFFICE:
        return office.read_legacy_office(data, check_time)

    # An e-mail's bodies and attachments are children of the e-mail check (validators.mail), each read
    # by this check on its own: only the message's own headers are read here.
    return textsources.eml_headers(data, base)


__all__ = ["Kind", "extract", "kind_of"]

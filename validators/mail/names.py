"""Names of the files found in a message: decoded, made safe to display, still telling what they are.

A declared name keeps what makes it dangerous visible to the name checks (``CR.pdf.exe``, a bidi
override, control characters): only path separators are replaced (so that ``../../x.exe`` is neither a
path nor silently shortened) and trailing dots and spaces are dropped, as Windows does when it saves the
file (``evil.exe.`` is saved as ``evil.exe``). Parts without a name get one from their declared type.
"""

from __future__ import annotations

import mimetypes
import re

from validators import rules
from validators.model import Finding, Location

# Every child found in an e-mail has an origin starting with this (the filetype check reads it).
ORIGIN_PREFIX = "e-mail"
MAX_NAME_CHARS = 200
_TRAVERSAL = re.compile(r"(^|[\\/])\.\.([\\/]|$)|^[\\/]|^[A-Za-z]:[\\/]|^[\\/]{2}")
_KNOWN_EXTENSIONS = {
    "text/plain": ".txt",
    "text/html": ".html",
    "text/calendar": ".ics",
    "text/csv": ".csv",
    "text/xml": ".xml",
    "application/xml": ".xml",
    "application/pdf": ".pdf",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "application/ms-tnef": ".dat",
    "application/vnd.ms-tnef": ".dat",
    "application/pkcs7-mime": ".p7m",
    "application/x-pkcs7-mime": ".p7m",
    "application/pkcs7-signature": ".p7s",
    "application/x-pkcs7-signature": ".p7s",
    "application/octet-stream": ".bin",
}


def origin(what: str) -> str:
    return f"{ORIGIN_PREFIX} {what}"


def display_name(declared: str) -> str:
    """A declared attachment name, safe as a child name but as deceptive as it was written."""
    name = declared.replace("/", "_").replace("\\", "_").replace("\x00", "\ufffd")
    name = name.rstrip(" .")
    if len(name) > MAX_NAME_CHARS:
        half = MAX_NAME_CHARS // 2
        name = name[:half] + "\u2026" + name[-half:]
    return name


def path_findings(declared: str, entry: str) -> list[Finding]:
    """A declared name that is a path (absolute, with '..', a drive or a share) asks to be written there."""
    if _TRAVERSAL.search(declared):
        return [rules.finding("ssi.email.attachment-path", Location(entry=entry), name=display_name(declared))]
    return []


def generated_name(content_type: str, index: int, body: bool) -> str:
    """A name for a part that declares none: ``corps.txt`` for a body, ``partie-3.pdf`` otherwise."""
    extension = _KNOWN_EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type) or ".bin"
    if content_type in ("message/rfc822", "message/global"):
        return f"message-joint-{index}{extension}"
    return f"corps-{index}{extension}" if body else f"partie-{index}{extension}"

"""What following a link would do: run code, open a local file or network share, or show inline data.

Shared by the markup (HTML, SVG, XML and the CDA narrative) and PDF checks. A URL is read the way a
browser reads it before looking at its scheme (WHATWG URL parsing): leading and trailing C0 controls and
spaces are dropped and tabs and newlines removed anywhere, so ``jav&#x09;ascript:`` is javascript once
its parser has decoded the character reference. HTML5 named references that libxml2 does not know
(``&colon;``) are decoded here.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

# Schemes that run code or a local program when followed: script URLs, and Windows protocol handlers
# abused to do the same (ms-msdt "Follina", search-ms, Office URI schemes opening remote documents).
SCRIPT_SCHEMES = frozenset(
    {
        "javascript",
        "vbscript",
        "livescript",
        "mocha",
        "ms-msdt",
        "search-ms",
        "search",
        "ms-officecmd",
        "ms-appinstaller",
        "ms-cxh",
        "ms-cxh-full",
        "ms-its",
        "mk",
        "its",
        "ms-word",
        "ms-excel",
        "ms-powerpoint",
        "ms-visio",
        "ms-access",
        "ms-project",
        "ms-publisher",
        "ms-spd",
        "ms-infopath",
    }
)
# Schemes that reach a file on the machine or on a network share (an SMB connection leaks the
# instructor's NTLM credentials before anything is displayed).
FILE_SCHEMES = frozenset({"file", "smb", "cifs", "nfs", "afp"})
# Inline documents a browser renders with scripts: data: URLs of these types are script URLs.
_ACTIVE_DATA = re.compile(
    r"^(?:text/html|application/|image/svg|text/xml|text/javascript|text/vbscript|text/ecmascript)", re.IGNORECASE
)
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
_DRIVE = re.compile(r"^[a-zA-Z]:[\\/]")
_UNC = re.compile(r"^[\\/]{2}[^\\/]")
_TAB_NEWLINE = re.compile(r"[\t\n\r]")
_C0_AND_SPACE = "".join(chr(code) for code in range(0x21))


@dataclass(frozen=True)
class DangerousLink:
    kind: str  # "script" (runs code), "file" (local file or share), "data" (inline content)
    scheme: str  # what to show: "javascript", "data:text/html", "file", "UNC path", "ms-msdt"...


def normalise(url: str) -> str:
    if "&" in url:
        url = html.unescape(url)
    return _TAB_NEWLINE.sub("", url).strip(_C0_AND_SPACE)


def classify(url: str) -> DangerousLink | None:
    """The danger of following ``url``, or None for web, mail, phone, relative and fragment links."""
    target = normalise(url)
    if _UNC.match(target):
        return DangerousLink("file", "UNC path")
    if _DRIVE.match(target):
        return DangerousLink("file", "local path")
    match = _SCHEME.match(target)
    if match is None:
        return None
    scheme = match[1].lower()
    if scheme in SCRIPT_SCHEMES:
        return DangerousLink("script", scheme)
    if scheme in FILE_SCHEMES:
        return DangerousLink("file", scheme)
    if scheme == "data":
        media = target[match.end() :].split(",", 1)[0].split(";", 1)[0].strip().lower()
        if _ACTIVE_DATA.match(media):
            return DangerousLink("script", f"data:{media}")
        return DangerousLink("data", f"data:{media or 'text/plain'}")
    return None


def shown(url: str) -> str:
    """A short form of a link target for a finding: its scheme and host, never its path, query or payload
    (a path or a query may name a patient)."""
    target = normalise(url)
    if _UNC.match(target):
        host = re.split(r"[\\/]", target[2:], maxsplit=1)[0]
        return "\\\\" + _printable(host[:40]) + "\\…"
    if _DRIVE.match(target):
        return target[:3] + "…"
    match = _SCHEME.match(target)
    if match is None:
        return "…"
    rest = target[match.end() :]
    if rest.startswith("//"):
        host = re.split(r"[/\\?#]", rest[2:], maxsplit=1)[0]
        return f"{match[1].lower()}://{_printable(host[:40])}/…"
    if match[1].lower() == "data":
        return "data:" + _printable(rest.split(",", 1)[0][:40]) + ",…"
    return f"{match[1].lower()}:…"


def _printable(text: str) -> str:
    return "".join(char if char.isprintable() else "?" for char in text)

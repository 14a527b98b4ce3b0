"""Outlook ``.msg`` files (OLE compound files): bodies, headers and attachments, through extract-msg.

extract-msg (maintained, on olefile) reads the property streams; only raw streams are asked for (the
HTML body as stored, the compressed RTF decompressed), never the conversions it offers (RTF to HTML
de-encapsulation, header injection), which parse far more than the check needs. An embedded Outlook
item is exported as its own ``.msg`` child, checked like any message. Nothing is saved to disk.
"""

from __future__ import annotations

import logging
from typing import Any

from validators.base import DeadlineExceededError
from validators.mail import names
from validators.mail.harvest import Harvest

# The library logs attachment names and property values: keep them out of the pipeline's logs.
for _noisy in ("extract_msg", "olefile", "RTFDE"):
    logging.getLogger(_noisy).setLevel(logging.CRITICAL)

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
OUTLOOK_CLSID = bytes.fromhex("0b0d020000000000c000000000000046")
_SUBSTG = "__substg1.0_".encode("utf-16-le")
_PROPERTIES = "__properties_version1.0".encode("utf-16-le")


def looks_like_msg(header: bytes, directory: bytes) -> bool:
    """An OLE file whose first directory sector shows an Outlook message (root CLSID or property names).

    A hint for ``applies_to`` on OLE files not named ``.msg``; the parser decides.
    """
    if not header.startswith(OLE_MAGIC):
        return False
    return directory[80:96] == OUTLOOK_CLSID or _SUBSTG in directory or _PROPERTIES in directory


def _text_bytes(text: str | None) -> bytes | None:
    return text.encode("utf-8") if text else None


def _headers_text(message: Any) -> bytes:
    """What Outlook shows as the message's headers: fields it stores, then the transport headers."""
    lines = []
    for label, attribute in (("From", "sender"), ("To", "to"), ("Cc", "cc"), ("Subject", "subject")):
        try:
            value = getattr(message, attribute, None)
        except Exception:  # a broken property is reported as a gap by the caller's parse, not here
            value = None
        if value:
            lines.append(f"{label}: {value}")
    transport = message.getStringStream("__substg1.0_007D")
    if transport:
        lines.append("")
        lines.append(transport)
    return "\n".join(lines).encode("utf-8")


def read_msg(data: bytes, harvest: Harvest) -> None:
    """Children of an Outlook message: headers, bodies, attachments; problems as findings."""
    import compressed_rtf
    import extract_msg
    from extract_msg.enums import AttachmentType, ErrorBehavior

    try:
        message = extract_msg.openMsg(
            data, strict=False, delayAttachments=False, errorBehavior=ErrorBehavior.ATTACH_SUPPRESS_ALL
        )
    except Exception as exc:  # the library raises many types on corrupt files; none may escape
        harvest.malformed("the Outlook message could not be opened", evidence=type(exc).__name__)
        return
    try:
        harvest.add_child("en-tetes.txt", _headers_text(message), names.origin("Outlook headers"))
        body = _text_bytes(getattr(message, "body", None))
        if body:
            harvest.add_child("corps.txt", body, names.origin("Outlook body"))
        html = message.getStream("__substg1.0_10130102")
        if html:
            harvest.add_child("corps.html", html, names.origin("Outlook body"))
        rtf = message.getStream("__substg1.0_10090102")
        if rtf:
            try:
                harvest.add_child("corps.rtf", compressed_rtf.decompress(rtf), names.origin("Outlook body"))
            except Exception as exc:
                harvest.malformed("the RTF body could not be decompressed", "corps.rtf", type(exc).__name__)
        for index, attachment in enumerate(message.attachments, start=1):
            if not harvest.count_part():
                break
            _attachment(attachment, index, harvest, AttachmentType)
    except DeadlineExceededError:
        raise
    except Exception as exc:  # a property the library cannot decode: what was read stays, the rest is said
        harvest.malformed("the Outlook message could not be read to the end", evidence=type(exc).__name__)
    finally:
        message.close()


def _attachment(attachment: Any, index: int, harvest: Harvest, kinds: Any) -> None:
    declared = attachment.longFilename or attachment.shortFilename or ""
    kind = attachment.type
    entry = names.display_name(declared) if declared else f"pièce jointe {index}"
    for finding in names.path_findings(declared, entry):
        harvest.add(finding)
    if kind in (kinds.MSG, kinds.SIGNED_EMBEDDED):
        try:
            exported = attachment.data.exportBytes()
        except Exception as exc:
            harvest.not_inspected("an attached Outlook item", "it could not be exported", entry, type(exc).__name__)
            return
        harvest.add_child(f"{entry or 'message-joint'}-{index}.msg", exported, names.origin("Outlook item"))
        return
    if kind in (kinds.DATA, kinds.SIGNED):
        data = attachment.data
        if isinstance(data, bytes):
            name = entry if declared else names.generated_name(attachment.mimetype or "", index, body=False)
            harvest.add_child(name, data, names.origin("Outlook attachment"))
            return
    reason = {kinds.WEB: "a link to a web resource", kinds.BROKEN: "broken"}.get(kind, f"type {kind.name}")
    harvest.not_inspected("an Outlook attachment", reason, entry)

"""Limits of the e-mail check: what one message may hold before the rest is reported as not inspected.

Settings: ``settings["email"]`` may set any field (``{"email": {"max_parts": 200}}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

MiB = 1024 * 1024


@dataclass(frozen=True)
class MailLimits:
    max_message_bytes: int = 256 * MiB  # a message (or .msg, TNEF, PKCS #7) larger is not parsed
    max_parts: int = 500  # MIME parts, Outlook attachments, TNEF attachments of one message
    max_depth: int = 20  # multipart levels inside one message (nested messages are children)
    max_part_bytes: int = 64 * MiB  # one decoded part
    max_total_bytes: int = 256 * MiB  # all decoded parts of one message
    max_headers: int = 1000  # header fields of one part
    max_header_bytes: int = 256 * 1024  # one header field, raw
    # Counted on the raw bytes before parsing (see mime.too_many_parts): multiparts (distinct boundaries
    # declared) and lines that use a declared boundary.
    max_multiparts: int = 200
    max_boundary_lines: int = 2_000
    max_mbox_messages: int = 200  # messages of an mbox file (each becomes a child)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> MailLimits:
        values = dict((settings or {}).get("email") or {})
        known = {f.name for f in fields(cls)}
        return replace(cls(), **{k: int(v) for k, v in values.items() if k in known})

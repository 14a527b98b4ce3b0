"""Limits of the e-mail check: what one message may hold before the rest is reported as not inspected.

The ``email`` section of ``validators.settings.EngineSettings`` (``{"email": {"max_parts": 200}}``).
"""

from __future__ import annotations

from dataclasses import dataclass

from validators.settingslib import setting

MiB = 1024 * 1024


@dataclass(frozen=True)
class MailLimits:
    max_message_bytes: int = setting(256 * MiB, doc="a message (or .msg, TNEF, PKCS #7) larger is not parsed")
    max_parts: int = setting(500, doc="MIME parts, Outlook attachments, TNEF attachments of one message")
    max_depth: int = setting(20, doc="multipart levels inside one message (nested messages are children)")
    max_part_bytes: int = setting(64 * MiB, doc="one decoded part")
    max_total_bytes: int = setting(256 * MiB, doc="all decoded parts of one message")
    max_headers: int = setting(1000, doc="header fields of one part")
    max_header_bytes: int = setting(256 * 1024, doc="one header field, raw")
    # Counted on the raw bytes before parsing (see mime.too_many_parts).
    max_multiparts: int = setting(200, doc="multiparts of one message (distinct boundaries declared)")
    max_boundary_lines: int = setting(2_000, doc="lines that use a declared boundary")
    max_mbox_messages: int = setting(200, doc="messages of an mbox file (each becomes a child)")
